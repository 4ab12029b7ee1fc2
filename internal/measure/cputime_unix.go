//go:build unix

package measure

import (
	"syscall"
	"time"
)

// CPUTime is the process's user plus system CPU time so far (all threads,
// GC included); 0 if it cannot be read.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
