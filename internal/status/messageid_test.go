package status_test

import (
	"regexp"
	"sync"
	"testing"

	"github.com/statusflow/statusflow/internal/status"
)

var messageIDFormat = regexp.MustCompile(`^3EB0[0-9A-F]{18}$`)

// Message ids keep WhatsApp Web's format, increase within a process (the
// statuses' primary key grows at its edge) and never repeat, also when many
// goroutines ask at once.
func TestNewMessageID(t *testing.T) {
	prev := ""
	for range 20000 {
		id := status.NewMessageID()
		if !messageIDFormat.MatchString(id) {
			t.Fatalf("%q is not 3EB0 + 18 hex digits", id)
		}
		if id <= prev {
			t.Fatalf("%s after %s: not increasing", id, prev)
		}
		prev = id
	}
	var mu sync.Mutex
	seen := make(map[string]bool)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]string, 5000)
			for i := range local {
				local[i] = status.NewMessageID()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("%s twice", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
}
