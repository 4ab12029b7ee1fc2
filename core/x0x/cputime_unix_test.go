//go:build unix

package x0x

import (
	"syscall"
	"time"
)

// cpuTime is the process's user plus system CPU time so far (all threads,
// GC included), for the benchmarks; 0 if it cannot be read.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
