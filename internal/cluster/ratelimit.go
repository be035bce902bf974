package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Shared rate limits (issue 14): a token's budget is one budget across every
// replica, with the same X-RateLimit-* headers a single process gives.
//
// Why NATS KV and not PostgreSQL: PostgreSQL is the part a scaled deployment
// saturates first (every status is already four durable rows; see README
// "Benchmarks"), and a counter UPSERT per request would add a WAL write to
// every request, including the ones refused. A KV bucket in memory storage
// costs no disk, expires old windows by itself (the bucket's TTL, no
// janitor), and its revision-checked Update is the compare-and-swap an
// increment needs. Counters are lost when the whole NATS cluster restarts,
// which only resets minute-long windows.
//
// Each key is a fixed window aligned to the wall clock (all replicas agree on
// where a window starts, give or take their clock skew):
// "<name>.<window start, Unix seconds>.<sha256 of the caller's key>", value
// the decimal count. A replica sends at most one write per key at a time:
// requests arriving while it is in flight queue and go in the next write
// together (group commit, like the store's), so a hot token costs a replica
// about one KV round trip per batch rather than per request, and a refusal
// in a window already known to be used up costs none.

// LimitsConfig configures [Limits].
type LimitsConfig struct {
	// Bucket is the KV bucket of the counters. Defaults to LimitsBucketDefault.
	Bucket string
	// Window is the length of a counting window. Defaults to one minute (the
	// limits are per minute).
	Window time.Duration
	// Replicas is the bucket's replication in a NATS cluster. Defaults to 1.
	Replicas int
	// OpTimeout bounds one KV operation; past it (NATS unreachable) a request
	// is counted by the replica alone. Defaults to 1s.
	OpTimeout time.Duration
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Log gets a line when the shared counters become unreachable and when
	// they are back. Defaults to discarding.
	Log *slog.Logger
}

// LimitsBucketDefault is the default bucket of the shared counters.
const LimitsBucketDefault = "statusflow_ratelimits"

// LocalLimiter is what a shared limiter falls back to while NATS is
// unreachable or before [Limits.Open]: the replica's own in-memory limiter
// (server.NewMemoryLimiter).
type LocalLimiter interface {
	Take(key string) (ok bool, remaining int, reset time.Time)
}

// Limits hands out rate limiters whose counts are shared by every replica
// through a NATS KV bucket.
type Limits struct {
	cfg      LimitsConfig
	kv       atomic.Pointer[jetstream.KeyValue]
	degraded atomic.Bool
	ops      atomic.Int64
}

// NewLimits returns shared limits that count locally until Open.
func NewLimits(cfg LimitsConfig) *Limits {
	if cfg.Bucket == "" {
		cfg.Bucket = LimitsBucketDefault
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Limits{cfg: cfg}
}

// Open creates (or opens) the counters' bucket; from then on every limiter
// counts in it. Entries live two windows, so a window's key outlives it.
func (s *Limits) Open(ctx context.Context, js jetstream.JetStream) error {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: s.cfg.Bucket, Description: "statusflow rate-limit counters, one key per caller and window",
		TTL: 2 * s.cfg.Window, History: 1, Replicas: s.cfg.Replicas, Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		return fmt.Errorf("cluster: rate-limit bucket %s: %w", s.cfg.Bucket, err)
	}
	s.kv.Store(&kv)
	return nil
}

// Ops is the number of KV operations the limiters have sent (benchmarks).
func (s *Limits) Ops() int64 { return s.ops.Load() }

// Limiter returns the shared limiter called name allowing perMinute
// requests per window per key; local counts while the bucket is unreachable.
func (s *Limits) Limiter(name string, perMinute int, local LocalLimiter) *Limiter {
	return &Limiter{s: s, name: name, limit: perMinute, local: local, counters: map[string]*counter{}}
}

// Limiter is one named limit shared by replicas. It implements the server's
// Limiter interface (Take, Limit, Peek).
type Limiter struct {
	s     *Limits
	name  string
	limit int
	local LocalLimiter

	mu       sync.Mutex
	counters map[string]*counter
}

// counter is this replica's view of one key's window and its queue of
// requests waiting for the next write.
type counter struct {
	mu       sync.Mutex
	window   int64 // start of the window the fields describe, Unix seconds
	known    bool  // count and rev were read or written in this window
	count    int
	rev      uint64 // 0: the key does not exist yet
	waiters  []chan taken
	flushing bool
}

type taken struct {
	ok        bool
	remaining int
}

// Limit is the number of requests a window allows.
func (l *Limiter) Limit() int { return l.limit }

// Take counts one request for key across replicas and reports whether it is
// allowed, how many remain in the window, and when the window resets.
func (l *Limiter) Take(key string) (ok bool, remaining int, reset time.Time) {
	kvp := l.s.kv.Load()
	if kvp == nil {
		return l.local.Take(key)
	}
	start := l.s.cfg.Now().Truncate(l.s.cfg.Window)
	reset = start.Add(l.s.cfg.Window)
	c := l.counter(key, start.Unix())
	c.mu.Lock()
	c.at(start.Unix())
	if c.known && c.count >= l.limit {
		// Counts only grow within a window: no need to ask.
		c.mu.Unlock()
		return false, 0, reset
	}
	ch := make(chan taken, 1)
	c.waiters = append(c.waiters, ch)
	if !c.flushing {
		c.flushing = true
		go l.flush(*kvp, key, c)
	}
	c.mu.Unlock()
	t := <-ch
	if t.remaining < 0 { // the bucket was unreachable
		return l.local.Take(key)
	}
	return t.ok, t.remaining, reset
}

// Peek reports whether key's window is known to be used up, without counting
// a request (the server skips a token lookup then).
func (l *Limiter) Peek(key string) bool {
	start := l.s.cfg.Now().Truncate(l.s.cfg.Window).Unix()
	l.mu.Lock()
	c := l.counters[key]
	l.mu.Unlock()
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.window == start && c.known && c.count >= l.limit
}

func (l *Limiter) counter(key string, window int64) *counter {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counters[key]
	if c == nil {
		if len(l.counters) > 10000 {
			l.sweep(window)
		}
		c = &counter{window: window}
		l.counters[key] = c
	}
	return c
}

// sweep forgets the keys of past windows with nothing in flight.
func (l *Limiter) sweep(window int64) {
	for k, c := range l.counters {
		c.mu.Lock()
		idle := c.window < window && !c.flushing
		c.mu.Unlock()
		if idle {
			delete(l.counters, k)
		}
	}
}

// at moves c to window, forgetting what it knew of an earlier one.
func (c *counter) at(window int64) {
	if c.window != window {
		c.window, c.known, c.count, c.rev = window, false, 0, 0
	}
}

// flush writes the queued requests of key in batches until none is left.
func (l *Limiter) flush(kv jetstream.KeyValue, key string, c *counter) {
	sum := sha256.Sum256([]byte(key))
	hashed := hex.EncodeToString(sum[:16])
	for {
		start := l.s.cfg.Now().Truncate(l.s.cfg.Window).Unix()
		c.mu.Lock()
		batch := c.waiters
		c.waiters = nil
		if len(batch) == 0 {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		c.at(start)
		known, count, rev := c.known, c.count, c.rev
		c.mu.Unlock()

		k := l.name + "." + strconv.FormatInt(start, 10) + "." + hashed
		before, granted, nrev, err := l.add(kv, k, known, count, rev, len(batch))
		c.mu.Lock()
		if c.window == start {
			if err == nil {
				c.known, c.count, c.rev = true, before+granted, nrev
			} else {
				c.known = false
			}
		}
		c.mu.Unlock()
		l.s.reachable(err)
		for i, ch := range batch {
			switch {
			case err != nil:
				ch <- taken{remaining: -1}
			case i < granted:
				ch <- taken{ok: true, remaining: l.limit - (before + i + 1)}
			default:
				ch <- taken{}
			}
		}
	}
}

// add counts up to n requests in key: it reads the count when not known,
// grants what the limit leaves, and writes the new count at the revision it
// read (Create when the key is new). When another replica wrote first it
// reads again and retries. It returns the count before, how many it granted
// and the revision of its write.
func (l *Limiter) add(kv jetstream.KeyValue, key string, known bool, count int, rev uint64, n int) (before, granted int, _ uint64, err error) {
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), l.s.cfg.OpTimeout)
		if !known {
			l.s.ops.Add(1)
			e, gerr := kv.Get(ctx, key)
			switch {
			case errors.Is(gerr, jetstream.ErrKeyNotFound):
				count, rev = 0, 0
			case gerr != nil:
				cancel()
				return 0, 0, 0, gerr
			default:
				rev = e.Revision()
				if count, err = strconv.Atoi(string(e.Value())); err != nil {
					count = 0 // not ours to read: overwrite it
				}
			}
			known = true
		}
		granted = min(n, l.limit-count)
		if granted <= 0 {
			cancel()
			return count, 0, rev, nil
		}
		val := []byte(strconv.Itoa(count + granted))
		var nrev uint64
		l.s.ops.Add(1)
		if rev == 0 {
			nrev, err = kv.Create(ctx, key, val)
		} else {
			nrev, err = kv.Update(ctx, key, val, rev)
		}
		cancel()
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			known = false // another replica counted first: read again
			continue
		}
		if err != nil {
			return 0, 0, 0, err
		}
		return count, granted, nrev, nil
	}
	return 0, 0, 0, errors.New("cluster: rate-limit counter contended beyond 50 attempts")
}

// reachable logs when the shared counters go away and come back.
func (s *Limits) reachable(err error) {
	if err != nil && !s.degraded.Swap(true) {
		s.cfg.Log.Warn("shared rate limits unreachable: each replica counts alone until NATS answers", "err", err)
	} else if err == nil && s.degraded.Swap(false) {
		s.cfg.Log.Info("shared rate limits reachable again")
	}
}
