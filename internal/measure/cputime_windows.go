//go:build windows

package measure

import (
	"syscall"
	"time"
)

// CPUTime is the process's user plus system CPU time so far (all threads,
// GC included); 0 if it cannot be read. Windows has no
// getrusage: GetProcessTimes gives the same two figures.
func CPUTime() time.Duration {
	h, err := syscall.GetCurrentProcess()
	if err != nil {
		return 0
	}
	var creation, exit, kernel, user syscall.Filetime
	if syscall.GetProcessTimes(h, &creation, &exit, &kernel, &user) != nil {
		return 0
	}
	// Filetime counts 100 ns intervals.
	ticks := func(t syscall.Filetime) int64 { return int64(t.HighDateTime)<<32 | int64(t.LowDateTime) }
	return time.Duration((ticks(kernel) + ticks(user)) * 100)
}
