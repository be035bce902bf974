// Command benchpg measures text-status publishing over HTTP on PostgreSQL
// against a bare pgbench loop of single-row INSERT commits on the same
// server, in one run, and prints both rates and their ratio.
//
// The HTTP load comes from wrk in its own process (64 keep-alive connections
// by default), pgbench runs with as many clients. Rounds alternate the two,
// and the ratio printed is the median of the rounds' ratios, so a shared
// machine whose speed drifts moves both sides of a pair alike.
//
//	go run ./cmd/benchpg -rounds 3 -duration 10s
//
// It needs pgbench (Debian: postgresql-client / postgresql-contrib) and wrk
// on PATH, and a PostgreSQL server where it may create databases
// (-admin-url, default the tests' STATUSFLOW_TEST_POSTGRES).
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/statusflow/statusflow/internal/app"
	"github.com/statusflow/statusflow/internal/benchkit"
	"github.com/statusflow/statusflow/internal/config"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "load time per target and round")
	rounds := flag.Int("rounds", 3, "rounds, each running both targets")
	conns := flag.Int("conns", 64, "wrk connections and pgbench clients")
	adminURL := flag.String("admin-url", envOr("STATUSFLOW_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL of a database from which fresh databases are created")
	instances := flag.Int("instances", 1, "sandbox instances the requests are spread over, round robin (1: one busy instance)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the first round's statusflow run to this file")
	withSQLite := flag.Bool("sqlite", false, "also run the same load against statusflow on SQLite (no PostgreSQL at all) each round: the ceiling of the ratio any PostgreSQL write path can reach on this machine")
	flag.Parse()

	for _, tool := range []string{"pgbench", "wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			check(fmt.Errorf("%s not found on PATH (apt-get install -y postgresql-contrib wrk)", tool))
		}
	}
	dir, err := os.MkdirTemp("", "statusflow-benchpg-")
	check(err)
	defer os.RemoveAll(dir)

	// pgbench's database: one table, one row per transaction.
	pgbDB := createDB(*adminURL)
	defer dropDB(*adminURL, pgbDB)
	pgbURL := dbURL(*adminURL, pgbDB)
	db, err := sql.Open("pgx", pgbURL)
	check(err)
	_, err = db.Exec(`CREATE TABLE bench_insert (id BIGSERIAL PRIMARY KEY, v BIGINT NOT NULL, body TEXT NOT NULL)`)
	check(err)
	db.Close()
	script := filepath.Join(dir, "insert.sql")
	check(os.WriteFile(script, []byte("\\set v random(1, 1000000000)\nINSERT INTO bench_insert (v, body) VALUES (:v, 'Benchmark status');\n"), 0o600))

	// statusflow on its own fresh database, one sandbox instance.
	sfDB := createDB(*adminURL)
	defer dropDB(*adminURL, sfDB)
	cfg, err := config.Load(nil, func(string) string { return "" })
	check(err)
	cfg.Addr, cfg.DataDir, cfg.AccountToken, cfg.RateLimit = "127.0.0.1:0", dir, "sfa_bench-account-token-000000000000", 1<<30
	cfg.DatabaseURL = dbURL(*adminURL, sfDB)
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	check(err)
	check(a.Start(context.Background()))
	defer a.Stop(context.Background())
	names := []string{"bench"}
	if *instances > 1 {
		names = names[:0]
		for i := range *instances {
			names = append(names, fmt.Sprintf("bench%d", i+1))
		}
	}
	createInstances(a.Addr(), cfg.AccountToken, names)

	// The same code on SQLite, idle while the others run: what statusflow
	// costs without PostgreSQL's share of the CPU.
	var lite *app.App
	if *withSQLite {
		lcfg := *cfg
		lcfg.DatabaseURL, lcfg.DataDir = "", filepath.Join(dir, "sqlite")
		check(os.MkdirAll(lcfg.DataDir, 0o700))
		lite, err = app.New(context.Background(), &lcfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		check(err)
		check(lite.Start(context.Background()))
		defer lite.Stop(context.Background())
		createInstances(lite.Addr(), cfg.AccountToken, names)
	}
	spread := ""
	if len(names) > 1 {
		// Each wrk thread walks the instances round robin from its own start.
		spread = fmt.Sprintf(`local n, i = %d, math.random(0, %d)
request = function()
  i = i + 1
  return wrk.format(nil, "/api/message/status/bench" .. (i %% n + 1))
end
`, len(names), len(names)-1)
	}
	lua := filepath.Join(dir, "post.lua")
	check(os.WriteFile(lua, []byte(`wrk.method = "POST"
wrk.body = '{"type":"text","message":"Benchmark status","backgroundColor":"#128C7E","font":"serif","source":"bench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["token"] = "`+cfg.AccountToken+`"
`+spread), 0o600))
	sfURL := "http://" + a.Addr() + "/api/message/status/bench"

	fmt.Printf("load: %d clients, %d rounds of %s per target, %d CPUs, %d sandbox instance(s); load average %s\n", *conns, *rounds, *duration, numCPU(), len(names), loadAvg())
	var ratios, pgbs, sfs, lites, liteRatios []float64
	var p99s []time.Duration
	for i := range *rounds {
		// statusflow's idle connections go back while pgbench runs: the
		// server's max_connections is shared with pgbench's 64 clients.
		a.Store.DB.SetMaxIdleConns(0)
		a.Store.DB.SetMaxIdleConns(a.Store.DB.Stats().MaxOpenConnections)
		m := startCPUMeter(pgbDB)
		pgb := pgbench(pgbURL, script, *conns, *duration)
		pgbCPU := m.end()
		if i == 0 && *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			check(err)
			check(pprof.StartCPUProfile(f))
		}
		m = startCPUMeter(sfDB)
		ws0 := a.Store.WriteStats()
		sf, p99, errs := wrk(sfURL, lua, *conns, *duration)
		sfCPU := m.end()
		ws := a.Store.WriteStats()
		if i == 0 && *cpuprofile != "" {
			pprof.StopCPUProfile()
		}
		ratios, pgbs, sfs, p99s = append(ratios, sf/pgb), append(pgbs, pgb), append(sfs, sf), append(p99s, p99)
		fmt.Printf("round %d: pgbench INSERT %7.0f tx/s, statusflow %6.0f req/s (p99 %s, non-2xx %d), ratio %.3f\n", i+1, pgb, sf, p99, errs, sf/pgb)
		fmt.Printf("  CPU per pgbench tx:      %s\n", pgbCPU.perOp(pgb*duration.Seconds()))
		fmt.Printf("  CPU per statusflow req:  %s\n", sfCPU.perOp(sf*duration.Seconds()))
		fmt.Printf("  statusflow writes: %.1f per request, %.1f per batch, %d batches replayed\n",
			float64(ws.Writes-ws0.Writes)/(sf*duration.Seconds()), float64(ws.Writes-ws0.Writes)/float64(max(ws.Batches-ws0.Batches, 1)), ws.Replays-ws0.Replays)
		if lite != nil {
			m = startCPUMeter(sfDB)
			l, lp99, lerrs := wrk(strings.Replace(sfURL, a.Addr(), lite.Addr(), 1), lua, *conns, *duration)
			lCPU := m.end()
			lites, liteRatios = append(lites, l), append(liteRatios, l/pgb)
			fmt.Printf("  statusflow on SQLite:    %6.0f req/s (p99 %s, non-2xx %d), ratio to pgbench %.3f; CPU per req %s\n", l, lp99, lerrs, l/pgb, lCPU.perOp(l*duration.Seconds()))
		}
	}
	fmt.Printf("pgbench single-row INSERT : %7.0f tx/s (median of %d rounds)\n", median(pgbs), len(pgbs))
	fmt.Printf("statusflow text on PG     : %7.0f req/s p99 %s (median of %d rounds)\n", median(sfs), medianDur(p99s), len(sfs))
	fmt.Printf("ratio (statusflow / pgbench): %.3f median, min %.3f, max %.3f (target >= 0.6)\n", median(ratios), slices.Min(ratios), slices.Max(ratios))
	if lite != nil {
		fmt.Printf("statusflow text on SQLite : %7.0f req/s, ratio to pgbench %.3f median (no PostgreSQL work at all: the ceiling of the ratio above)\n", median(lites), median(liteRatios))
	}
	fmt.Printf("load average at the end: %s\n", loadAvg())
	n, _ := a.Store.SandboxStatusCount(context.Background(), "bench")
	fmt.Printf("statuses recorded by the sandbox: %d\n", n)
}

// createInstances creates the sandbox instances names on the server at addr.
func createInstances(addr, token string, names []string) {
	for _, name := range names {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/instance/new", strings.NewReader(`{"name":"`+name+`","engine":"sandbox"}`))
		req.Header.Set("token", token)
		resp, err := http.DefaultClient.Do(req)
		check(err)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			check(fmt.Errorf("create instance: %s", resp.Status))
		}
	}
}

var tpsRe = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

func pgbench(u, script string, clients int, d time.Duration) float64 {
	var out []byte
	var err error
	for attempt := 0; ; attempt++ {
		out, err = exec.Command("pgbench", "-n", "-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(int(d.Seconds())), "-f", script, u).CombinedOutput()
		// A shared server's max_connections can be taken by other clients
		// for a while: wait for them rather than give up the whole run.
		if err == nil || !strings.Contains(string(out), "too many clients") || attempt == 5 {
			break
		}
		time.Sleep(3 * time.Second)
	}
	if err != nil {
		check(fmt.Errorf("pgbench: %v\n%s", err, out))
	}
	m := tpsRe.FindSubmatch(out)
	if m == nil {
		check(fmt.Errorf("pgbench: no tps in\n%s", out))
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// wrk runs wrk against u and returns requests per second, p99 and the
// number of non-2xx answers.
func wrk(u, lua string, conns int, d time.Duration) (float64, time.Duration, int) {
	r, err := benchkit.Wrk(u, lua, conns, d)
	check(err)
	return r.RPS, r.P99, r.Non2xx
}

func createDB(admin string) string {
	name, err := benchkit.CreateDB(admin)
	check(err)
	return name
}

func dropDB(admin, name string) { benchkit.DropDB(admin, name) }

// dbURL is admin with its database replaced by name.
func dbURL(admin, name string) string {
	u, err := benchkit.DBURL(admin, name)
	check(err)
	return u
}

func median(xs []float64) float64 { return benchkit.Median(xs) }

func medianDur(ds []time.Duration) time.Duration { return benchkit.MedianDur(ds) }

func envOr(k, def string) string { return benchkit.EnvOr(k, def) }

func loadAvg() string { return benchkit.LoadAvg() }

func numCPU() int { return runtime.NumCPU() }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpg:", err)
		// os.Exit skips the deferred drops: a failed run leaves no database.
		benchkit.DropCreated()
		os.Exit(1)
	}
}
