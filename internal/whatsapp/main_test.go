package whatsapp

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves goroutines behind: sessions
// must stop their reconnect loops and QR consumers on Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
