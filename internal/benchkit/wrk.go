package benchkit

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// WrkResult is what a wrk run reports.
type WrkResult struct {
	// RPS is the rate of 2xx answers: wrk's Requests/sec less the share of
	// non-2xx answers (an error answer is no publication).
	RPS float64
	// P50 and P99 are the median and 99th percentile latencies, rounded
	// to 10 µs.
	P50, P99 time.Duration
	// Requests is how many requests completed; Non2xx how many of them were
	// answered with another status.
	Requests, Non2xx int
}

// Wrk runs wrk (2 threads, conns keep-alive connections, the Lua script
// lua, latency percentiles) against u for d, as its own process.
func Wrk(u, lua string, conns int, d time.Duration) (WrkResult, error) {
	return WrkWith(u, lua, conns, d, WrkOptions{})
}

// WrkOptions are the wrk settings [Wrk] leaves at their defaults.
type WrkOptions struct {
	// Threads is wrk's -t, at most conns. Defaults to 2.
	Threads int
	// Timeout is wrk's --timeout: a request not answered within it counts
	// as an error and its latency is not recorded. Defaults to wrk's 2 s.
	Timeout time.Duration
	// UntilThreadsStop ends the run once the script has stopped every
	// thread (wrk.thread:stop()), d being then only a bound: wrk itself
	// sleeps out -d whatever its threads do, so when only its main thread
	// is left it is interrupted (SIGINT, after which it prints its report
	// as at the end of -d). Requests/sec then counts up to that moment.
	UntilThreadsStop bool
}

// WrkWith is [Wrk] with the settings o.
func WrkWith(u, lua string, conns int, d time.Duration, o WrkOptions) (WrkResult, error) {
	args := []string{"-t", strconv.Itoa(cmp.Or(o.Threads, 2)), "-c", strconv.Itoa(conns), "-d", wrkTime(d), "--latency", "-s", lua}
	if o.Timeout > 0 {
		args = append(args, "--timeout", wrkTime(o.Timeout))
	}
	cmd := exec.Command("wrk", append(args, u)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return WrkResult{}, fmt.Errorf("wrk: %v", err)
	}
	if o.UntilThreadsStop {
		done := make(chan struct{})
		defer close(done)
		go interruptWhenIdle(cmd.Process, done)
	}
	if err := cmd.Wait(); err != nil {
		return WrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out.Bytes())
	}
	return ParseWrk(out.Bytes())
}

// interruptWhenIdle sends p (wrk) SIGINT once its worker threads, seen
// running, have all ended, checking every 50 ms until done closes.
func interruptWhenIdle(p *os.Process, done <-chan struct{}) {
	tasks := filepath.Join("/proc", strconv.Itoa(p.Pid), "task")
	started := false
	for {
		select {
		case <-done:
			return
		case <-time.After(50 * time.Millisecond):
		}
		ents, err := os.ReadDir(tasks)
		if err != nil {
			return
		}
		if len(ents) > 1 {
			started = true
		} else if started {
			p.Signal(os.Interrupt)
			return
		}
	}
}

// wrkTime writes d as wrk reads a time: whole seconds ("13m30s", Go's
// form, is refused).
func wrkTime(d time.Duration) string {
	return strconv.Itoa(int(max(d.Round(time.Second), time.Second).Seconds())) + "s"
}

var (
	rpsRe   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50Re   = regexp.MustCompile(`\s50%\s+([0-9.]+)(us|ms|s|m)\b`)
	p99Re   = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s|m)\b`)
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
	r.P50, r.P99 = percentile(p50Re, out), percentile(p99Re, out)
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

// percentile reads one line of wrk's latency distribution ("99%  1.20s").
func percentile(re *regexp.Regexp, out []byte) time.Duration {
	m := re.FindSubmatch(out)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[string(m[2])]
	return time.Duration(v * float64(unit)).Round(10 * time.Microsecond)
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
