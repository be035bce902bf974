package main

import (
	"os"

	"github.com/statusflow/statusflow/internal/benchkit"
)

// cpuMeter splits the CPU time the machine spent while one target ran among
// the parts that did the work: this process (statusflow's Go code), the
// PostgreSQL backends of the target's database, PostgreSQL's shared
// processes (WAL writer, checkpointer: they also serve other databases),
// the load tool (wrk or pgbench, a child of this process) and everything
// else on the machine (other users' load); see [benchkit.CPUMeter].
type cpuMeter struct{ *benchkit.CPUMeter }

// cpu classes, in the order they are printed.
var cpuClasses = []string{"go", "pg", "pgshared", "tool", "other"}

func startCPUMeter(db string) cpuMeter {
	self := os.Getpid()
	return cpuMeter{benchkit.StartCPUMeter(func(p benchkit.Proc) string {
		if p.PID == self {
			return "go"
		}
		if p.PPID == self && (p.Comm == "wrk" || p.Comm == "pgbench") {
			return "tool"
		}
		return benchkit.PGClass(p, db)
	})}
}

// cpuSplit is CPU seconds per class over one run.
type cpuSplit struct{ benchkit.CPUSplit }

func (m cpuMeter) end() cpuSplit { return cpuSplit{m.End()} }

// perOp renders the split as microseconds of CPU per operation.
func (s cpuSplit) perOp(ops float64) string { return s.PerOp(ops, cpuClasses) }
