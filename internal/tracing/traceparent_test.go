package tracing_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/tracing"
)

// New trace ids begin with the time in milliseconds, so they sort by time
// (the event log's trace index grows at its edge), and stay unique.
func TestNew_TimeOrderedUniqueIDs(t *testing.T) {
	before := time.Now().UnixMilli()
	seen := make(map[string]bool)
	prev := ""
	for range 10000 {
		tc := tracing.New()
		if _, ok := tracing.Parse(tc.String()); !ok {
			t.Fatalf("New() = %q: not a valid traceparent", tc.String())
		}
		if seen[tc.TraceID] {
			t.Fatalf("trace id %s twice", tc.TraceID)
		}
		seen[tc.TraceID] = true
		if tc.TraceID[:12] < prev {
			t.Fatalf("trace id %s sorts before the previous prefix %s", tc.TraceID, prev)
		}
		prev = tc.TraceID[:12]
		ms, err := strconv.ParseInt(tc.TraceID[:12], 16, 64)
		if err != nil || ms < before || ms > time.Now().UnixMilli() {
			t.Fatalf("trace id %s: prefix %d is not the time in ms (%d…now)", tc.TraceID, ms, before)
		}
		if child := tc.Child(); child.TraceID != tc.TraceID || child.SpanID == tc.SpanID || len(child.SpanID) != 16 {
			t.Fatalf("child %+v of %+v", child, tc)
		}
	}
}
