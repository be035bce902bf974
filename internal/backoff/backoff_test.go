package backoff_test

import (
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/backoff"
)

func TestExponential(t *testing.T) {
	for _, tt := range []struct {
		base, limit time.Duration
		attempt     int
		r           float64
		want        time.Duration
	}{
		{time.Second, time.Minute, 1, 0.5, time.Second},
		{time.Second, time.Minute, 3, 0.5, 4 * time.Second},
		{time.Second, time.Minute, 7, 0.5, time.Minute},    // 64 s capped
		{time.Second, time.Minute, 1000, 0.5, time.Minute}, // no overflow
		{time.Second, time.Minute, 2, 0, 1600 * time.Millisecond},
		{time.Second, time.Minute, 2, 1, 2400 * time.Millisecond},
		{10 * time.Second, 5 * time.Second, 1, 0.5, 5 * time.Second}, // base above limit
	} {
		if got := backoff.Exponential(tt.base, tt.limit, tt.attempt, tt.r); got != tt.want {
			t.Errorf("Exponential(%v, %v, %d, %v) = %v, want %v", tt.base, tt.limit, tt.attempt, tt.r, got, tt.want)
		}
	}
}
