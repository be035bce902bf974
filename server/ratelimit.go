package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/auth"
)

// limiter counts requests per key in fixed one-minute windows.
type limiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	windows map[string]*window
}

type window struct {
	start time.Time
	count int
}

func newLimiter(limit int) *limiter {
	return &limiter{limit: limit, window: time.Minute, now: time.Now, windows: map[string]*window{}}
}

// take counts one request for key and reports whether it is allowed, how many
// remain, and when the window resets.
func (l *limiter) take(key string) (ok bool, remaining int, reset time.Time) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[key]
	if w == nil || now.Sub(w.start) >= l.window {
		if len(l.windows) > 10000 {
			l.sweep(now)
		}
		w = &window{start: now.Truncate(time.Second)}
		l.windows[key] = w
	}
	reset = w.start.Add(l.window)
	if w.count >= l.limit {
		return false, 0, reset
	}
	w.count++
	return true, l.limit - w.count, reset
}

func (l *limiter) sweep(now time.Time) {
	for k, w := range l.windows {
		if now.Sub(w.start) >= l.window {
			delete(l.windows, k)
		}
	}
}

// rateLimitKey is the caller's token hash, or its address when it sent none.
func rateLimitKey(c *fiber.Ctx) string {
	if tok := tokenFrom(c); tok != "" {
		return "t:" + auth.HashToken(tok)
	}
	return "ip:" + c.IP()
}

// rateLimit enforces l on every request, writing the X-RateLimit-* headers on
// every response and answering 429 past the limit.
func rateLimit(l *limiter, prefix string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ok, remaining, reset := l.take(prefix + rateLimitKey(c))
		c.Set("X-RateLimit-Limit", strconv.Itoa(l.limit))
		c.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		c.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		if !ok {
			secs := int(time.Until(reset).Seconds() + 0.999)
			if secs < 1 {
				secs = 1
			}
			c.Set("Retry-After", strconv.Itoa(secs))
			return newError(fiber.StatusTooManyRequests, "Rate limit exceeded. Try again later.")
		}
		return c.Next()
	}
}
