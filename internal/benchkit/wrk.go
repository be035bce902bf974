package benchkit

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// WrkResult is what a wrk run reports.
type WrkResult struct {
	// RPS is the rate of 2xx answers: wrk's Requests/sec less the share of
	// non-2xx answers (an error answer is no publication).
	RPS float64
	// P99 is the 99th percentile latency, rounded to 10 µs.
	P99 time.Duration
	// Requests is how many requests completed; Non2xx how many of them were
	// answered with another status.
	Requests, Non2xx int
}

// Wrk runs wrk (2 threads, conns keep-alive connections, the Lua script
// lua, latency percentiles) against u for d, as its own process.
func Wrk(u, lua string, conns int, d time.Duration) (WrkResult, error) {
	out, err := exec.Command("wrk", "-t", "2", "-c", strconv.Itoa(conns), "-d", d.String(), "--latency", "-s", lua, u).CombinedOutput()
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return ParseWrk(out)
}

var (
	rpsRe   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99Re   = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
	non2Re  = regexp.MustCompile(`Non-2xx or 3xx responses: ([0-9]+)`)
	totalRe = regexp.MustCompile(`([0-9]+) requests in`)
)

// ParseWrk reads a wrk --latency report.
func ParseWrk(out []byte) (WrkResult, error) {
	m := rpsRe.FindSubmatch(out)
	if m == nil {
		return WrkResult{}, fmt.Errorf("wrk: no Requests/sec in\n%s", out)
	}
	var r WrkResult
	r.RPS, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := p99Re.FindSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(m[2])]
		r.P99 = time.Duration(v * float64(unit)).Round(10 * time.Microsecond)
	}
	if m := non2Re.FindSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.Atoi(string(m[1]))
	}
	r.Requests = 1
	if m := totalRe.FindSubmatch(out); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		r.Requests = max(n, 1)
	}
	if r.Non2xx > 0 {
		r.RPS = r.RPS * (1 - float64(r.Non2xx)/float64(r.Requests))
	}
	return r, nil
}

// WritePostLua writes a wrk script to path that POSTs body as JSON with
// the token header.
func WritePostLua(path, body, token string) error {
	return os.WriteFile(path, []byte(`wrk.method = "POST"
wrk.body = '`+body+`'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["token"] = "`+token+`"
`), 0o600)
}
