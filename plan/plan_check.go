package plan

import (
	"errors"
	"fmt"
)

// check says what is wrong with a plan read from a file, one problem per
// line with its JSON path: steps without an id or with one used twice, and
// dependencies on steps the plan does not hold. (apply still recomputes the
// plan and runs it only when the steps are the same.)
func (p *Plan) check() error {
	var errs []error
	ids := make(map[string]int, len(p.Steps))
	for i, s := range p.Steps {
		switch prev, dup := ids[s.ID]; {
		case s.ID == "":
			errs = append(errs, fmt.Errorf("steps[%d].id: missing: every step needs its id", i))
		case dup:
			errs = append(errs, fmt.Errorf("steps[%d].id: step %q is listed twice (also steps[%d])", i, s.ID, prev))
		default:
			ids[s.ID] = i
		}
	}
	for i, s := range p.Steps {
		for j, d := range s.DependsOn {
			if _, ok := ids[d]; !ok {
				errs = append(errs, fmt.Errorf("steps[%d].depends_on[%d]: no step %q in the plan", i, j, d))
			}
		}
	}
	return errors.Join(errs...)
}
