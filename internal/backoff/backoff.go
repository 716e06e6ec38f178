// Package backoff holds the one retry-delay rule the rotator and the notification dispatcher
// share, so the two cannot drift apart.
package backoff

import "time"

// Equal is bounded exponential backoff with equal jitter: attempt 1 (1-based) waits about lo,
// doubling up to hi, never less than half the nominal delay, so replicas and restarts spread out
// while a delay never collapses to zero. rnd returns values in [0,1).
func Equal(attempt int, lo, hi time.Duration, rnd func() float64) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(rnd()*float64(d/2))
}
