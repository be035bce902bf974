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
type CPUMeter struct {
	classify Classify
	stop     chan struct{}
	done     chan struct{}

	mu    sync.Mutex
	procs map[int]*procCPU
	sys0  []uint64 // /proc/stat cpu line at start
	sys1  []uint64
}

type procCPU struct {
	class       string
	first, last uint64 // utime+stime, clock ticks
}

// StartCPUMeter starts measuring; [CPUMeter.End] stops.
func StartCPUMeter(classify Classify) *CPUMeter {
	m := &CPUMeter{classify: classify, stop: make(chan struct{}), done: make(chan struct{}), procs: map[int]*procCPU{}}
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
		if p != nil && p.class == "other" {
			continue // counted from the machine's total (End); re-reading costs this process CPU
		}
		ticks, comm, ppid, ok := ReadProcStat(pid)
		if !ok {
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
