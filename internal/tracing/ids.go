package tracing

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// idGenerator mints the ids of every span the tracer provider starts.
//
// A trace id begins with the time in milliseconds (6 bytes) followed by 10
// random bytes, as AWS X-Ray's ids begin with the time: ids the server starts
// sort by time, so the trace-id indexes of the event log and the statuses
// grow at their right edge instead of dirtying a random page per row (on
// SQLite that was most of a publication's write cost). W3C trace context
// allows it: only ids flagged "random" (we set no such flag) must be random
// in full, and 80 random bits keep ids unique.
//
// math/rand/v2's generator is ChaCha8 seeded from the system: ids that are
// random enough for tracing, without a system call or a lock for each (the
// SDK's default generator locks one math/rand source per provider).
type idGenerator struct{}

var _ sdktrace.IDGenerator = idGenerator{}

func (idGenerator) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	return newTraceID(), newSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newTraceID() trace.TraceID {
	var b trace.TraceID
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	binary.BigEndian.PutUint64(b[6:14], rand.Uint64())
	binary.BigEndian.PutUint16(b[14:], uint16(rand.Uint32()))
	return b
}

// newSpanID is 8 random bytes, never all zero (the spec forbids it).
func newSpanID() trace.SpanID {
	var b trace.SpanID
	for {
		if x := rand.Uint64(); x != 0 {
			binary.LittleEndian.PutUint64(b[:], x)
			return b
		}
	}
}
