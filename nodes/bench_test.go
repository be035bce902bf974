package nodes_test

import (
	"encoding/json"
	"testing"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/schemas"
)

var sendStatusBody = []byte(`{"type":"audio","message":"Listen to this","mediaUrl":"https://example.com/promo/hello.mp3","mimeType":"audio/mpeg",` +
	`"fileName":"hello.mp3","backgroundColor":"#128C7E","isVoice":true,"duration":12.5,"source":"marketing-bot"}`)

func benchDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var a status.PublishArgs
		if err := json.Unmarshal(sendStatusBody, &a); err != nil {
			b.Fatal(err)
		}
	}
}

func benchValidate(b *testing.B) {
	v := schemas.Default()
	b.ReportAllocs()
	for b.Loop() {
		doc, err := schemas.ParseJSON(sendStatusBody)
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Validate(schemas.PublishInput, doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendStatusBody measures schema validation of a Send Status body
// (parse + validate, what the handler adds) beside encoding/json decoding of
// the same body alone, and prints the ratio. Target: ratio <= 1.
func BenchmarkSendStatusBody(b *testing.B) {
	b.Run("Decode", benchDecode)
	b.Run("Validate", benchValidate)
	b.Run("Ratio", func(b *testing.B) {
		for b.Loop() {
		}
		d := testing.Benchmark(benchDecode)
		v := testing.Benchmark(benchValidate)
		ratio := float64(v.NsPerOp()) / float64(d.NsPerOp())
		b.Logf("decode: %d ns/op %d allocs/op; validate: %d ns/op %d allocs/op; validate/decode = %.2f",
			d.NsPerOp(), d.AllocsPerOp(), v.NsPerOp(), v.AllocsPerOp(), ratio)
		b.ReportMetric(ratio, "validate/decode")
	})
}
