package webhooks

import (
	"net/http"
	"testing"
	"time"
)

func TestExponentialRetry_NextRetry(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name          string
		attempt       int
		jitter        float64
		expectedDelay time.Duration
	}{
		{"FirstRetryNoJitterLow", 1, 0, 800 * time.Millisecond},
		{"FirstRetryMiddle", 1, 0.5, time.Second},
		{"FirstRetryHigh", 1, 0.999999, 1200 * time.Millisecond},
		{"Doubles", 3, 0.5, 4 * time.Second},
		{"Capped", 30, 0.5, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ExponentialRetry{Base: time.Second, Max: time.Minute, Jitter: func() float64 { return tt.jitter }}
			got := r.NextRetry(tt.attempt, now).Sub(now)
			if d := got - tt.expectedDelay; d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("delay %s, want %s", got, tt.expectedDelay)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		given    string
		expected time.Duration
		ok       bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.given, now)
		if got != tt.expected || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %s, %v; want %s, %v", tt.given, got, ok, tt.expected, tt.ok)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := map[int]outcome{
		200: outcomeDelivered, 204: outcomeDelivered, 301: outcomeRetry, 400: outcomePermanent, 401: outcomePermanent,
		404: outcomePermanent, 408: outcomeRetry, 410: outcomeGone, 422: outcomePermanent, 429: outcomeRetry,
		500: outcomeRetry, 503: outcomeRetry,
	}
	for code, expected := range tests {
		if got := classify(code); got != expected {
			t.Errorf("classify(%d) = %d, want %d", code, got, expected)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := Config{Timeout: time.Minute, Lease: time.Second}.WithDefaults()
	if err := c.Validate(); err == nil {
		t.Fatal("a lease shorter than the timeout passed")
	}
	c = Config{MaxAttempts: -1}.WithDefaults()
	if err := c.Validate(); err == nil {
		t.Fatal("negative attempts passed")
	}
}
