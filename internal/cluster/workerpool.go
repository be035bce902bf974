package cluster

import (
	"slices"
	"sync"
	"time"
)

// Bounds of the pool that serves forwarded commands and HTTP requests.
const (
	// serveWorkersMax caps the long-lived workers. Beyond it a request
	// still runs at once, in a goroutine of its own (see workerPool.run).
	serveWorkersMax = 256
	// serveWorkerIdle is how long a worker waits for work before it exits,
	// so a burst does not leave its workers behind for good (fasthttp's
	// MaxIdleWorkerDuration default).
	serveWorkerIdle = 10 * time.Second
)

// workerPool runs functions on long-lived goroutines. A forwarded command
// served on a fresh goroutine grew that goroutine's stack through the whole
// publish path (runtime.newstack/copystack were ~12% of serve's CPU in the
// owner's profile); a worker keeps its grown stack from one command to the
// next (until a GC shrinks an idle one, which costs one regrowth per GC
// cycle, not one per command).
//
// It is fasthttp's workerPool without the cleaner goroutine: idle workers
// are a LIFO stack (the most recently used worker, whose stack is hot, goes
// first) and each exits by itself after idle without work.
type workerPool struct {
	max  int
	idle time.Duration

	mu      sync.Mutex
	ready   []*worker // idle workers, the most recently used last
	workers int       // alive, idle or busy
	closed  bool
}

type worker struct {
	// work hands the worker its next function: buffered, so whoever took
	// the worker off the ready stack never blocks on it; nil means exit.
	work chan func()
}

func newWorkerPool(max int, idle time.Duration) *workerPool {
	return &workerPool{max: max, idle: idle}
}

// run runs fn on an idle worker, a new worker when there are fewer than max,
// or else a goroutine of its own. It never blocks (it runs on NATS's
// delivery goroutine) and never queues: a queue would make a quick delete
// wait behind minutes-long media publications and, once full, would have
// to block or drop. Past the cap (hundreds of commands running at once on
// one replica) paying the stack growth again is the lesser cost.
func (p *workerPool) run(fn func()) {
	p.mu.Lock()
	if n := len(p.ready); n > 0 {
		w := p.ready[n-1]
		p.ready[n-1] = nil
		p.ready = p.ready[:n-1]
		p.mu.Unlock()
		w.work <- fn
		return
	}
	if p.closed || p.workers >= p.max {
		p.mu.Unlock()
		go fn()
		return
	}
	p.workers++
	p.mu.Unlock()
	w := &worker{work: make(chan func(), 1)}
	go p.loop(w, fn)
}

func (p *workerPool) loop(w *worker, fn func()) {
	timer := time.NewTimer(p.idle)
	defer timer.Stop()
	for {
		fn()
		fn = nil // do not keep the finished command's closure alive while idle
		if !p.park(w) {
			return
		}
		timer.Reset(p.idle)
		select {
		case fn = <-w.work:
		case <-timer.C:
			if p.retire(w) {
				return
			}
			// run took it off the stack meanwhile: its function is on the way.
			fn = <-w.work
		}
		if fn == nil {
			return // close
		}
	}
}

// park puts w on the ready stack; false when the pool is closed (w exits).
func (p *workerPool) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.workers--
		return false
	}
	p.ready = append(p.ready, w)
	return true
}

// retire removes an idle w from the ready stack; false when run already
// took it (it must then take the function run sends).
func (p *workerPool) retire(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.ready {
		if r == w {
			p.ready = slices.Delete(p.ready, i, i+1)
			p.workers--
			return true
		}
	}
	return false
}

// close makes idle workers exit now and busy ones when they finish; a later
// run still runs its function, on a goroutine of its own.
func (p *workerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.ready {
		w.work <- nil
	}
	p.workers -= len(p.ready)
	clear(p.ready)
	p.ready = nil
}

// alive is the number of workers (tests).
func (p *workerPool) alive() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.workers
}
