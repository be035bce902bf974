package benchkit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClockTick is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// we run.
const ClockTick = 100

// Proc is a process as /proc/<pid>/stat shows it.
type Proc struct {
	PID, PPID int
	Comm      string
}

// Cmdline is the process's command line, arguments separated by spaces.
func (p Proc) Cmdline() []byte {
	cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.PID), "cmdline"))
	return bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})
}

// Classify names the part of the work a process does ("go", "pg", …).
// "other" means the machine's remainder (not sampled again); "" means not
// known yet (asked again at the next sample, e.g. a backend just forked).
type Classify func(p Proc) string

// CPUMeter splits the CPU time the machine spent while it ran among the
// parts that did the work, as classify names them; what no part claims is
// "other" (other users' load). Processes come and go (PostgreSQL backends
// with their clients), so /proc is sampled every 200 ms and a process that
// ended counts with its last sample.
//
// The descendants of a [Tree] are counted apart, exactly: sampling would
// miss a child that lives less than 200 ms (an ffprobe run) and the part
// of a longer one's life since its last sample.
type CPUMeter struct {
	classify Classify
	trees    []Tree
	stop     chan struct{}
	done     chan struct{}

	mu    sync.Mutex
	procs map[int]*procCPU
	// desc are descendants of a tree seen while sampling: never classified
	// (their CPU is the tree's).
	desc  map[int]bool
	tree0 []uint64 // per tree: its descendants' CPU at start, clock ticks
	tree1 []uint64
	sys0  []uint64 // /proc/stat cpu line at start
	sys1  []uint64
}

// Tree is a process whose descendants' CPU (the ffmpeg and ffprobe runs of
// a statusflow replica, say) counts under Class, however short-lived they
// are. The process itself is classified as any other.
//
// How: a process's /proc/<pid>/stat carries, besides its own CPU, cutime
// and cstime, the CPU of every child it has waited for (each child's own
// plus its cutime, so grandchildren too, once waited). The descendants'
// CPU at an instant is the root's cutime+cstime plus, for each live child,
// its own CPU and, recursively, its descendants'. Taken at the start and
// at the end, the difference is all the CPU the descendants used in
// between: one that ended in between has its whole life in the end's
// cutime and its part before the start in the start's sum; one alive at
// the end counts up to then. The one gap is a child that ended but is not
// yet waited for at the end (a zombie): /proc still shows its CPU, so it
// counts as live.
type Tree struct {
	PID   int
	Class string
}

type procCPU struct {
	class       string
	first, last uint64 // utime+stime, clock ticks
}

// StartCPUMeter starts measuring; [CPUMeter.End] stops. The descendants of
// trees count under their tree's class (see [Tree]).
func StartCPUMeter(classify Classify, trees ...Tree) *CPUMeter {
	m := &CPUMeter{classify: classify, trees: trees, stop: make(chan struct{}), done: make(chan struct{}),
		procs: map[int]*procCPU{}, desc: map[int]bool{}}
	m.sys0 = readSysCPU()
	m.tree0 = m.treeTicks()
	m.sample(true)
	go func() {
		defer close(m.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				m.sample(false)
				m.tree1 = m.treeTicks()
				m.sys1 = readSysCPU()
				return
			case <-t.C:
				m.sample(false)
			}
		}
	}()
	return m
}

// CPUSplit is CPU seconds per class, and the machine's busy and total CPU
// seconds over the run.
type CPUSplit struct {
	By          map[string]float64
	Busy, Total float64
}

// End stops the meter and returns the split.
func (m *CPUMeter) End() CPUSplit {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	s := CPUSplit{By: map[string]float64{}}
	for _, p := range m.procs {
		s.By[p.class] += float64(p.last-p.first) / ClockTick
	}
	for i, t := range m.trees {
		if m.tree1[i] > m.tree0[i] {
			s.By[t.Class] += float64(m.tree1[i]-m.tree0[i]) / ClockTick
		}
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
	s.Busy, s.Total = float64(busy1-busy0)/ClockTick, float64(tot1-tot0)/ClockTick
	// "other" is what the machine did beyond the classes measured.
	known := 0.0
	for c, v := range s.By {
		if c != "other" {
			known += v
		}
	}
	s.By["other"] = max(s.Busy-known, 0)
	return s
}

// PerOp renders the split as microseconds of CPU per operation, class by
// class in the order given ("other" is shown as a share of the machine).
func (s CPUSplit) PerOp(ops float64, classes []string) string {
	var b strings.Builder
	sum := 0.0
	for _, c := range classes {
		if c == "other" {
			continue
		}
		sum += s.By[c]
		fmt.Fprintf(&b, "%s %.0f, ", c, s.By[c]/ops*1e6)
	}
	wall := s.Total / float64(runtime.NumCPU())
	fmt.Fprintf(&b, "sum %.0f µs/op; other load %.2f CPUs, idle %.2f CPUs", sum/ops*1e6, s.By["other"]/wall, (s.Total-s.Busy)/wall)
	return b.String()
}

// Wall is the run's wall-clock time as the machine's CPU counters saw it.
func (s CPUSplit) Wall() float64 { return s.Total / float64(runtime.NumCPU()) }

func (m *CPUMeter) sample(first bool) {
	ents, _ := os.ReadDir("/proc")
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p := m.procs[pid]
		if p != nil && p.class == "other" || m.desc[pid] {
			continue // counted from the machine's total (End) or as a tree's; re-reading costs this process CPU
		}
		ticks, comm, ppid, ok := ReadProcStat(pid)
		if !ok {
			continue
		}
		if p == nil && m.isTreeChild(ppid) {
			m.desc[pid] = true
			continue
		}
		if p == nil {
			class := m.classify(Proc{PID: pid, PPID: ppid, Comm: comm})
			if class == "" {
				continue
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

// isTreeChild reports whether a process with parent ppid descends from a
// tree (its parent is a root or a descendant already seen).
func (m *CPUMeter) isTreeChild(ppid int) bool {
	if m.desc[ppid] {
		return true
	}
	for _, t := range m.trees {
		if t.PID == ppid {
			return true
		}
	}
	return false
}

// treeTicks is, per tree, its descendants' CPU so far (see [Tree]).
func (m *CPUMeter) treeTicks() []uint64 {
	if len(m.trees) == 0 {
		return nil
	}
	type stat struct{ own, children uint64 }
	stats := map[int]stat{}
	kids := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		own, children, ppid, ok := readProcTimes(pid)
		if !ok {
			continue
		}
		stats[pid] = stat{own, children}
		kids[ppid] = append(kids[ppid], pid)
	}
	var below func(pid int, depth int) uint64
	below = func(pid int, depth int) uint64 {
		sum := stats[pid].children
		if depth > 64 {
			return sum // a pid reused inside its own subtree; cannot happen in one scan, but never loop
		}
		for _, k := range kids[pid] {
			sum += stats[k].own + below(k, depth+1)
		}
		return sum
	}
	out := make([]uint64, len(m.trees))
	for i, t := range m.trees {
		out[i] = below(t.PID, 0)
	}
	return out
}

// PGClass classifies a PostgreSQL process: "pg" for a backend of database
// db, "pgshared" for the WAL writer, checkpointer and background writer
// (they serve every database), "" for a backend just forked (not yet
// named), "other" for anything else.
func PGClass(p Proc, db string) string {
	cmd := p.Cmdline()
	if !bytes.HasPrefix(cmd, []byte("postgres: ")) {
		if p.Comm == "postgres" && p.PPID != 1 {
			return "" // forked by the postmaster, not yet named
		}
		return "other"
	}
	if bytes.Contains(cmd, []byte(" "+db+" ")) {
		return "pg"
	}
	for _, aux := range []string{"walwriter", "checkpointer", "background writer", "wal writer"} {
		if bytes.Contains(cmd, []byte(aux)) {
			return "pgshared"
		}
	}
	return "other" // other databases' backends
}

// ReadProcStat returns a process's utime+stime (clock ticks), its name and
// its parent.
func ReadProcStat(pid int) (ticks uint64, comm string, ppid int, ok bool) {
	st, ok := readProc(pid)
	return st.own, st.comm, st.ppid, ok
}

// readProcTimes returns a process's own utime+stime and the cutime+cstime of
// the children it has waited for (clock ticks), and its parent.
func readProcTimes(pid int) (own, children uint64, ppid int, ok bool) {
	st, ok := readProc(pid)
	return st.own, st.children, st.ppid, ok
}

// procStat is what the meters read of /proc/<pid>/stat.
type procStat struct {
	comm          string
	ppid          int
	own, children uint64 // utime+stime; cutime+cstime (clock ticks)
}

func readProc(pid int) (st procStat, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return st, false
	}
	// pid (comm) state ppid ... ; comm may hold spaces and parentheses.
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return st, false
	}
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 15 {
		return st, false
	}
	var v [4]uint64 // utime stime cutime cstime
	for i := range v {
		v[i], _ = strconv.ParseUint(f[11+i], 10, 64)
	}
	st.comm = string(b[open+1 : close])
	st.ppid, _ = strconv.Atoi(f[1])
	st.own, st.children = v[0]+v[1], v[2]+v[3]
	return st, true
}

// ProcCPU is a process's CPU time so far (user + system), 0 when it is gone.
func ProcCPU(pid int) time.Duration {
	ticks, _, _, ok := ReadProcStat(pid)
	if !ok {
		return 0
	}
	return time.Duration(ticks) * time.Second / ClockTick
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
