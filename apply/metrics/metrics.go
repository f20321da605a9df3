package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/plan"
)

// Metrics holds the loop's series in their own registry.
type Metrics struct {
	reg *prometheus.Registry

	passes       *prometheus.CounterVec
	passDuration prometheus.Histogram
	passStarted  prometheus.Gauge
	lastSuccess  prometheus.Gauge
	steps        *prometheus.CounterVec
	leader       prometheus.Gauge
	leaderErrors prometheus.Counter
	paused       prometheus.Gauge
	desired      *prometheus.GaugeVec
	actual       *prometheus.GaugeVec
	reachable    prometheus.Gauge
	quorum       prometheus.Gauge
	managers     prometheus.Gauge
	deliveries   *prometheus.CounterVec

	mu     sync.Mutex
	groups map[string]bool // groups with series, to drop the ones gone
}

var _ apply.LoopHook = (*Metrics)(nil)

// New registers the series for cluster (a constant label on every one).
func New(cluster string) *Metrics {
	c := prometheus.Labels{"cluster": cluster}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "swarmsync_passes_total", ConstLabels: c,
			Help: "Reconcile passes by trigger (start, schedule, leader, webhook) and result (ok, failed, paused, not-leader, leadership-unknown)."}, []string{"trigger", "result"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "swarmsync_pass_duration_seconds", ConstLabels: c,
			Help:    "Duration of the passes this daemon ran as leader.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}}),
		passStarted: prometheus.NewGauge(prometheus.GaugeOpts{Name: "swarmsync_last_pass_start_timestamp_seconds", ConstLabels: c,
			Help: "When the last pass started on this daemon (Unix seconds)."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "swarmsync_last_success_timestamp_seconds", ConstLabels: c,
			Help: "When a pass last ended ok on this daemon (Unix seconds)."}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "swarmsync_steps_total", ConstLabels: c,
			Help: "Plan steps applied, by action and result (done, failed, skipped, not-run)."}, []string{"action", "result"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "swarmsync_leader", ConstLabels: c,
			Help: "1 when this daemon's manager is the Swarm leader (last check), else 0."}),
		leaderErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "swarmsync_leadership_check_errors_total", ConstLabels: c,
			Help: "Leadership checks that failed (leadership unknown: not acting)."}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "swarmsync_paused", ConstLabels: c,
			Help: "1 while the loop is paused after a failed step (update.failureAction pause) until the spec's commit changes."}),
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "swarmsync_group_desired_nodes", ConstLabels: c,
			Help: "Nodes the spec asks for, per group (last pass's observation)."}, []string{"group"}),
		actual: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "swarmsync_group_ready_nodes", ConstLabels: c,
			Help: "Ready nodes per group (last pass's observation)."}, []string{"group"}),
		reachable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "swarmsync_managers_reachable", ConstLabels: c,
			Help: "Reachable managers of the raft membership (last pass's observation)."}),
		quorum: prometheus.NewGauge(prometheus.GaugeOpts{Name: "swarmsync_managers_quorum", ConstLabels: c,
			Help: "Managers the raft membership needs for quorum (last pass's observation)."}),
		managers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "swarmsync_managers", ConstLabels: c,
			Help: "Managers in the raft membership (last pass's observation)."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "swarmsync_webhook_deliveries_total", ConstLabels: c,
			Help: "Webhook deliveries by result (accepted, forwarded, forward-error, bad-signature, unsigned, stale, replay, too-large, bad-request)."}, []string{"result"}),
		groups: map[string]bool{},
	}
	m.reg.MustRegister(m.passes, m.passDuration, m.passStarted, m.lastSuccess, m.steps, m.leader, m.leaderErrors,
		m.paused, m.desired, m.actual, m.reachable, m.quorum, m.managers, m.deliveries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// PassStarted records a pass's start.
func (m *Metrics) PassStarted(_ string, at time.Time) {
	m.passStarted.Set(float64(at.UnixNano()) / 1e9)
}

// PassFinished counts a pass and its steps.
func (m *Metrics) PassFinished(r apply.PassReport) {
	m.passes.WithLabelValues(r.Trigger, r.Result).Inc()
	if r.Result == apply.ResultNotLeader || r.Result == apply.ResultUnknown {
		return
	}
	m.passDuration.Observe(r.End.Sub(r.Start).Seconds())
	if r.Result == apply.ResultOK {
		m.lastSuccess.Set(float64(r.End.UnixNano()) / 1e9)
	}
	if r.Applied.Result != nil {
		for _, s := range r.Applied.Result.Steps {
			m.steps.WithLabelValues(string(s.Action), string(s.Status)).Inc()
		}
	}
}

// LeaderChecked records the last leadership check.
func (m *Metrics) LeaderChecked(leader bool, err error) {
	v := 0.0
	if leader {
		v = 1
	}
	m.leader.Set(v)
	if err != nil {
		m.leaderErrors.Inc()
	}
}

// Paused records whether the loop is paused.
func (m *Metrics) Paused(p bool) {
	v := 0.0
	if p {
		v = 1
	}
	m.paused.Set(v)
}

// Delivery counts one webhook delivery.
func (m *Metrics) Delivery(result string) { m.deliveries.WithLabelValues(result).Inc() }

// Observed records a pass's observation set against the spec.
func (m *Metrics) Observed(h plan.Health) {
	m.reachable.Set(float64(h.Swarm.Reachable))
	m.quorum.Set(float64(h.Swarm.Quorum))
	m.managers.Set(float64(h.Swarm.Managers))
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, g := range h.Groups {
		seen[g.Name] = true
		m.desired.WithLabelValues(g.Name).Set(float64(g.Desired))
		m.actual.WithLabelValues(g.Name).Set(float64(g.Ready))
	}
	for g := range m.groups {
		if !seen[g] {
			m.desired.DeleteLabelValues(g)
			m.actual.DeleteLabelValues(g)
		}
	}
	m.groups = seen
}
