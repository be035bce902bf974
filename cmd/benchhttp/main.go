// Command benchhttp measures text-status publishing over HTTP on a sandbox
// instance against a bare Fiber JSON handler on the same machine, in one run,
// with the same load generator (64 concurrent keep-alive connections by
// default), and prints both throughputs, their ratio and the p99 latencies.
//
//	go run ./cmd/benchhttp -rounds 3 -duration 5s -conns 64
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/app"
	"github.com/statusflow/statusflow/internal/config"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "load time per target and round")
	rounds := flag.Int("rounds", 3, "rounds, each running both targets; the ratio printed is the median of the rounds'")
	conns := flag.Int("conns", 64, "concurrent connections")
	warmup := flag.Duration("warmup", time.Second, "warm-up time per target and round (not measured)")
	dbURL := flag.String("database-url", "", "STATUSFLOW_DATABASE_URL for statusflow (default: SQLite in a temp dir)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the first round's statusflow run to this file")
	memprofile := flag.String("memprofile", "", "write the allocation profile after the first round's statusflow run to this file, and the one before it to this file + .base (pprof -base)")
	goroutines := flag.String("goroutines", "", "write a goroutine profile taken half-way through the first statusflow run to this file")
	flag.Parse()

	body := []byte(`{"type":"text","message":"Benchmark status","backgroundColor":"#128C7E","font":"serif","source":"bench"}`)

	// The baseline: a bare Fiber handler that decodes and answers JSON.
	bare := fiber.New(fiber.Config{DisableStartupMessage: true})
	bare.Post("/echo", func(c *fiber.Ctx) error {
		var m map[string]any
		if err := c.BodyParser(&m); err != nil {
			return err
		}
		return c.JSON(fiber.Map{"success": true, "message": "ok", "data": m})
	})
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	go bare.Listener(bln)
	defer bare.Shutdown()

	// statusflow on its embedded defaults, a sandbox instance.
	dir, err := os.MkdirTemp("", "statusflow-bench-")
	check(err)
	defer os.RemoveAll(dir)
	cfg, err := config.Load(nil, func(string) string { return "" })
	check(err)
	cfg.Addr, cfg.DataDir, cfg.AccountToken, cfg.RateLimit = "127.0.0.1:0", dir, "sfa_bench-account-token-000000000000", 1<<30
	cfg.DatabaseURL = *dbURL
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	check(err)
	check(a.Start(context.Background()))
	defer a.Stop(context.Background())
	client := newClient(*conns)
	req, _ := http.NewRequest("POST", "http://"+a.Addr()+"/api/instance/new", bytes.NewReader([]byte(`{"name":"bench","engine":"sandbox"}`)))
	req.Header.Set("token", cfg.AccountToken)
	resp, err := client.Do(req)
	check(err)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		check(fmt.Errorf("create instance: %s", resp.Status))
	}

	fmt.Printf("load: %d connections, %d rounds of %s per target after %s warm-up, %d CPUs\n", *conns, *rounds, *duration, *warmup, numCPU())
	sfURL := "http://" + a.Addr() + "/api/message/status/bench"
	bareURL := "http://" + bln.Addr().String() + "/echo"
	// Rounds alternate the two targets, and the ratio is taken round by
	// round: a machine whose speed drifts (shared CPUs) moves both sides of
	// a pair alike, where one long run of each would compare two moments.
	var bases, sfs []result
	var ratios []float64
	for i := range *rounds {
		base := run(client, bareURL, "", body, *conns, *warmup, *duration)
		if i == 0 && *memprofile != "" { // the allocations before, for pprof -base
			f, err := os.Create(*memprofile + ".base")
			check(err)
			check(pprof.Lookup("allocs").WriteTo(f, 0))
			f.Close()
		}
		if i == 0 && *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			check(err)
			check(pprof.StartCPUProfile(f))
		}
		if i == 0 && *goroutines != "" {
			time.AfterFunc(*warmup+*duration/2, func() {
				f, err := os.Create(*goroutines)
				check(err)
				pprof.Lookup("goroutine").WriteTo(f, 1)
				f.Close()
			})
		}
		commits := a.Store.Commits()
		sf := run(client, sfURL, cfg.AccountToken, body, *conns, *warmup, *duration)
		sf.commits = a.Store.Commits() - commits
		if i == 0 && *cpuprofile != "" {
			pprof.StopCPUProfile()
		}
		if i == 0 && *memprofile != "" {
			f, err := os.Create(*memprofile)
			check(err)
			check(pprof.Lookup("allocs").WriteTo(f, 0))
			f.Close()
		}
		bases, sfs, ratios = append(bases, base), append(sfs, sf), append(ratios, sf.rps/base.rps)
		fmt.Printf("round %d: bare %7.0f req/s (p99 %7s), statusflow %6.0f req/s (p50 %7s, p99 %7s), ratio %.3f, errors %d/%d, commits/request %.3f\n",
			i+1, base.rps, base.p99, sf.rps, sf.p50, sf.p99, sf.rps/base.rps, base.errors, sf.errors, float64(sf.commits)/float64(sf.sent))
	}
	mid := median(ratios)
	fmt.Printf("bare fiber JSON handler : %9.0f req/s  p99 %7s  (median of %d rounds)\n", median(rps(bases)), medianDur(bases), len(bases))
	fmt.Printf("statusflow text status  : %9.0f req/s  p99 %7s  (median of %d rounds)\n", median(rps(sfs)), medianDur(sfs), len(sfs))
	fmt.Printf("ratio (statusflow / bare): %.3f median of %d rounds, min %.3f, max %.3f (target >= 0.25)\n", mid, len(ratios), slices.Min(ratios), slices.Max(ratios))
	n, _ := a.Store.SandboxStatusCount(context.Background(), "bench")
	fmt.Printf("statuses recorded by the sandbox: %d\n", n)
}

func rps(rs []result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.rps
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianDur is the median of the rounds' p99 latencies.
func medianDur(rs []result) time.Duration {
	d := make([]float64, len(rs))
	for i, r := range rs {
		d[i] = float64(r.p99)
	}
	return time.Duration(median(d)).Round(10 * time.Microsecond)
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
	sent     int64  // requests sent, warm-up included
	commits  uint64 // database commits meanwhile (statusflow): one per request at most
}

func run(client *http.Client, url, token string, body []byte, conns int, warmup, d time.Duration) result {
	var measuring atomic.Bool
	var errs, sent atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	stop := time.Now().Add(warmup + d)
	time.AfterFunc(warmup, func() { measuring.Store(true) })
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for time.Now().Before(stop) {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if token != "" {
					req.Header.Set("token", token)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				sent.Add(1)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				el := time.Since(t0)
				if !measuring.Load() {
					continue
				}
				if err != nil || resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				local = append(local, el)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{rps: float64(len(lat)) / d.Seconds(), errors: errs.Load(), sent: sent.Load()}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2].Round(10 * time.Microsecond)
		r.p99 = lat[len(lat)*99/100].Round(10 * time.Microsecond)
	}
	return r
}

func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}, Timeout: 30 * time.Second}
}

func numCPU() int { return runtime.NumCPU() }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchhttp:", err)
		os.Exit(1)
	}
}
