package ec2sim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
)

// APIVersion is the EC2 Query API version the emulator speaks.
const APIVersion = "2016-11-15"

// Subnet is one subnet the emulator knows; launches into other subnets fail
// with InvalidSubnetID.NotFound.
type Subnet struct {
	ID   string
	Zone string
	CIDR string // an IPv4 prefix, e.g. 10.0.1.0/24
}

// DefaultSubnets are used when Options.Subnets is empty.
var DefaultSubnets = []Subnet{
	{ID: "subnet-0a0000000000000a1", Zone: "us-east-1a", CIDR: "10.0.0.0/20"},
	{ID: "subnet-0a0000000000000b2", Zone: "us-east-1b", CIDR: "10.0.16.0/20"},
	{ID: "subnet-0a0000000000000c3", Zone: "us-east-1c", CIDR: "10.0.32.0/20"},
}

// Rate is a token bucket: Burst requests at once, refilled PerSecond.
type Rate struct {
	Burst     float64
	PerSecond float64
}

// RunInstancesBudget is EC2's published RunInstances request bucket.
var RunInstancesBudget = Rate{Burst: 5, PerSecond: 2}

// Options configure a Server. The zero value is usable.
type Options struct {
	// Clock drives instance lifecycles and the request budget (default: wall clock).
	Clock Clock
	// PendingFor is how long a new instance stays pending (default 0: it
	// is reported running from the first describe after launch).
	PendingFor time.Duration
	// ShuttingDownFor is how long a terminated instance stays shutting-down.
	ShuttingDownFor time.Duration
	// TerminatedVisibleFor is how long a terminated instance stays visible
	// (default one hour, as on EC2); after that it is gone.
	TerminatedVisibleFor time.Duration
	// Subnets the account has (default DefaultSubnets).
	Subnets []Subnet
	// RunInstancesRate, when set, enforces a request budget for
	// RunInstances on Clock: requests beyond it get RequestLimitExceeded.
	RunInstancesRate *Rate
	// DeregistrationDelay of the target groups CreateTargetGroup makes
	// (AddTargetGroup takes its own); 0 deregisters at once.
	DeregistrationDelay time.Duration
	// Booter, when set, boots a real machine per launched instance.
	Booter Booter
	// Logger receives one debug line per request (default: discard).
	Logger *slog.Logger
}

// Fault decides, for the n-th request (1-based, counted per action) of
// action, whether to fail it. Returning nil lets the request proceed.
type Fault func(action string, n int) *APIError

// APIError is an EC2 error response.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Throttled is the error EC2 returns when a request budget is exhausted.
func Throttled() *APIError {
	return errorf(http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
}

// Server is the emulator. It is an http.Handler; Listen also serves it on a
// loopback port.
type Server struct {
	opts  Options
	clock Clock
	log   *slog.Logger

	mu           sync.Mutex
	seq          uint64
	instances    map[string]*instance
	order        []*instance // launch order, for stable pagination
	reservations map[string]*reservation
	tokens       map[string]*reservation // clientToken + "/" + zone
	subnets      map[string]*subnetState
	calls        map[string]int
	throttled    map[string]int
	faults       []Fault
	describeLag  int
	runBucket    bucket
	idSeq        uint64 // ids of security groups and ELBv2 resources
	sgs          map[string]*securityGroup
	elb          elbState

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	srv *http.Server
	url string
}

type subnetState struct {
	Subnet
	prefix netip.Prefix
	next   netip.Addr
}

// New returns an emulator with opts.
func New(opts Options) (*Server, error) {
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.TerminatedVisibleFor == 0 {
		opts.TerminatedVisibleFor = time.Hour
	}
	if len(opts.Subnets) == 0 {
		opts.Subnets = DefaultSubnets
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts: opts, clock: opts.Clock, log: log,
		instances:    map[string]*instance{},
		reservations: map[string]*reservation{},
		tokens:       map[string]*reservation{},
		subnets:      map[string]*subnetState{},
		calls:        map[string]int{},
		throttled:    map[string]int{},
		sgs:          map[string]*securityGroup{},
		ctx:          ctx, cancel: cancel,
	}
	for _, sn := range opts.Subnets {
		p, err := netip.ParsePrefix(sn.CIDR)
		if err != nil || !p.Addr().Is4() || p.Bits() > 28 {
			cancel()
			return nil, fmt.Errorf("failed to configure subnet %s: CIDR %q is not an IPv4 prefix of /28 or larger", sn.ID, sn.CIDR)
		}
		p = p.Masked()
		// EC2 reserves the first four addresses of every subnet.
		next := p.Addr()
		for range 4 {
			next = next.Next()
		}
		s.subnets[sn.ID] = &subnetState{Subnet: sn, prefix: p, next: next}
	}
	if opts.RunInstancesRate != nil {
		s.runBucket = bucket{rate: *opts.RunInstancesRate, tokens: opts.RunInstancesRate.Burst, last: s.clock.Now()}
	}
	return s, nil
}

// Listen starts serving on a free loopback port. Close stops it.
func (s *Server) Listen() error {
	url, err := s.ServeOn("127.0.0.1")
	if err != nil {
		return err
	}
	s.url = url
	return nil
}

// ServeOn also serves on a free port of host, which must be loopback or
// the host's address on a lab bridge (for a client inside a lab machine's
// network namespace), and returns that listener's base URL. Close stops
// every listener.
func (s *Server) ServeOn(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("failed to listen on %s: %w", host, err)
	}
	s.mu.Lock()
	if s.srv == nil {
		s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	}
	srv := s.srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// URL is the base URL after Listen.
func (s *Server) URL() string { return s.url }

// Close stops the listener (if any), cancels running boots and waits for
// Booter calls to return.
func (s *Server) Close() error {
	var err error
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		err = srv.Close()
	}
	s.cancel()
	s.wg.Wait()
	return err
}

// WaitBooter waits until every Booter call started so far has returned.
func (s *Server) WaitBooter() { s.wg.Wait() }

// AddFault installs a fault hook; hooks are asked in order.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// ClearFaults removes every fault hook.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// ThrottleNext fails the next n requests of action ("" = any action) with
// RequestLimitExceeded.
func (s *Server) ThrottleNext(action string, n int) {
	left := n
	var mu sync.Mutex
	s.AddFault(func(a string, _ int) *APIError {
		mu.Lock()
		defer mu.Unlock()
		if left > 0 && (action == "" || action == a) {
			left--
			return Throttled()
		}
		return nil
	})
}

// SetDescribeLag makes every instance launched from now on invisible to the
// next n DescribeInstances requests (EC2's eventual consistency).
func (s *Server) SetDescribeLag(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.describeLag = n
}

// Calls returns how many requests of action arrived (including throttled
// and failed ones).
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// CallCounts returns a copy of the per-action request counts.
func (s *Server) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// ThrottledCalls returns how many requests of action got RequestLimitExceeded.
func (s *Server) ThrottledCalls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled[action]
}

// ResetCounts zeroes the request counters.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
	s.throttled = map[string]int{}
}

// Instances returns a snapshot of every visible instance in launch order.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.expire(now)
	out := make([]Instance, 0, len(s.order))
	for _, in := range s.order {
		out = append(out, in.snapshot(now, s.opts))
	}
	return out
}

// ServeHTTP handles one EC2 Query request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := s.requestID()
	if r.Method != http.MethodPost {
		writeError(w, reqID, errorf(http.StatusBadRequest, "InvalidAction", "only POST requests are supported"))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, reqID, errorf(http.StatusBadRequest, "MalformedQueryString", "the request body is not a form: %v", err))
		return
	}
	p := params(r.PostForm)
	action := p.get("Action")
	s.log.Debug("ec2sim request", "action", action, "request_id", reqID)
	if isELB(p) {
		s.serveELB(w, reqID, action, p)
		return
	}
	if v := p.get("Version"); v != APIVersion {
		writeError(w, reqID, errorf(http.StatusBadRequest, "InvalidParameterValue", "unsupported Version %q (want %s)", v, APIVersion))
		return
	}
	if apiErr := s.admit(action); apiErr != nil {
		writeError(w, reqID, apiErr)
		return
	}
	var (
		body string
		err  *APIError
	)
	switch action {
	case "DescribeInstances":
		body, err = s.describeInstances(p)
	case "RunInstances":
		body, err = s.runInstances(p)
	case "TerminateInstances":
		body, err = s.terminateInstances(p)
	case "CreateTags":
		body, err = s.createTags(p)
	case "DescribeSubnets":
		body, err = s.describeSubnets(p)
	case "DescribeSecurityGroups":
		body, err = s.describeSecurityGroups(p)
	case "CreateSecurityGroup":
		body, err = s.createSecurityGroup(p)
	case "DeleteSecurityGroup":
		body, err = s.deleteSecurityGroup(p)
	case "AuthorizeSecurityGroupIngress":
		body, err = s.authorizeIngress(p)
	default:
		err = errorf(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service.", action)
	}
	if err != nil {
		writeError(w, reqID, err)
		return
	}
	writeResponse(w, action, reqID, body)
}

// admit counts the request and applies faults and request budgets.
func (s *Server) admit(action string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[action]++
	n := s.calls[action]
	for _, f := range s.faults {
		if e := f(action, n); e != nil {
			if e.Code == "RequestLimitExceeded" {
				s.throttled[action]++
			}
			return e
		}
	}
	if action == "RunInstances" && s.opts.RunInstancesRate != nil && !s.runBucket.take(s.clock.Now()) {
		s.throttled[action]++
		return Throttled()
	}
	return nil
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", s.seq)
}

// bucket is a token bucket on the emulator's clock.
type bucket struct {
	rate   Rate
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time) bool {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.rate.Burst, b.tokens+el.Seconds()*b.rate.PerSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// params is the decoded form with helpers for EC2's flattened lists.
type params map[string][]string

func (p params) get(k string) string {
	if v := p[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (p params) has(k string) bool { _, ok := p[k]; return ok }

// list returns prefix.1, prefix.2, ... until the first gap.
func (p params) list(prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		k := fmt.Sprintf("%s.%d", prefix, i)
		if !p.has(k) {
			return out
		}
		out = append(out, p.get(k))
	}
}

// indexes returns the indexes N for which some key prefix.N... exists, sorted.
func (p params) indexes(prefix string) []int {
	seen := map[int]bool{}
	for k := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		numStr, _, _ := strings.Cut(rest, ".")
		var n int
		if _, err := fmt.Sscanf(numStr, "%d", &n); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}
