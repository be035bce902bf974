package webhooks

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/statusflow/statusflow/internal/ssrf"
)

// Defaults of [Config].
const (
	// MaxAttemptsDefault is how many times a delivery is tried before it fails.
	MaxAttemptsDefault = 12
	// RetryBaseDefault is the wait before the first retry; each retry doubles it.
	RetryBaseDefault = 2 * time.Second
	// RetryMaxDefault caps the wait between two attempts.
	RetryMaxDefault = time.Hour
	// TimeoutDefault bounds one delivery request.
	TimeoutDefault = 10 * time.Second
	// PollIntervalDefault is how often the worker looks for due deliveries
	// when nothing wakes it.
	PollIntervalDefault = time.Second
	// SecretGraceDefault is how long a rotated-out secret still signs (and,
	// for inbound hooks, is still accepted).
	SecretGraceDefault = 24 * time.Hour
	// ConcurrencyDefault is how many deliveries one worker sends at once.
	ConcurrencyDefault = 16
	// RetryAfterMaxDefault caps a receiver's Retry-After.
	RetryAfterMaxDefault = 6 * time.Hour
	// InboundToleranceDefault is the allowed clock difference of an inbound
	// webhook-timestamp (the Standard Webhooks library's fixed ±5 minutes).
	InboundToleranceDefault = 5 * time.Minute
)

// Config is the webhooks' policy. The zero value is usable.
type Config struct {
	// AllowPrivate lets webhook URLs resolve to loopback, private,
	// link-local and metadata addresses (STATUSFLOW_WEBHOOK_ALLOW_PRIVATE).
	// Defaults to false.
	AllowPrivate bool
	// AllowAddrs are exact IP:port pairs allowed although private. Defaults to none.
	AllowAddrs []netip.AddrPort
	// LookupIP resolves webhook hosts (tests map names without DNS).
	// Defaults to the system resolver.
	LookupIP ssrf.LookupFunc

	// MaxAttempts is how many attempts a delivery gets before it is
	// [StateFailed] (STATUSFLOW_WEBHOOK_MAX_ATTEMPTS). Defaults to [MaxAttemptsDefault].
	MaxAttempts int
	// RetryBase is the first retry's wait; attempt n waits RetryBase·2^(n-1),
	// ±20% jitter, at most RetryMax (STATUSFLOW_WEBHOOK_RETRY_BASE). Defaults
	// to [RetryBaseDefault].
	RetryBase time.Duration
	// RetryMax caps the wait between attempts (STATUSFLOW_WEBHOOK_RETRY_MAX).
	// Defaults to [RetryMaxDefault].
	RetryMax time.Duration
	// RetryAfterMax caps a receiver's Retry-After. Defaults to [RetryAfterMaxDefault].
	RetryAfterMax time.Duration
	// Timeout bounds one delivery request, connect to last body byte
	// (STATUSFLOW_WEBHOOK_TIMEOUT). Defaults to [TimeoutDefault].
	Timeout time.Duration
	// Lease is how long a claimed delivery belongs to its worker; a row
	// still delivering after it is due again (its worker died)
	// (STATUSFLOW_WEBHOOK_LEASE). Defaults to Timeout + 30s. It must exceed
	// Timeout.
	Lease time.Duration
	// PollInterval is how often the worker looks for due deliveries when
	// nothing wakes it; it bounds how late a retry can be
	// (STATUSFLOW_WEBHOOK_POLL_INTERVAL). Defaults to [PollIntervalDefault].
	PollInterval time.Duration
	// Concurrency is how many deliveries a worker sends at once. Defaults to
	// [ConcurrencyDefault].
	Concurrency int
	// SecretGrace is how long a rotated-out secret keeps signing deliveries
	// and is accepted on inbound hooks (STATUSFLOW_WEBHOOK_SECRET_GRACE).
	// Defaults to [SecretGraceDefault]; a negative value means no grace.
	SecretGrace time.Duration

	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Jitter returns a random number in [0,1) for backoff jitter. Defaults
	// to math/rand/v2.Float64.
	Jitter func() float64
}

// WithDefaults returns a copy with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = MaxAttemptsDefault
	}
	if c.RetryBase == 0 {
		c.RetryBase = RetryBaseDefault
	}
	if c.RetryMax == 0 {
		c.RetryMax = RetryMaxDefault
	}
	if c.RetryAfterMax == 0 {
		c.RetryAfterMax = RetryAfterMaxDefault
	}
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	if c.Lease == 0 {
		c.Lease = c.Timeout + 30*time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.SecretGrace == 0 {
		c.SecretGrace = SecretGraceDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Jitter == nil {
		c.Jitter = randFloat
	}
	return c
}

// Validate reports settings that cannot work; errors name the environment variable.
func (c Config) Validate() error {
	var errs []error
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("STATUSFLOW_WEBHOOK_MAX_ATTEMPTS must be at least 1, got %d", c.MaxAttempts))
	}
	if c.RetryBase <= 0 {
		errs = append(errs, fmt.Errorf("STATUSFLOW_WEBHOOK_RETRY_BASE must be positive, got %s", c.RetryBase))
	}
	if c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("STATUSFLOW_WEBHOOK_RETRY_MAX (%s) must be at least STATUSFLOW_WEBHOOK_RETRY_BASE (%s)", c.RetryMax, c.RetryBase))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("STATUSFLOW_WEBHOOK_TIMEOUT must be positive, got %s", c.Timeout))
	}
	if c.Lease <= c.Timeout {
		errs = append(errs, fmt.Errorf("STATUSFLOW_WEBHOOK_LEASE (%s) must exceed STATUSFLOW_WEBHOOK_TIMEOUT (%s)", c.Lease, c.Timeout))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("STATUSFLOW_WEBHOOK_POLL_INTERVAL must be positive, got %s", c.PollInterval))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("webhooks Concurrency must be at least 1, got %d", c.Concurrency))
	}
	return errors.Join(errs...)
}

// grace is the effective secret grace (0 when disabled).
func (c Config) grace() time.Duration { return max(c.SecretGrace, 0) }
