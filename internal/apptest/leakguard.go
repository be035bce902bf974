package apptest

import (
	"bytes"
	"io"
	"sync"
	"testing"
)

// leakGuard passes the app's log output on and remembers any line that
// holds a token it knows (the account token, the instance tokens that
// CreateInstance returned). The test fails at cleanup if there was one:
// no token may ever be logged (issue 7), in any test that starts an app.
type leakGuard struct {
	w io.Writer

	mu      sync.Mutex
	secrets [][]byte
	leaks   []string
}

func (g *leakGuard) add(secret string) {
	if secret == "" {
		return
	}
	g.mu.Lock()
	g.secrets = append(g.secrets, []byte(secret))
	g.mu.Unlock()
}

func (g *leakGuard) Write(p []byte) (int, error) {
	g.mu.Lock()
	for _, s := range g.secrets {
		if bytes.Contains(p, s) {
			g.leaks = append(g.leaks, string(p))
			break
		}
	}
	g.mu.Unlock()
	return g.w.Write(p)
}

// check fails t with every leaking line; register it before the app's stop
// so that it runs after it.
func (g *leakGuard) check(t testing.TB) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.leaks {
		t.Errorf("a token appears in the logs: %s", l)
	}
}
