package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/benchkit"
)

// r3Setup is one target of part 4: a statusflow replica on a NATS of its
// own (one node or a 3-node cluster) and its own database, its streams and
// buckets with copies copies.
type r3Setup struct {
	copies int
	nats   *natsCluster
	db     string
	sf     *sfProc
	// roles says, per node, what it does for this setup ("client",
	// "STATUSFLOW_EVENTS leader", …), for the per-node figures.
	roles map[string]string
}

// r3 is part 4: what JetStream with three copies costs (the compose
// profile "cluster": STATUSFLOW_NATS_REPLICAS=3 on a 3-node NATS cluster),
// against one copy on the same topology, with one nats-server (what parts
// 1 and 2 use) as a reference.
//
// R1 runs on a 3-node cluster too: what a cluster costs whatever the
// copies (routes, a stream leader that may not be the node the client is
// on, the meta group) is then on both sides, and R3 − R1 is the two
// followers' copies. Each target gets a NATS of its own, because the KV
// buckets have fixed names (statusflow_leases, _replicas, _ratelimits,
// statusflow_uploads): on one cluster both replicas would share one set of
// buckets with one replica count. The targets not loaded are idle (their
// CPU is shown as "idle"). Rounds alternate the order.
func r3(dir, lua string) {
	fmt.Printf("\n== 4. JetStream with 1 vs 3 copies: one replica (clustering on) per target, each on a NATS and a fresh database of its own: one nats-server (1node), a 3-node cluster with STATUSFLOW_NATS_REPLICAS=1 (R1), another with 3 (R3)\n")
	keys := []string{"1node", "R1", "R3"}
	setups := map[string]*r3Setup{}
	for _, k := range keys {
		s := &r3Setup{copies: 1}
		switch k {
		case "1node":
			s.nats = &natsCluster{Name: "single", Nodes: []*natsServer{startNATS(*natsBin, dir)}}
		case "R3":
			s.copies = 3
			fallthrough
		default:
			s.nats = startNATSCluster(*natsBin, dir, "sf"+strings.ToLower(k), 3)
		}
		defer s.nats.Stop()
		var url string
		s.db, url = newDB()
		env := map[string]string{"STATUSFLOW_DATABASE_URL": url,
			"STATUSFLOW_NATS_URL": s.nats.URLs(), "STATUSFLOW_NATS_REPLICAS": strconv.Itoa(s.copies),
			"STATUSFLOW_CLUSTER_REPLICA": "r1", "STATUSFLOW_CLUSTER_LEASE_TTL": leaseTTL.String()}
		s.sf = startStatusflow(*sfBin, dir, k, env)
		defer func() { s.sf.Stop() }()
		createInstance(s.sf, "bench")
		waitOwner(s.sf, "bench", "r1")
		// The same placement on R1 and R3: statusflow connected to a node
		// that leads neither the events stream nor the rate-limit bucket, so
		// a status's event writes and counter updates are routed to their
		// leader on both (in the compose profile, replicas connected at
		// random, two of three are not on the events stream's leader).
		if len(s.nats.Nodes) > 1 {
			s.sf = awayFromLeaders(s.nats, s.sf, s.copies, func() *sfProc {
				p := startStatusflow(*sfBin, dir, k, env)
				waitOwner(p, "bench", "r1")
				return p
			}, "STATUSFLOW_EVENTS", "KV_statusflow_ratelimits")
		}
		s.roles = checkCopies(s.nats, s.copies)
		s.sf.Name = "sf"
		setups[k] = s
	}
	path := "/api/message/status/bench"
	// classify names the loaded target's processes (sf, nats or n1..n3,
	// pg) and the other targets' "idle".
	classify := func(k string) benchkit.Classify {
		s := setups[k]
		cl := classifier(s.db, s.nats.Nodes, s.sf)
		var idle []benchkit.Classify
		for _, o := range keys {
			if o != k {
				idle = append(idle, classifier(setups[o].db, setups[o].nats.Nodes, setups[o].sf))
			}
		}
		return func(p benchkit.Proc) string {
			c := cl(p)
			if c != "other" && c != "pgshared" {
				return c
			}
			for _, ic := range idle {
				if c := ic(p); c != "other" && c != "pgshared" && c != "tool" && c != "" {
					return "idle"
				}
			}
			return c
		}
	}
	for _, k := range keys {
		measure(setups[k].sf.URL(path), lua, 2*time.Second, classify(k), setups[k].nats.Stats)
	}
	natsCPU := func(l load) float64 { return l.perReq("nats", "n1", "n2", "n3") }
	sfCPU := func(l load) float64 { return l.perReq("sf") }
	var natsRatios, sfRatios []float64
	res := map[string][]load{}
	for i := range *rounds {
		order := slices.Clone(keys)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, k := range order {
			s := setups[k]
			res[k] = append(res[k], measure(s.sf.URL(path), lua, *duration, classify(k), s.nats.Stats))
		}
		l0, l1, l3 := res["1node"][i], res["R1"][i], res["R3"][i]
		natsRatios = append(natsRatios, natsCPU(l3)/natsCPU(l1))
		sfRatios = append(sfRatios, sfCPU(l3)/sfCPU(l1))
		fmt.Printf("round %d: 1node %6.0f req/s (p99 %s), R1 %6.0f req/s (p99 %s), R3 %6.0f req/s (p99 %s), non-2xx %d/%d/%d; nats-server CPU per status %.0f / %.0f / %.0f µs (R3/R1 %.2f); load %s\n",
			i+1, l0.RPS, l0.P99, l1.RPS, l1.P99, l3.RPS, l3.P99, l0.Non2xx, l1.Non2xx, l3.Non2xx,
			natsCPU(l0), natsCPU(l1), natsCPU(l3), natsCPU(l3)/natsCPU(l1), benchkit.LoadAvg())
		for _, k := range keys {
			l := res[k][i]
			classes := []string{"sf", "n1", "n2", "n3", "pg", "pgshared", "tool", "idle", "other"}
			if k == "1node" {
				classes = []string{"sf", "nats", "pg", "pgshared", "tool", "idle", "other"}
			}
			fmt.Printf("  CPU per status %-5s: %s; NATS msgs in (all nodes) %.1f/req\n", k,
				l.cpu.PerOp(l.requests(), classes), float64(l.natsIn)/float64(l.Requests))
		}
	}
	for _, k := range keys {
		s := setups[k]
		var each []string
		for _, n := range s.nats.Nodes {
			each = append(each, fmt.Sprintf("%s %.0f: %s", n.Name, medianOf(res[k], func(l load) float64 { return l.perReq(n.Name) }), s.roles[n.Name]))
		}
		fmt.Printf("%-5s: %6.0f req/s, p99 %s; CPU per status: statusflow %.0f µs, nats-server %.0f µs (%s), PostgreSQL backends %.0f µs (medians)\n", k,
			medianOf(res[k], func(l load) float64 { return l.RPS }), medianP99(res[k]), medianOf(res[k], sfCPU), medianOf(res[k], natsCPU),
			strings.Join(each, "; "), medianOf(res[k], func(l load) float64 { return l.perReq("pg") }))
	}
	fmt.Printf("per status, R1 vs R3 (3-node cluster): nats-server %.0f vs %.0f µs summed over the nodes (R3/R1 %.2f, median of %d rounds, %.2f–%.2f; one nats-server %.0f µs), statusflow %.0f vs %.0f µs (R3/R1 %.2f), req/s %.0f vs %.0f, p99 %s vs %s; load average %s\n",
		medianOf(res["R1"], natsCPU), medianOf(res["R3"], natsCPU), benchkit.Median(natsRatios), len(natsRatios), slices.Min(natsRatios), slices.Max(natsRatios),
		medianOf(res["1node"], natsCPU), medianOf(res["R1"], sfCPU), medianOf(res["R3"], sfCPU), benchkit.Median(sfRatios),
		medianOf(res["R1"], func(l load) float64 { return l.RPS }), medianOf(res["R3"], func(l load) float64 { return l.RPS }),
		medianP99(res["R1"]), medianP99(res["R3"]), benchkit.LoadAvg())
	for _, k := range keys {
		setups[k].sf.Stop()
		setups[k].nats.Stop()
	}
	if !*r3Rest {
		return
	}
	// At rest: what a NATS cluster costs with statusflow's streams and no
	// instance (RAFT heartbeats of each stream's group with 3 copies), then
	// with *nInst owned; the difference is the leases.
	type restCPU struct{ sf, nats float64 }
	at := map[[2]int]restCPU{}
	for _, copies := range []int{1, 3} {
		for _, inst := range []int{0, *nInst} {
			sf, ns := atRest(dir, 1, inst, 3, copies)
			at[[2]int{copies, inst}] = restCPU{sf, ns}
		}
	}
	for _, copies := range []int{1, 3} {
		idle, busy := at[[2]int{copies, 0}], at[[2]int{copies, *nInst}]
		fmt.Printf("at rest, 3-node cluster, R%d: nats-server %.1f ms/s with no instance, %.1f with %d: %.1f µs/s per owned instance (statusflow %.1f)\n",
			copies, idle.nats*1000, busy.nats*1000, *nInst, (busy.nats-idle.nats)/float64(*nInst)*1e6, (busy.sf-idle.sf)/float64(*nInst)*1e6)
	}
}

// streamPlace is where a stream's copies are: its leader's node and its
// followers' (node names n1, n2, …).
type streamPlace struct {
	Name      string
	Copies    int // configured replicas
	Leader    string
	Followers []string
	Current   bool // every follower has caught up
}

// streams lists every stream in c with its placement (asking up to three
// times: a JetStream API request can time out on a loaded machine).
func streams(c *natsCluster) map[string]streamPlace {
	var err error
	for range 3 {
		var out map[string]streamPlace
		if out, err = listStreams(c); err == nil {
			return out
		}
		time.Sleep(time.Second)
	}
	check(err)
	return nil
}

func listStreams(c *natsCluster) (map[string]streamPlace, error) {
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node := func(server string) string { return strings.TrimPrefix(server, c.Name+"-") }
	out := map[string]streamPlace{}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		info, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%s: stream %s: %w", c.Name, name, err)
		}
		in := info.CachedInfo()
		sp := streamPlace{Name: name, Copies: in.Config.Replicas, Current: true}
		if len(c.Nodes) == 1 {
			sp.Leader = c.Nodes[0].Name
		} else if in.Cluster != nil {
			sp.Leader = node(in.Cluster.Leader)
			for _, p := range in.Cluster.Replicas {
				sp.Current = sp.Current && p.Current
				sp.Followers = append(sp.Followers, node(p.Name))
			}
		}
		out[name] = sp
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("%s: stream names: %w", c.Name, err)
	}
	return out, nil
}

// checkCopies fails the run unless every stream in c (statusflow's streams
// and the KV and object store buckets' streams) has copies replicas, all
// current, and prints where statusflow is connected and where each
// stream's copies are. It returns each node's roles: "client" (statusflow
// is connected to it) and the streams it leads.
func checkCopies(c *natsCluster, copies int) map[string]string {
	st := streams(c)
	if len(st) == 0 {
		check(fmt.Errorf("no streams in NATS %s", c.Name))
	}
	roles := map[string][]string{}
	var desc []string
	for name, sp := range st {
		if sp.Copies != copies || len(sp.Followers) != copies-1 || sp.Leader == "" || !sp.Current {
			check(fmt.Errorf("stream %s: %d replicas configured, leader %q, followers %v (all current: %v); want %d copies", name, sp.Copies, sp.Leader, sp.Followers, sp.Current, copies))
		}
		short := strings.TrimPrefix(strings.TrimPrefix(name, "KV_"), "OBJ_")
		roles[sp.Leader] = append(roles[sp.Leader], short+" leader")
		desc = append(desc, fmt.Sprintf("%s R%d on %s", name, sp.Copies, strings.Join(append([]string{sp.Leader + "*"}, sp.Followers...), ",")))
	}
	slices.Sort(desc)
	client := c.clientNode("statusflow")
	fmt.Printf("%s: statusflow connected to %s; streams (leader*): %s\n", c.Name, client, strings.Join(desc, "; "))
	out := map[string]string{}
	for _, n := range c.Nodes {
		r := roles[n.Name]
		slices.Sort(r)
		if n.Name == client {
			r = append([]string{"client"}, r...)
		}
		if len(r) == 0 && copies > 1 {
			r = []string{"followers only"}
		} else if len(r) == 0 {
			r = []string{"no stream"}
		}
		out[n.Name] = strings.Join(r, ", ")
	}
	return out
}

// waitOwner waits until p reports instance owned by replica (a replica
// started again takes back the instance it released when it stopped).
func waitOwner(p *sfProc, instance, replica string) {
	deadline := time.Now().Add(2 * *leaseTTL)
	for {
		o := owner(p, instance)
		if o == replica {
			return
		}
		if time.Now().After(deadline) {
			check(fmt.Errorf("instance %s owned by %q, not %s, %s after %s started", instance, o, replica, 2**leaseTTL, p.Name))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// awayFromLeaders returns statusflow connected to a node of c leading none
// of the streams named: their writes then go over a route to the leader,
// as for most replicas of a cluster. With copies > 1 the leader moves (a
// leader step-down elects one of the followers); with one copy it cannot,
// and p is stopped and restart starts it again (nats.go picks one of the
// URLs at random).
func awayFromLeaders(c *natsCluster, p *sfProc, copies int, restart func() *sfProc, names ...string) *sfProc {
	nc, err := nats.Connect(c.URLs())
	check(err)
	defer nc.Close()
	for try := 1; ; try++ {
		st := streams(c)
		client := c.clientNode("statusflow")
		var on []string
		for _, name := range names {
			if st[name].Leader == client {
				on = append(on, name)
			}
		}
		if len(on) == 0 {
			return p
		}
		if try == 12 {
			fmt.Printf("%s: statusflow still on the leader of %v (%s) after %d tries; measured there\n", c.Name, on, client, try)
			return p
		}
		what := "leader step-down"
		if copies == 1 {
			what = "statusflow started again"
		}
		fmt.Printf("%s: statusflow on %s, the leader of %v: %s\n", c.Name, client, on, what)
		if copies == 1 {
			p.Stop()
			p = restart()
			continue
		}
		for _, name := range on {
			if _, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+name, nil, 10*time.Second); err != nil {
				check(fmt.Errorf("%s: leader step-down of %s: %w", c.Name, name, err))
			}
		}
		// Wait for the new leaders and for every copy to catch up.
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := streams(c)
			ok := true
			for _, name := range on {
				sp := st[name]
				ok = ok && sp.Leader != "" && sp.Leader != client && sp.Current
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				check(fmt.Errorf("%s: no new leader for %v within 30 s", c.Name, on))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
