package schema

import (
	"fmt"

	"github.com/robfig/cron/v3"
)

// cronParser accepts standard five-field expressions and descriptors
// (@every 1m, @hourly, @daily, @weekly, @monthly, @yearly).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a schedule expression of the spec (schedule.reconcile,
// schedule.rotateJoinTokens, disruption window crons) with the same rules the
// loader validated it with.
func ParseCron(expr string) (cron.Schedule, error) {
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("failed to parse cron expression %q: %w", expr, err)
	}
	return s, nil
}
