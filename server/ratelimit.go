package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/auth"
)

// Limiter counts requests per key in fixed windows. The server's own is
// in-memory ([NewMemoryLimiter]); a store shared by replicas (so a token's
// budget is one budget across them) plugs in through [Config.NewLimiter].
type Limiter interface {
	// Take counts one request for key and reports whether it is allowed, how
	// many remain in the window, and when the window resets.
	Take(key string) (ok bool, remaining int, reset time.Time)
	// Limit is the number of requests a window allows.
	Limit() int
}

// memoryLimiter counts requests per key in fixed one-minute windows.
type memoryLimiter struct {
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

// NewMemoryLimiter returns an in-process [Limiter] of limit requests per
// minute per key.
func NewMemoryLimiter(limit int) Limiter { return newLimiter(limit) }

func newLimiter(limit int) *memoryLimiter {
	return &memoryLimiter{limit: limit, window: time.Minute, now: time.Now, windows: map[string]*window{}}
}

func (l *memoryLimiter) Limit() int { return l.limit }

// Take counts one request for key and reports whether it is allowed, how many
// remain, and when the window resets.
func (l *memoryLimiter) Take(key string) (ok bool, remaining int, reset time.Time) {
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

// exhausted reports whether key has no request left in its window, without counting one.
func exhausted(l Limiter, key string) bool {
	if p, ok := l.(interface{ Peek(string) bool }); ok {
		return p.Peek(key)
	}
	return false
}

// Peek reports whether key's window is used up (see [exhausted]).
func (l *memoryLimiter) Peek(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[key]
	return w != nil && now.Sub(w.start) < l.window && w.count >= l.limit
}

func (l *memoryLimiter) sweep(now time.Time) {
	for k, w := range l.windows {
		if now.Sub(w.start) >= l.window {
			delete(l.windows, k)
		}
	}
}

// probePaths are the unauthenticated health and metrics probes. They count
// against their own per-address budget, so a monitoring system polling hard
// never uses up what signed inbound hooks or other callers from the same
// address may send (and they cannot use up the probes' budget either).
var probePaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// rateLimitKey is the caller's token hash, or its address when it sent none.
func rateLimitKey(c *fiber.Ctx) string {
	if tok := tokenFrom(c); tok != "" {
		return "t:" + auth.HashToken(tok)
	}
	return "ip:" + c.IP()
}

// rateLimit enforces l on every request, writing the X-RateLimit-* headers on
// every response and answering 429 past the limit. Probes without a token
// count against probes instead.
func rateLimit(l Limiter, prefix string, probes Limiter) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if forwarded(c) {
			return c.Next() // counted by the replica that received it
		}
		lim, key := l, prefix+rateLimitKey(c)
		if probes != nil && probePaths[c.Path()] && tokenFrom(c) == "" {
			lim, key = probes, "probe:"+c.IP()
		}
		ok, remaining, reset := lim.Take(key)
		c.Set("X-RateLimit-Limit", strconv.Itoa(lim.Limit()))
		c.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		c.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		if !ok {
			return tooMany(c, reset)
		}
		return c.Next()
	}
}

func tooMany(c *fiber.Ctx, reset time.Time) error {
	secs := int(time.Until(reset).Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	c.Set("Retry-After", strconv.Itoa(secs))
	return newError(fiber.StatusTooManyRequests, "Rate limit exceeded. Try again later.")
}
