// Command benchhttp measures text-status publishing over HTTP on a sandbox
// instance against a bare Fiber JSON handler on the same machine, in one run,
// with the same load generator (64 concurrent keep-alive connections by
// default), and prints both throughputs, their ratio and the p99 latencies.
//
//	go run ./cmd/benchhttp -duration 10s -conns 64
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
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/app"
	"github.com/statusflow/statusflow/internal/config"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "load time per target")
	conns := flag.Int("conns", 64, "concurrent connections")
	warmup := flag.Duration("warmup", 2*time.Second, "warm-up time per target (not measured)")
	dbURL := flag.String("database-url", "", "STATUSFLOW_DATABASE_URL for statusflow (default: SQLite in a temp dir)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the statusflow run to this file")
	goroutines := flag.String("goroutines", "", "write a goroutine profile taken half-way through the statusflow run to this file")
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

	fmt.Printf("load: %d connections, %s per target after %s warm-up, %d CPUs\n", *conns, *duration, *warmup, numCPU())
	base := run(client, "http://"+bln.Addr().String()+"/echo", "", body, *conns, *warmup, *duration)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
	}
	if *goroutines != "" {
		time.AfterFunc(*warmup+*duration/2, func() {
			f, err := os.Create(*goroutines)
			check(err)
			pprof.Lookup("goroutine").WriteTo(f, 1)
			f.Close()
		})
	}
	sf := run(client, "http://"+a.Addr()+"/api/message/status/bench", cfg.AccountToken, body, *conns, *warmup, *duration)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	fmt.Printf("bare fiber JSON handler : %9.0f req/s  p50 %7s  p99 %7s  errors %d\n", base.rps, base.p50, base.p99, base.errors)
	fmt.Printf("statusflow text status  : %9.0f req/s  p50 %7s  p99 %7s  errors %d\n", sf.rps, sf.p50, sf.p99, sf.errors)
	fmt.Printf("ratio (statusflow / bare): %.3f (target >= 0.25)\n", sf.rps/base.rps)
	n, _ := a.Store.SandboxStatusCount(context.Background(), "bench")
	fmt.Printf("statuses recorded by the sandbox: %d\n", n)
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

func run(client *http.Client, url, token string, body []byte, conns int, warmup, d time.Duration) result {
	var measuring atomic.Bool
	var errs atomic.Int64
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
	r := result{rps: float64(len(lat)) / d.Seconds(), errors: errs.Load()}
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
