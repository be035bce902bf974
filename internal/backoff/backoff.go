// Package backoff is statusflow's one retry delay: exponential from a base,
// capped, with ±20 % jitter. The bus's NAK delays, the webhook outbox's
// retries and whatsmeow's reconnects all use it.
package backoff

import "time"

// Exponential returns the delay before the attempt-th retry (1-based):
// base·2^(attempt-1), at most limit, scaled by 0.8+0.4·r so that r, a random
// number in [0,1), spreads it ±20 % (r = 0.5 gives the plain delay).
func Exponential(base, limit time.Duration, attempt int, r float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return time.Duration(float64(d) * (0.8 + 0.4*r))
}
