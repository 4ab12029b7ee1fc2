// Package defaults fills unset configuration fields.
package defaults

import "time"

// Positive sets *v to d when *v is zero or negative, the convention of the
// overlay configs: a non-positive count or duration means "use the default".
func Positive[T int | int64 | uint64 | float64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
