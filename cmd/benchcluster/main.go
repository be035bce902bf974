// Command benchcluster measures what clustering (issue 14) costs, in one
// run on PostgreSQL with real statusflow processes and a nats-server of
// its own:
//
//  1. onoff: text statuses over HTTP on one replica with clustering off
//     (PostgreSQL and the external NATS, no STATUSFLOW_CLUSTER_REPLICA) and
//     on (a replica id: leases, fencing, shared rate limits in NATS KV),
//     rounds alternated, the median of the rounds' on/off ratios printed
//     (target >= 0.9).
//
//  2. forward: two replicas on one database and one NATS, the instance
//     owned by A; load to A (local) against load to B (forwarded to A over
//     NATS request-reply): requests/s, p99 and CPU per request (both
//     statusflow processes and nats-server, from /proc/<pid>/stat), and the
//     forwarded/local ratios (target <= 1.3).
//
//  3. rest: 1,000 sandbox instances owned by one replica, then by three,
//     nothing else happening: NATS KV writes, JetStream API requests and
//     client messages per second (nats-server's monitoring port), and the
//     CPU statusflow, nats-server and PostgreSQL use per second.
//
//  4. r3 (not in the default -parts): JetStream with three copies, the
//     compose profile "cluster" (STATUSFLOW_NATS_REPLICAS=3 on a 3-node NATS
//     cluster), against one copy on the same topology: one replica with
//     clustering on under each, rounds alternated, CPU per request of
//     statusflow, each nats-server node and PostgreSQL, requests/s and p99;
//     then ownership at rest (part 3, one replica) with 1 and 3 copies
//     (-r3-rest).
//
//  5. media (not in the default -parts): media statuses through one replica
//     with clustering on, sandbox engine: a 1080×1920 photo, a 20 s 1080p
//     phone video in HEVC (re-encoded) and in H.264 (copied), a 30 s voice
//     note as MP3 (converted) and as Ogg Opus (copied), generated once with
//     ffmpeg and fetched from a loopback HTTP server in this process; per
//     kind statuses/s, p50/p99 and CPU per status of statusflow, its
//     ffmpeg/ffprobe children, nats-server and PostgreSQL, against the
//     pipeline's own tool command lines run directly on the same file.
//
//     go run ./cmd/benchcluster -rounds 5 -duration 8s -rest 60s
//     go run ./cmd/benchcluster -parts r3 -rounds 3
//     go run ./cmd/benchcluster -parts media
//
// Load comes from wrk in its own process (64 connections). statusflow is
// built from this module (go build) and started as child processes
// configured by environment, so each one's CPU is its own; nats-server is
// built from the module's nats-server version unless -nats-server names a
// binary. It needs wrk (and for part 5 ffmpeg) on PATH and a PostgreSQL
// server where it may create databases (-admin-url, default the tests' STATUSFLOW_TEST_POSTGRES).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/statusflow/statusflow/internal/benchkit"
	"github.com/statusflow/statusflow/internal/store"
)

const accountToken = "sfa_bench-account-token-000000000000"

const textBody = `{"type":"text","message":"Benchmark status","backgroundColor":"#128C7E","font":"serif","source":"bench"}`

var (
	duration = flag.Duration("duration", 8*time.Second, "load time per target and round")
	rounds   = flag.Int("rounds", 5, "rounds, each running both targets")
	conns    = flag.Int("conns", 64, "wrk connections")
	adminURL = flag.String("admin-url", benchkit.EnvOr("STATUSFLOW_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL of a database from which fresh databases are created")
	parts    = flag.String("parts", "onoff,forward,rest", "which parts to run, comma-separated")
	rest     = flag.Duration("rest", 60*time.Second, "how long ownership at rest is measured")
	nInst    = flag.Int("instances", 1000, "sandbox instances owned at rest")
	restReps = flag.String("rest-replicas", "1,3", "replica counts measured at rest")
	leaseTTL = flag.Duration("ttl", 10*time.Second, "STATUSFLOW_CLUSTER_LEASE_TTL")
	natsBin  = flag.String("nats-server", "", "nats-server binary (default: built from the module's nats-server version)")
	sfBin    = flag.String("statusflow", "", "statusflow binary (default: built from this module)")
	r3Rest   = flag.Bool("r3-rest", true, "part r3: also measure ownership at rest (-instances, -rest) on a 3-node NATS cluster with 1 and 3 copies")

	mediaConns     = flag.Int("media-conns", 4, "part media: wrk connections (each its own thread and sandbox instance)")
	mediaProcs     = flag.Int("media-processes", runtime.NumCPU(), "part media: STATUSFLOW_MEDIA_PROCESSES (default: CPUs, statusflow's default)")
	mediaDur       = flag.Duration("media-duration", 60*time.Second, "part media: load time per kind (each connection then finishes its request)")
	mediaRounds    = flag.Int("media-rounds", 1, "part media: rounds over the kinds")
	mediaMin       = flag.Int("media-min", 3, "part media: statuses each connection publishes at least, whatever -media-duration")
	mediaBare      = flag.Int("media-bare", 3, "part media: runs of the bare tool command lines per kind")
	mediaKindsFlag = flag.String("media-kinds", "image,video-hevc,video-h264,voice-mp3,voice-opus", "part media: kinds, comma-separated")
	mediaCache     = flag.String("media-cache", filepath.Join(os.TempDir(), "statusflow-benchcluster-media"), "part media: where the generated media are kept between runs")
)

func main() {
	flag.Parse()
	if _, err := exec.LookPath("wrk"); err != nil {
		check(fmt.Errorf("wrk not found on PATH (apt-get install -y wrk)"))
	}
	dir, err := os.MkdirTemp("", "statusflow-benchcluster-")
	check(err)
	defer os.RemoveAll(dir)
	// Ctrl-C: stop the children and drop the databases.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; check(fmt.Errorf("interrupted")) }()
	defer benchkit.DropCreated()
	defer stopAll()

	if *sfBin == "" {
		*sfBin = filepath.Join(dir, "statusflow")
		build(*sfBin, ".")
	}
	if *natsBin == "" {
		*natsBin = filepath.Join(dir, "nats-server")
		build(*natsBin, "github.com/nats-io/nats-server/v2")
	}
	lua := filepath.Join(dir, "post.lua")
	check(benchkit.WritePostLua(lua, textBody, accountToken))
	fmt.Printf("benchcluster: %d CPUs, wrk %d connections, %d rounds of %s per target; load average %s\n",
		numCPU(), *conns, *rounds, *duration, benchkit.LoadAvg())
	for _, p := range strings.Split(*parts, ",") {
		switch strings.TrimSpace(p) {
		case "onoff":
			onOff(dir, lua)
		case "forward":
			forward(dir, lua)
		case "r3":
			r3(dir, lua)
		case "media":
			media(dir)
		case "rest":
			for _, n := range strings.Split(*restReps, ",") {
				var reps int
				fmt.Sscan(n, &reps)
				atRest(dir, max(reps, 1), *nInst, 1, 1)
			}
		default:
			check(fmt.Errorf("unknown part %q", p))
		}
	}
	fmt.Printf("load average at the end: %s\n", benchkit.LoadAvg())
}

// build runs go build for pkg in this module.
func build(out, pkg string) {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

func newDB() (name, url string) {
	name, err := benchkit.CreateDB(*adminURL)
	check(err)
	url, err = benchkit.DBURL(*adminURL, name)
	check(err)
	return name, url
}

// load is one wrk run against one target with the CPU each part used.
type load struct {
	benchkit.WrkResult
	cpu benchkit.CPUSplit
	// natsIn is how many client messages nats-server received.
	natsIn int64
}

func (l load) requests() float64 { return l.RPS * duration.Seconds() }

// perReq is the CPU of the classes given, in µs per request.
func (l load) perReq(classes ...string) float64 {
	sum := 0.0
	for _, c := range classes {
		sum += l.cpu.By[c]
	}
	return sum / l.requests() * 1e6
}

// run loads u with wrk while a CPU meter splits the machine's CPU by
// process: each statusflow child under its name, nats-server, the
// database's PostgreSQL backends, wrk ("tool").
func run(u, lua, db string, d time.Duration, nats *natsServer, sfs ...*sfProc) load {
	return measure(u, lua, d, classifier(db, []*natsServer{nats}, sfs...), nats.Stats)
}

// measure loads u with wrk while a CPU meter splits the machine's CPU as
// classify says; stats are the nats-server counters compared.
func measure(u, lua string, d time.Duration, classify benchkit.Classify, stats func() natsStats) load {
	s0 := stats()
	m := benchkit.StartCPUMeter(classify)
	r, err := benchkit.Wrk(u, lua, *conns, d)
	cpu := m.End()
	check(err)
	return load{WrkResult: r, cpu: cpu, natsIn: stats().InMsgs - s0.InMsgs}
}

// classifier names each statusflow child and each nats-server (every node
// of a cluster) by its Name, the database db's PostgreSQL backends "pg",
// wrk "tool".
func classifier(db string, nats []*natsServer, sfs ...*sfProc) benchkit.Classify {
	self := os.Getpid()
	return func(p benchkit.Proc) string {
		for _, sf := range sfs {
			if p.PID == sf.PID() {
				return sf.Name
			}
		}
		for _, n := range nats {
			if p.PID == n.PID() {
				return n.Name
			}
		}
		if p.PPID == self && p.Comm == "wrk" {
			return "tool"
		}
		return benchkit.PGClass(p, db)
	}
}

// onOff is part 1: one replica, clustering off against on.
func onOff(dir, lua string) {
	fmt.Printf("\n== 1. one replica, clustering off vs on (PostgreSQL, external NATS; each on its own fresh database)\n")
	nats := startNATS(*natsBin, dir)
	defer nats.Stop()
	dbOff, urlOff := newDB()
	dbOn, urlOn := newDB()
	off := startStatusflow(*sfBin, dir, "off", map[string]string{"STATUSFLOW_DATABASE_URL": urlOff,
		"STATUSFLOW_NATS_URL": nats.URL, "STATUSFLOW_NATS_PREFIX": "sfoff"})
	defer off.Stop()
	on := startStatusflow(*sfBin, dir, "on", map[string]string{"STATUSFLOW_DATABASE_URL": urlOn,
		"STATUSFLOW_NATS_URL": nats.URL, "STATUSFLOW_NATS_PREFIX": "sfon",
		"STATUSFLOW_CLUSTER_REPLICA": "r1", "STATUSFLOW_CLUSTER_LEASE_TTL": leaseTTL.String()})
	defer on.Stop()
	createInstance(off, "bench")
	createInstance(on, "bench")
	if o := owner(on, "bench"); o != "r1" {
		check(fmt.Errorf("instance bench owned by %q, not r1", o))
	}
	target := map[string]struct {
		p  *sfProc
		db string
	}{"off": {off, dbOff}, "on": {on, dbOn}}
	// Warm-up: connections, prepared statements, the first pages.
	for _, k := range []string{"off", "on"} {
		run(target[k].p.URL("/api/message/status/bench"), lua, target[k].db, 2*time.Second, nats, target[k].p)
	}
	var ratios []float64
	res := map[string][]load{}
	for i := range *rounds {
		order := []string{"off", "on"}
		if i%2 == 1 {
			order = []string{"on", "off"}
		}
		for _, k := range order {
			t := target[k]
			res[k] = append(res[k], run(t.p.URL("/api/message/status/bench"), lua, t.db, *duration, nats, t.p))
		}
		lo, ln := res["off"][i], res["on"][i]
		ratios = append(ratios, ln.RPS/lo.RPS)
		fmt.Printf("round %d: off %6.0f req/s (p99 %s, non-2xx %d), on %6.0f req/s (p99 %s, non-2xx %d), on/off %.3f; load %s\n",
			i+1, lo.RPS, lo.P99, lo.Non2xx, ln.RPS, ln.P99, ln.Non2xx, ln.RPS/lo.RPS, benchkit.LoadAvg())
		for _, k := range []string{"off", "on"} {
			l := res[k][i]
			fmt.Printf("  CPU per status %-3s: %s; NATS msgs in %.1f/req\n", k, l.cpu.PerOp(l.requests(), []string{k, "nats", "pg", "pgshared", "tool", "other"}), float64(l.natsIn)/float64(l.Requests))
		}
	}
	fmt.Printf("clustering off: %6.0f req/s, p99 %s; CPU per status: statusflow %.0f µs, nats-server %.0f µs, PostgreSQL backends %.0f µs (medians)\n",
		medianOf(res["off"], func(l load) float64 { return l.RPS }), medianP99(res["off"]),
		medianOf(res["off"], func(l load) float64 { return l.perReq("off") }),
		medianOf(res["off"], func(l load) float64 { return l.perReq("nats") }),
		medianOf(res["off"], func(l load) float64 { return l.perReq("pg") }))
	fmt.Printf("clustering on : %6.0f req/s, p99 %s; CPU per status: statusflow %.0f µs, nats-server %.0f µs, PostgreSQL backends %.0f µs (medians)\n",
		medianOf(res["on"], func(l load) float64 { return l.RPS }), medianP99(res["on"]),
		medianOf(res["on"], func(l load) float64 { return l.perReq("on") }),
		medianOf(res["on"], func(l load) float64 { return l.perReq("nats") }),
		medianOf(res["on"], func(l load) float64 { return l.perReq("pg") }))
	fmt.Printf("ratio on/off: %.3f median of %d rounds (min %.3f, max %.3f; target >= 0.9); load average %s\n",
		benchkit.Median(ratios), len(ratios), slices.Min(ratios), slices.Max(ratios), benchkit.LoadAvg())
}

// forward is part 2: a forwarded request against a local one.
func forward(dir, lua string) {
	fmt.Printf("\n== 2. forwarded vs local: replicas A (r1, owner) and B (r2) on one database and one NATS; wrk to A, then to B\n")
	nats := startNATS(*natsBin, dir)
	defer nats.Stop()
	db, url := newDB()
	env := func(id string) map[string]string {
		return map[string]string{"STATUSFLOW_DATABASE_URL": url, "STATUSFLOW_NATS_URL": nats.URL,
			"STATUSFLOW_CLUSTER_REPLICA": id, "STATUSFLOW_CLUSTER_LEASE_TTL": leaseTTL.String()}
	}
	a := startStatusflow(*sfBin, dir, "A", env("r1"))
	defer a.Stop()
	b := startStatusflow(*sfBin, dir, "B", env("r2"))
	defer b.Stop()
	createInstance(a, "bench")
	if o := owner(b, "bench"); o != "r1" {
		check(fmt.Errorf("instance bench owned by %q, not r1 (A)", o))
	}
	path := "/api/message/status/bench"
	run(a.URL(path), lua, db, 2*time.Second, nats, a, b)
	run(b.URL(path), lua, db, 2*time.Second, nats, a, b)
	var cpuRatios, p99Ratios, rpsRatios []float64
	res := map[string][]load{}
	for i := range *rounds {
		order := []string{"local", "forwarded"}
		if i%2 == 1 {
			order = []string{"forwarded", "local"}
		}
		for _, k := range order {
			u := a.URL(path)
			if k == "forwarded" {
				u = b.URL(path)
			}
			res[k] = append(res[k], run(u, lua, db, *duration, nats, a, b))
		}
		lo, fw := res["local"][i], res["forwarded"][i]
		cl, cf := lo.perReq("A", "B", "nats"), fw.perReq("A", "B", "nats")
		cpuRatios, p99Ratios, rpsRatios = append(cpuRatios, cf/cl), append(p99Ratios, float64(fw.P99)/float64(lo.P99)), append(rpsRatios, fw.RPS/lo.RPS)
		fmt.Printf("round %d: local %6.0f req/s p99 %s (non-2xx %d), forwarded %6.0f req/s p99 %s (non-2xx %d); CPU/req (A+B+nats) %.0f vs %.0f µs: ratios CPU %.2f, p99 %.2f, req/s %.2f; load %s\n",
			i+1, lo.RPS, lo.P99, lo.Non2xx, fw.RPS, fw.P99, fw.Non2xx, cl, cf, cf/cl, float64(fw.P99)/float64(lo.P99), fw.RPS/lo.RPS, benchkit.LoadAvg())
		for _, k := range []string{"local", "forwarded"} {
			l := res[k][i]
			fmt.Printf("  CPU per request %-9s: %s; NATS msgs in %.1f/req\n", k, l.cpu.PerOp(l.requests(), []string{"A", "B", "nats", "pg", "pgshared", "tool", "other"}), float64(l.natsIn)/float64(l.Requests))
		}
	}
	for _, k := range []string{"local", "forwarded"} {
		fmt.Printf("%-9s: %6.0f req/s, p99 %s, CPU per request %.0f µs (A %.0f, B %.0f, nats-server %.0f; PostgreSQL backends %.0f) (medians)\n", k,
			medianOf(res[k], func(l load) float64 { return l.RPS }), medianP99(res[k]),
			medianOf(res[k], func(l load) float64 { return l.perReq("A", "B", "nats") }),
			medianOf(res[k], func(l load) float64 { return l.perReq("A") }),
			medianOf(res[k], func(l load) float64 { return l.perReq("B") }),
			medianOf(res[k], func(l load) float64 { return l.perReq("nats") }),
			medianOf(res[k], func(l load) float64 { return l.perReq("pg") }))
	}
	fmt.Printf("forwarded/local: CPU per request %.2f, p99 %.2f (targets <= 1.3), req/s %.2f (medians of %d rounds); load average %s\n",
		benchkit.Median(cpuRatios), benchkit.Median(p99Ratios), benchkit.Median(rpsRatios), len(cpuRatios), benchkit.LoadAvg())
}

// atRest is part 3: n replicas owning inst sandbox instances, idle, on
// one nats-server (nodes 1) or a cluster of nodes keeping copies copies
// of statusflow's streams and buckets (STATUSFLOW_NATS_REPLICAS). It
// returns the CPU statusflow and nats-server used, in seconds per second.
func atRest(dir string, n, inst, nodes, copies int) (sfCPU, natsCPU float64) {
	where := "one nats-server"
	nats := &natsCluster{Name: "nats"}
	if nodes > 1 {
		where = fmt.Sprintf("a %d-node NATS cluster, STATUSFLOW_NATS_REPLICAS=%d", nodes, copies)
		nats = startNATSCluster(*natsBin, dir, fmt.Sprintf("rest%d", copies), nodes)
	} else {
		nats.Nodes = []*natsServer{startNATS(*natsBin, dir)}
	}
	defer nats.Stop()
	fmt.Printf("\n== 3. ownership at rest: %d sandbox instances, %d replica(s), %s, lease TTL %s, %s idle\n", inst, n, where, *leaseTTL, *rest)
	db, url := newDB()
	st, err := store.Open(context.Background(), url, dir)
	check(err)
	// The instances go in a share at a time, before the replica that
	// should open them starts (it opens every stored instance no one
	// holds): creating 1,000 through the API would take the creation rate
	// limit's 50 minutes, and replicas starting on 1,000 at once would
	// split them by chance and then move one per tick for hours.
	env := func(name, id string) map[string]string {
		return map[string]string{"STATUSFLOW_DATABASE_URL": url,
			"STATUSFLOW_NATS_URL": nats.URLs(), "STATUSFLOW_NATS_REPLICAS": strconv.Itoa(copies),
			"STATUSFLOW_CLUSTER_REPLICA": id, "STATUSFLOW_CLUSTER_LEASE_TTL": leaseTTL.String()}
	}
	created := 0
	var reps []*sfProc
	for i := range n {
		share := inst * (i + 1) / n
		for ; created < share; created++ {
			name := fmt.Sprintf("rest%04d", created)
			check(st.InstanceInsert(context.Background(), &store.Instance{Name: name, Engine: "sandbox",
				TokenHash: "bench-" + name, State: "disconnected", CreatedAt: time.Now().UTC()}))
		}
		id := fmt.Sprintf("r%d", i+1)
		name := fmt.Sprintf("rest%d-%d-%s", n, copies, id)
		p := startStatusflow(*sfBin, dir, name, env(name, id))
		defer p.Stop()
		reps = append(reps, p)
		waitOwned(reps, created)
	}
	st.Close()
	if nodes > 1 && n == 1 {
		// As in part 4: renewals routed to the lease bucket's leader, on R1
		// and R3 alike.
		reps[0] = awayFromLeaders(nats, reps[0], copies, func() *sfProc {
			p := startStatusflow(*sfBin, dir, reps[0].Name, env(reps[0].Name, "r1"))
			waitOwned([]*sfProc{p}, inst)
			return p
		}, "KV_statusflow_leases")
		defer func() { reps[0].Stop() }()
	}
	checkCopies(nats, copies)
	// Settle: every replica renews and reconciles a few times, and the
	// start's events (instance.owner and instance.state, two per instance)
	// are written and published.
	time.Sleep(*leaseTTL)
	waitQuiet(nats, "STATUSFLOW_EVENTS", 3*time.Minute)
	counts := func() string {
		var s []string
		for _, p := range reps {
			s = append(s, fmt.Sprintf("%s %d", p.Name, owned(p)))
		}
		return strings.Join(s, ", ")
	}
	fmt.Printf("owned at start: %s\n", counts())
	classes := []string{}
	for i, p := range reps {
		p.Name = fmt.Sprintf("r%d", i+1)
		classes = append(classes, p.Name)
	}
	s0 := nats.Stats()
	m := benchkit.StartCPUMeter(classifier(db, nats.Nodes, reps...))
	time.Sleep(*rest)
	cpu := m.End()
	s1 := nats.Stats()
	secs := cpu.Wall()
	fmt.Printf("owned at end:   %s\n", counts())
	var kv, kvLeases int64
	var streams []string
	for name, seq := range s1.LastSeq {
		d := seq - s0.LastSeq[name]
		if strings.HasPrefix(name, "KV_") {
			kv += d
			if name == "KV_statusflow_leases" {
				kvLeases += d
			}
		}
		if d > 0 {
			streams = append(streams, fmt.Sprintf("%s %.1f/s", name, float64(d)/secs))
		}
	}
	slices.Sort(streams)
	fmt.Printf("KV writes: %.1f/s (leases %.1f/s; expected renewals %d/(TTL/3) = %.1f/s); by stream: %s\n",
		float64(kv)/secs, float64(kvLeases)/secs, inst, float64(inst)/(leaseTTL.Seconds()/3), strings.Join(streams, ", "))
	fmt.Printf("nats-server: %.1f client msgs in/s, %.1f out/s, %.1f JetStream API requests/s\n",
		float64(s1.InMsgs-s0.InMsgs)/secs, float64(s1.OutMsgs-s0.OutMsgs)/secs, float64(s1.APITotal-s0.APITotal)/secs)
	sf := 0.0
	var each []string
	for _, c := range classes {
		sf += cpu.By[c]
		each = append(each, fmt.Sprintf("%s %.1f", c, cpu.By[c]/secs*1000))
	}
	ns := 0.0
	var nodeEach []string
	for _, node := range nats.Nodes {
		ns += cpu.By[node.Name]
		nodeEach = append(nodeEach, fmt.Sprintf("%s %.1f", node.Name, cpu.By[node.Name]/secs*1000))
	}
	perInst := ""
	if inst > 0 {
		perInst = fmt.Sprintf("; per owned instance: %.1f µs/s statusflow, %.1f µs/s nats-server", sf/secs/float64(inst)*1e6, ns/secs/float64(inst)*1e6)
	}
	fmt.Printf("CPU ms per second: statusflow %.1f (%s), nats-server %.1f (%s), PostgreSQL backends %.1f%s; load average %s\n",
		sf/secs*1000, strings.Join(each, ", "), ns/secs*1000, strings.Join(nodeEach, ", "), cpu.By["pg"]/secs*1000, perInst, benchkit.LoadAvg())
	return sf / secs, ns / secs
}

// waitQuiet waits until stream gets no write for 5 s (at most timeout).
func waitQuiet(nats *natsCluster, stream string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	last := nats.Stats().LastSeq[stream]
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Second)
		seq := nats.Stats().LastSeq[stream]
		if seq == last {
			return
		}
		last = seq
	}
	fmt.Printf("(%s still written to after %s)\n", stream, timeout)
}

// waitOwned waits until the replicas own want instances between them.
func waitOwned(reps []*sfProc, want int) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		sum := 0
		for _, p := range reps {
			sum += max(owned(p), 0)
		}
		if sum >= want {
			return
		}
		if time.Now().After(deadline) {
			check(fmt.Errorf("replicas own %d of %d instances after 3 minutes", sum, want))
		}
		time.Sleep(time.Second)
	}
}

func medianOf(ls []load, f func(load) float64) float64 {
	xs := make([]float64, len(ls))
	for i, l := range ls {
		xs[i] = f(l)
	}
	return benchkit.Median(xs)
}

func medianP99(ls []load) time.Duration {
	ds := make([]time.Duration, len(ls))
	for i, l := range ls {
		ds[i] = l.P99
	}
	return benchkit.MedianDur(ds)
}

func numCPU() int { return runtime.NumCPU() }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcluster:", err)
		stopAll()
		benchkit.DropCreated()
		os.Exit(1)
	}
}
