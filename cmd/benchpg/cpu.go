package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cpuMeter splits the CPU time the machine spent while one target ran among
// the parts that did the work: this process (statusflow's Go code), the
// PostgreSQL backends of the target's database, PostgreSQL's shared
// processes (WAL writer, checkpointer: they also serve other databases),
// the load tool (wrk or pgbench, a child of this process) and everything
// else on the machine (other users' load). Backends come and go with their
// clients, so /proc is sampled through the run and a process that ended
// counts with its last sample.
type cpuMeter struct {
	db   string
	self int
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	procs map[int]*procCPU
	sys0  []uint64 // /proc/stat cpu line at start
	sys1  []uint64
}

type procCPU struct {
	class       string
	first, last uint64 // utime+stime, clock ticks
}

// cpu classes, in the order they are printed.
var cpuClasses = []string{"go", "pg", "pgshared", "tool", "other"}

// clockTick is USER_HZ, 100 on every Linux we run.
const clockTick = 100

func startCPUMeter(db string) *cpuMeter {
	m := &cpuMeter{db: db, self: os.Getpid(), stop: make(chan struct{}), done: make(chan struct{}), procs: map[int]*procCPU{}}
	m.sys0 = readSysCPU()
	m.sample(true)
	go func() {
		defer close(m.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				m.sample(false)
				m.sys1 = readSysCPU()
				return
			case <-t.C:
				m.sample(false)
			}
		}
	}()
	return m
}

// cpuSplit is CPU seconds per class, and the machine's busy and total CPU
// seconds over the run.
type cpuSplit struct {
	by          map[string]float64
	busy, total float64
}

func (m *cpuMeter) end() cpuSplit {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	s := cpuSplit{by: map[string]float64{}}
	for _, p := range m.procs {
		s.by[p.class] += float64(p.last-p.first) / clockTick
	}
	var busy0, busy1, tot0, tot1 uint64
	for i, v := range m.sys0 {
		tot0 += v
		if i != 3 && i != 4 { // idle, iowait
			busy0 += v
		}
	}
	for i, v := range m.sys1 {
		tot1 += v
		if i != 3 && i != 4 {
			busy1 += v
		}
	}
	s.busy, s.total = float64(busy1-busy0)/clockTick, float64(tot1-tot0)/clockTick
	// "other" is what the machine did beyond the classes measured.
	known := 0.0
	for c, v := range s.by {
		if c != "other" {
			known += v
		}
	}
	s.by["other"] = max(s.busy-known, 0)
	return s
}

// perOp renders the split as microseconds of CPU per operation.
func (s cpuSplit) perOp(ops float64) string {
	var b strings.Builder
	sum := 0.0
	for _, c := range cpuClasses {
		if c == "other" {
			continue
		}
		sum += s.by[c]
		fmt.Fprintf(&b, "%s %.0f, ", c, s.by[c]/ops*1e6)
	}
	wall := s.total / float64(numCPU())
	fmt.Fprintf(&b, "sum %.0f µs/op; other load %.2f CPUs, idle %.2f CPUs", sum/ops*1e6, s.by["other"]/wall, (s.total-s.busy)/wall)
	return b.String()
}

func (m *cpuMeter) sample(first bool) {
	ents, _ := os.ReadDir("/proc")
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p := m.procs[pid]
		if p != nil && p.class == "other" {
			continue // counted from the machine's total (end); re-reading costs this process CPU
		}
		ticks, comm, ppid, ok := readProcStat(pid)
		if !ok {
			continue
		}
		if p == nil {
			class := m.classify(pid, comm, ppid)
			if class == "" {
				continue // a backend just forked, not yet named
			}
			p = &procCPU{class: class}
			if first {
				p.first = ticks
			}
			m.procs[pid] = p
		}
		p.last = ticks
	}
}

func (m *cpuMeter) classify(pid int, comm string, ppid int) string {
	if pid == m.self {
		return "go"
	}
	if ppid == m.self && (comm == "wrk" || comm == "pgbench") {
		return "tool"
	}
	cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	cmd = bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})
	if !bytes.HasPrefix(cmd, []byte("postgres: ")) {
		if comm == "postgres" && ppid != 1 {
			return "" // forked by the postmaster, not yet named
		}
		return "other"
	}
	if bytes.Contains(cmd, []byte(" "+m.db+" ")) {
		return "pg"
	}
	for _, aux := range []string{"walwriter", "checkpointer", "background writer", "wal writer"} {
		if bytes.Contains(cmd, []byte(aux)) {
			return "pgshared"
		}
	}
	return "other" // other databases' backends
}

// readProcStat returns a process's utime+stime, its name and its parent.
func readProcStat(pid int) (ticks uint64, comm string, ppid int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", 0, false
	}
	// pid (comm) state ppid ... ; comm may hold spaces and parentheses.
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return 0, "", 0, false
	}
	comm = string(b[open+1 : close])
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 13 {
		return 0, "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return ut + st, comm, ppid, true
}

func readSysCPU() []uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	var out []uint64
	for _, x := range f[1:] {
		v, _ := strconv.ParseUint(x, 10, 64)
		out = append(out, v)
	}
	return out
}
