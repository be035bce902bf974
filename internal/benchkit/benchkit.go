// Package benchkit holds what the benchmark commands (cmd/benchpg,
// cmd/benchcluster) share: driving wrk and reading its report, fresh
// PostgreSQL databases per run, CPU time per process from /proc, medians and
// the load average. It is for benchmarks only; nothing in the server
// imports it.
package benchkit

import (
	"os"
	"slices"
	"strings"
	"time"
)

// Median is the median of xs (the mean of the middle two for an even count).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MedianDur is the median of ds, rounded to 10 µs.
func MedianDur(ds []time.Duration) time.Duration {
	f := make([]float64, len(ds))
	for i, d := range ds {
		f[i] = float64(d)
	}
	return time.Duration(Median(f)).Round(10 * time.Microsecond)
}

// LoadAvg is /proc/loadavg's 1, 5 and 15 minute figures ("?" when unreadable).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// EnvOr is the environment variable k, or def when it is unset or empty.
func EnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
