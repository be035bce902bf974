package webhooks

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/statusflow/statusflow/internal/backoff"
)

// RetryPolicy decides when a failed delivery is tried again. attempt is the
// attempt that just failed (1 for the first).
type RetryPolicy interface {
	NextRetry(attempt int, now time.Time) time.Time
}

// ExponentialRetry waits Base·2^(attempt-1), at most Max, with ±20% jitter.
type ExponentialRetry struct {
	Base, Max time.Duration
	// Jitter returns a random number in [0,1).
	Jitter func() float64
}

// NextRetry implements [RetryPolicy].
func (r ExponentialRetry) NextRetry(attempt int, now time.Time) time.Time {
	j := 0.5
	if r.Jitter != nil {
		j = r.Jitter()
	}
	return now.Add(backoff.Exponential(r.Base, r.Max, attempt, j))
}

func randFloat() float64 { return rand.Float64() }

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
// ok is false when the header is absent or unreadable.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// outcome classifies a receiver's answer.
type outcome int

const (
	outcomeDelivered outcome = iota
	outcomeRetry
	outcomePermanent
	outcomeGone
)

// classify maps an HTTP status to what happens next: 2xx delivered; 410
// disables the webhook; 408, 429, 5xx (and 3xx: redirects are not followed)
// are retried; any other 4xx is permanent, like river's JobCancel.
func classify(code int) outcome {
	switch {
	case code >= 200 && code < 300:
		return outcomeDelivered
	case code == http.StatusGone:
		return outcomeGone
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return outcomeRetry
	case code >= 400 && code < 500:
		return outcomePermanent
	}
	return outcomeRetry
}
