package cluster

import (
	"sync"
	"testing"
	"time"
)

// waitFor polls cond for up to 10 s (a wait, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// One command at a time runs on one worker, over and over.
func TestWorkerPool_ReusesAnIdleWorker(t *testing.T) {
	t.Parallel()
	p := newWorkerPool(4, time.Minute)
	defer p.close()
	for range 100 {
		done := make(chan struct{})
		p.run(func() { close(done) })
		<-done
		// The worker parks itself after fn returns: let it, so the next
		// run finds it idle.
		waitFor(t, "the worker to park", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.ready) == 1 })
	}
	if n := p.alive(); n != 1 {
		t.Fatalf("%d workers for sequential commands, want 1", n)
	}
}

// Past the cap, run neither blocks nor queues: the function runs at once on
// a goroutine of its own, and the workers stay at the cap.
func TestWorkerPool_CapFallsBackToAGoroutine(t *testing.T) {
	t.Parallel()
	p := newWorkerPool(2, time.Minute)
	defer p.close()
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(5)
	for range 5 {
		p.run(func() { started.Done(); <-release })
	}
	started.Wait() // all five run at once, though the cap is 2
	if n := p.alive(); n != 2 {
		t.Fatalf("%d workers, want the cap 2", n)
	}
	close(release)
	waitFor(t, "both workers to park", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.ready) == 2 })
}

// An idle worker exits after the idle time; close makes idle workers exit
// at once, and run still runs functions afterwards.
func TestWorkerPool_IdleExitAndClose(t *testing.T) {
	t.Parallel()
	p := newWorkerPool(4, 20*time.Millisecond)
	done := make(chan struct{})
	p.run(func() { close(done) })
	<-done
	waitFor(t, "the idle worker to exit", func() bool { return p.alive() == 0 })

	p = newWorkerPool(4, time.Hour)
	var wg sync.WaitGroup
	wg.Add(3)
	for range 3 {
		p.run(wg.Done)
	}
	wg.Wait()
	waitFor(t, "the workers to park", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.ready) > 0 && len(p.ready) == p.workers })
	p.close()
	if n := p.alive(); n != 0 {
		t.Fatalf("%d workers after close, want 0", n)
	}
	ran := make(chan struct{})
	p.run(func() { close(ran) })
	<-ran
}
