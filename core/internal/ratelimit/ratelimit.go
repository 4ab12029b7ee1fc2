// Package ratelimit is a token bucket for per-peer budgets (bytes or
// requests). It keeps no clock of its own: callers pass the time, so the
// simulator's virtual clock drives it as well as the real one.
package ratelimit

import "time"

// Bucket holds up to burst tokens and refills at rate tokens per second.
// Its zero value is empty; New returns a full one. It is not safe for
// concurrent use: callers guard it with their own lock.
type Bucket struct {
	tokens float64
	at     time.Time
}

// New returns a bucket holding burst tokens at time now.
func New(now time.Time, burst float64) Bucket { return Bucket{tokens: burst, at: now} }

// Take refills the bucket for the time since its last use, then takes n
// tokens if it holds that many and reports whether it did.
func (b *Bucket) Take(now time.Time, n, rate, burst float64) bool {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(burst, b.tokens+el.Seconds()*rate)
		b.at = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// Full reports whether the bucket would be full at now (it can then be
// forgotten and recreated with New without changing behaviour).
func (b *Bucket) Full(now time.Time, rate, burst float64) bool {
	return b.tokens+now.Sub(b.at).Seconds()*rate >= burst
}
