package pubsub

import (
	"slices"
	"time"
)

// Lazy repair pulls a message (IWANT) that a lazy neighbour announced and
// the tree has not brought within GraftTimeout. On a quiet network a copy
// that late is lost or stuck, and pulling it is right. Under overload every
// tree copy is late by the queues along its path, often by more than
// GraftTimeout, while the small IHAVEs overtake them: then nearly every
// message was pulled and also arrived over the tree, two full copies per
// delivery (at 100 agents × 100 msg/s: 58,000 IWANTs, 38,000 pulled copies
// and 44,000 tree copies wasted for 44,800 deliveries), and the wasted
// copies deepened the overload that made the tree late.
//
// So a topic measures how late its tree is: for the first copy of each
// message arriving over a tree link, the time since we first learned of
// the message (zero when the copy itself was the first news). While the
// parent is pushing new messages and most tree copies are late (the median
// is above zero), a pull waits for GraftTimeout plus the 90th percentile of
// that lateness. The extra wait is capped at another GraftTimeout while
// pulls are answered within GraftTimeout; only when the pulls' own round
// trips (90th percentile) exceed it, the sign of an overload, in which a
// second copy costs what the node lacks, may it grow to parentSilence. A
// pull answered by nobody is retried after that round trip rather than at
// a fixed GraftRetry. On a quiet network almost every tree copy is the
// first news and nothing changes; where tree copies are late because trees
// are being repaired (churn), the cap keeps repair latency within
// 2×GraftTimeout.
//
// A hostile tree parent can inflate its subtree's lateness by delaying what
// it pushes, and then the messages it drops are pulled later: by at most
// GraftTimeout more, or parentSilence when pulls are congested too.

// lateSamples is how many recent samples an estimate uses, and
// lateRecompute how often (in samples) it is recomputed.
const (
	lateSamples   = 128
	lateRecompute = 16
)

// lateQuantile is the quantile estimated: 90% of recent tree copies arrived
// within the wait, so about 10% of announced messages are pulled.
const lateQuantile = 0.9

// lateness estimates lateQuantile of the most recent lateSamples delays.
type lateness struct {
	samples [lateSamples]time.Duration
	n       int           // samples taken
	q       time.Duration // the estimate, as of the last recompute
	median  time.Duration // the median, as of the last recompute
}

// add records one delay; negative delays (clock steps) count as zero.
func (l *lateness) add(d time.Duration) {
	l.samples[l.n%lateSamples] = max(d, 0)
	l.n++
	if l.n%lateRecompute == 0 {
		var buf [lateSamples]time.Duration // on the stack: this runs per delivery
		s := buf[:copy(buf[:], l.samples[:min(l.n, lateSamples)])]
		slices.Sort(s)
		l.q = s[int(float64(len(s)-1)*lateQuantile)]
		l.median = s[(len(s)-1)/2]
	}
}

// estimate returns the current estimate, capped at limit.
func (l *lateness) estimate(limit time.Duration) time.Duration { return min(l.q, limit) }

// mostlyLate reports whether most recent samples were late at all.
func (l *lateness) mostlyLate() bool { return l.median > 0 }
