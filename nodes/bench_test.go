package nodes_test

import (
	"encoding/json"
	"testing"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/schemas"
)

var sendStatusBody = []byte(`{"type":"audio","message":"Listen to this","mediaUrl":"https://example.com/promo/hello.mp3","mimeType":"audio/mpeg",` +
	`"fileName":"hello.mp3","backgroundColor":"#128C7E","isVoice":true,"duration":12.5,"source":"marketing-bot"}`)

func decodeOnce() {
	var a status.PublishArgs
	if err := json.Unmarshal(sendStatusBody, &a); err != nil {
		panic(err)
	}
}

// validateOnce is what the Send Status handler adds to decoding: the schema
// check of the body (fast path, the full validator on any doubt).
func validateOnce() {
	if err := schemas.Default().ValidateJSON(schemas.PublishInput, sendStatusBody); err != nil {
		panic(err)
	}
}

// validateFullOnce runs the full validator alone (what an invalid body costs).
func validateFullOnce() {
	doc, err := schemas.ParseJSON(sendStatusBody)
	if err != nil {
		panic(err)
	}
	if err := schemas.Default().Validate(schemas.PublishInput, doc); err != nil {
		panic(err)
	}
}

// nsPerOp keeps the last measured ns/op of each sub-benchmark for the ratio.
var nsPerOp = map[string]float64{}

func measure(name string, op func()) func(b *testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			op()
		}
		nsPerOp[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
}

// BenchmarkSendStatusBody measures schema validation of a Send Status body
// (parse + validate, what the handler adds) beside encoding/json decoding of
// the same body alone, and prints the ratio. Target: ratio <= 1.
func BenchmarkSendStatusBody(b *testing.B) {
	schemas.Default() // compile outside the measurement
	b.Run("Decode", measure("decode", decodeOnce))
	b.Run("Validate", measure("validate", validateOnce))
	b.Run("ValidateFull", measure("full", validateFullOnce))
	b.Run("Ratio", func(b *testing.B) {
		for b.Loop() {
		}
		d, v := nsPerOp["decode"], nsPerOp["validate"]
		if d == 0 || v == 0 {
			b.Skip("run with the Decode and Validate sub-benchmarks")
		}
		da, va := testing.AllocsPerRun(100, decodeOnce), testing.AllocsPerRun(100, validateOnce)
		b.Logf("decode: %.0f ns/op %.0f allocs/op; validate: %.0f ns/op %.0f allocs/op; validate/decode = %.2f (target <= 1); full validator: %.0f ns/op (%.1fx decode)",
			d, da, v, va, v/d, nsPerOp["full"], nsPerOp["full"]/d)
		b.ReportMetric(v/d, "validate/decode")
	})
}
