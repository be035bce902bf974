package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// children are the processes this run started; stopAll ends them (by
// their pid, never by name) on the way out.
var children []*exec.Cmd

func stopAll() {
	for _, c := range children {
		if c.Process != nil && c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsServer is a nats-server child process with JetStream and its
// monitoring port, no authentication, on loopback.
type natsServer struct {
	// Name is its CPU class: "nats" alone, its node name (n1, n2, …) in
	// a cluster.
	Name string
	cmd  *exec.Cmd
	URL  string
	mon  string
}

func startNATS(bin, dir string) *natsServer {
	sd, err := os.MkdirTemp(dir, "nats-")
	check(err)
	n := spawnNATS(bin, sd, "nats", freePort(), freePort())
	waitHTTP(n.mon+"/healthz?js-enabled-only=true", 30*time.Second)
	return n
}

// spawnNATS starts nats-server on loopback with JetStream in store dir sd
// (its log beside it), client port port and monitoring port mon, plus
// args; it does not wait.
func spawnNATS(bin, sd, name string, port, mon int, args ...string) *natsServer {
	cmd := exec.Command(bin, append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mon), "-js", "-sd", sd}, args...)...)
	logf, err := os.Create(sd + ".log")
	check(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	check(cmd.Start())
	children = append(children, cmd)
	return &natsServer{Name: name, cmd: cmd, URL: fmt.Sprintf("nats://127.0.0.1:%d", port), mon: fmt.Sprintf("http://127.0.0.1:%d", mon)}
}

// natsCluster is n nats-server processes with JetStream joined by routes
// on loopback. Each node gets the command line of the compose profile
// "cluster" (nats1..nats3 in docker-compose.yml, as scripts/cluster-local.sh
// runs them: -n, --cluster_name, --cluster, --routes to every node, its own
// store dir), with loopback ports instead of the containers' and no login,
// as startNATS has none.
type natsCluster struct {
	Name  string
	Nodes []*natsServer
}

// startNATSCluster starts the nodes n1..nn of cluster name and waits until
// every node answers JetStream with the same meta leader.
func startNATSCluster(bin, dir, name string, n int) *natsCluster {
	c := &natsCluster{Name: name}
	ports, mons, routes := make([]int, n), make([]int, n), make([]string, n)
	for i := range n {
		ports[i], mons[i] = freePort(), freePort()
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", freePort())
	}
	for i := range n {
		sd, err := os.MkdirTemp(dir, name+"-")
		check(err)
		node := fmt.Sprintf("n%d", i+1)
		c.Nodes = append(c.Nodes, spawnNATS(bin, sd, node, ports[i], mons[i], "-n", name+"-"+node,
			"--cluster_name", name, "--cluster", routes[i], "--routes", strings.Join(routes, ",")))
	}
	for _, node := range c.Nodes {
		waitHTTP(node.mon+"/healthz", 60*time.Second)
	}
	c.waitMetaLeader(60 * time.Second)
	return c
}

// waitMetaLeader waits until every node reports the same JetStream meta
// leader in a group of all the nodes (streams and KV buckets with any
// replica count can be created from then on).
func (c *natsCluster) waitMetaLeader(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		leaders := map[string]bool{}
		for _, node := range c.Nodes {
			var jsz struct {
				Meta *struct {
					Leader string `json:"leader"`
					Size   int    `json:"cluster_size"`
				} `json:"meta_cluster"`
			}
			getJSON(node.mon+"/jsz", &jsz)
			if jsz.Meta == nil || jsz.Meta.Size != len(c.Nodes) {
				leaders[""] = true
				continue
			}
			leaders[jsz.Meta.Leader] = true
		}
		if len(leaders) == 1 && !leaders[""] {
			return
		}
		if time.Now().After(deadline) {
			check(fmt.Errorf("nats cluster %s: no common JetStream meta leader within %s", c.Name, timeout))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// URLs is every node's client URL, comma-separated, as
// STATUSFLOW_NATS_URL lists them in the compose profile.
func (c *natsCluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}

func (c *natsCluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// Stats sums the nodes' counters; a stream's writes are the highest
// last_seq any node holding a copy reports (the leader's).
func (c *natsCluster) Stats() natsStats {
	s := natsStats{LastSeq: map[string]int64{}}
	for _, n := range c.Nodes {
		ns := n.Stats()
		s.InMsgs += ns.InMsgs
		s.OutMsgs += ns.OutMsgs
		s.APITotal += ns.APITotal
		for k, v := range ns.LastSeq {
			s.LastSeq[k] = max(s.LastSeq[k], v)
		}
	}
	return s
}

// clientNode is the name of the node the connection named conn (nats.Name)
// is on, "" if none has it.
func (c *natsCluster) clientNode(conn string) string {
	for _, n := range c.Nodes {
		var connz struct {
			Conns []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		getJSON(n.mon+"/connz?limit=1024", &connz)
		for _, cn := range connz.Conns {
			if cn.Name == conn {
				return n.Name
			}
		}
	}
	return ""
}

func (n *natsServer) PID() int { return n.cmd.Process.Pid }

func (n *natsServer) Stop() { stopProc(n.cmd) }

// natsStats are the nats-server counters a run compares before and after.
type natsStats struct {
	InMsgs, OutMsgs int64            // client messages received / sent (/varz)
	APITotal        int64            // JetStream API requests (/jsz)
	LastSeq         map[string]int64 // per stream: writes so far (KV puts, updates, deletes; events)
}

func (n *natsServer) Stats() natsStats {
	var varz struct {
		InMsgs  int64 `json:"in_msgs"`
		OutMsgs int64 `json:"out_msgs"`
	}
	getJSON(n.mon+"/varz", &varz)
	var jsz struct {
		API struct {
			Total int64 `json:"total"`
		} `json:"api"`
		Accounts []struct {
			Streams []struct {
				Name  string `json:"name"`
				State struct {
					LastSeq int64 `json:"last_seq"`
				} `json:"state"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	getJSON(n.mon+"/jsz?accounts=true&streams=true", &jsz)
	s := natsStats{InMsgs: varz.InMsgs, OutMsgs: varz.OutMsgs, APITotal: jsz.API.Total, LastSeq: map[string]int64{}}
	for _, a := range jsz.Accounts {
		for _, st := range a.Streams {
			s.LastSeq[st.Name] = st.State.LastSeq
		}
	}
	return s
}

// sfProc is a statusflow child process.
type sfProc struct {
	Name string
	cmd  *exec.Cmd
	Addr string // host:port of its HTTP API
}

// startStatusflow starts bin with the environment env (plus PATH and HOME:
// nothing else of this process's environment) and waits until it is ready.
func startStatusflow(bin, dir, name string, env map[string]string) *sfProc {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	data := filepath.Join(dir, "data-"+name)
	check(os.MkdirAll(data, 0o700))
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"STATUSFLOW_ADDR=" + addr, "STATUSFLOW_DATA_DIR=" + data, "STATUSFLOW_ACCOUNT_TOKEN=" + accountToken,
		"STATUSFLOW_RATE_LIMIT=1000000000", "STATUSFLOW_LOG_FORMAT=json"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	check(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	check(cmd.Start())
	children = append(children, cmd)
	p := &sfProc{Name: name, cmd: cmd, Addr: addr}
	waitHTTP("http://"+addr+"/readyz", 90*time.Second)
	return p
}

func (p *sfProc) PID() int { return p.cmd.Process.Pid }

func (p *sfProc) URL(path string) string { return "http://" + p.Addr + path }

// Stop is a normal stop (SIGTERM): the replica closes its sessions and
// releases their leases.
func (p *sfProc) Stop() { stopProc(p.cmd) }

func stopProc(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func waitHTTP(u string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			check(fmt.Errorf("%s not ready within %s (last: %v)", u, timeout, err))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func getJSON(u string, v any) {
	resp, err := http.Get(u)
	check(err)
	defer resp.Body.Close()
	check(json.NewDecoder(resp.Body).Decode(v))
}

// call sends a request with the account token and returns the status and body.
func call(method, u, body string) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	check(err)
	req.Header.Set("token", accountToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func createInstance(p *sfProc, name string) {
	code, body := call("POST", p.URL("/api/instance/new"), `{"name":"`+name+`","engine":"sandbox"}`)
	if code != 201 {
		check(fmt.Errorf("create instance %s on %s: %d %s", name, p.Name, code, body))
	}
}

// owner is the owner of instance as GET /api/cluster on p shows it.
func owner(p *sfProc, instance string) string {
	code, body := call("GET", p.URL("/api/cluster"), "")
	if code != 200 {
		check(fmt.Errorf("GET /api/cluster on %s: %d %s", p.Name, code, body))
	}
	var v struct {
		Data struct {
			Instances []struct{ Instance, Owner string } `json:"instances"`
		} `json:"data"`
	}
	check(json.Unmarshal(body, &v))
	for _, in := range v.Data.Instances {
		if in.Instance == instance {
			return in.Owner
		}
	}
	return ""
}

var ownedRe = regexp.MustCompile(`(?m)^statusflow_cluster_instances_owned ([0-9.e+]+)$`)

// owned is p's statusflow_cluster_instances_owned gauge (-1 when absent).
func owned(p *sfProc) int {
	resp, err := http.Get(p.URL("/metrics"))
	check(err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := ownedRe.FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(bytes.TrimSpace(m[1])), 64)
	return int(v)
}
