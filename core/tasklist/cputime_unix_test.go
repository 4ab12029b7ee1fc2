//go:build unix

package tasklist

import (
	"syscall"
	"time"
)

// processCPUTime is the process's user plus system CPU time so far (all threads,
// GC included), for the benchmarks; 0 if it cannot be read.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
