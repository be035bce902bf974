package schemas_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/schemas"
)

// hugeWaveform is the body: 1 MB with a 480 000-item waveform.
var hugeWaveform = []byte(`{"type":"audio","mediaUrl":"https://e.com/a.mp3","waveform":[` + strings.Repeat("1,", 480000) + `1]}`)

func TestValidator_Bounds(t *testing.T) {
	t.Parallel()
	v := schemas.Default()
	cases := []struct {
		name, schema, body, want string
	}{
		{"NULInMessage", schemas.PublishInput, `{"type":"text","message":"a\u0000b"}`, "message: NUL characters"},
		{"NULInSource", schemas.PublishInput, `{"type":"text","message":"a","source":"\u0000"}`, "source: NUL characters"},
		{"NULInKey", schemas.PublishInput, `{"type":"text","message":"a","x\u0000":1}`, "NUL characters"},
		{"NULInOriginExtra", schemas.ExecuteInput, `{"instance":"s","input":{"type":"text","message":"a"},"origin":{"extra":{"k":["\u0000"]}}}`, "origin/extra/k/0: NUL characters"},
		{"NULInExecuteInput", schemas.ExecuteInput, `{"instance":"s","input":{"type":"text","message":"\u0000"}}`, "input/message: NUL characters"},
		{"NULInDelete", schemas.DeleteInput, `{"messageId":"3EB0\u0000"}`, "messageId: NUL characters"},
		{"InvalidUTF8", schemas.PublishInput, "{\"type\":\"text\",\"message\":\"\xff\xfe\"}", "not valid UTF-8"},
		{"InvalidUTF8InKey", schemas.InstanceCreate, "{\"name\":\"a\",\"\xc3\":1}", "not valid UTF-8"},
		{"HugeWaveform", schemas.PublishInput, string(hugeWaveform), "waveform: maximum 64 items required"},
		{"LongMessage", schemas.PublishInput, `{"type":"image","mediaUrl":"https://e.com/a.jpg","message":"` + strings.Repeat("é", 65537) + `"}`, "message: length must be <= 65536"},
		{"LongURLKeepsSchemaMessage", schemas.WebhookConfigInput, `{"label":"a","url":"https://e.com/` + strings.Repeat("a", 3000) + `"}`, "url is longer than 2048 characters"},
		{"UnknownFieldFlood", schemas.PublishInput, `{"type":"text","message":"a"` + strings.Repeat(`,"x":1`, 100000) + `}`, "fields allowed, but found more"},
		{"DuplicateKeyFlood", schemas.DeleteInput, `{` + strings.Repeat(`"messageId":"a",`, 100000) + `"messageId":"a"}`, "at most 2 fields allowed"},
		{"DeepNesting", schemas.ExecuteInput, `{"instance":"s","input":` + strings.Repeat(`[`, 100000) + strings.Repeat(`]`, 100000) + `}`, "nested deeper than 32"},
		{"OpenObjectFlood", schemas.ExecuteInput, `{"instance":"s","input":{"type":"text","message":"a"},"origin":{"extra":{` + strings.Repeat(`"k":1,`, 5000) + `"k":1}}}`, "origin/extra: at most 256 fields"},
		{"LongNumber", schemas.PublishInput, `{"type":"audio","mediaUrl":"x","duration":1` + strings.Repeat("0", 100000) + `}`, "duration: number longer than 64"},
		{"GenericArray", schemas.ExecuteInput, `{"instance":"s","input":{"a":[` + strings.Repeat("0,", 5000) + `0]}}`, "input/a: maximum 1024 items"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := v.Decode(tc.schema, []byte(tc.body), nil)
			var se *errcode.Error
			if !errors.As(err, &se) || se.Code != errcode.CodeInvalid || !strings.Contains(se.Message, tc.want) {
				t.Fatalf("Decode = %v, want invalid_request containing %q", err, tc.want)
			}
			// The generic check (ParseJSON: NATS triggers, samples) refuses NUL and bad UTF-8 too.
			if strings.Contains(tc.want, "NUL") || strings.Contains(tc.want, "UTF-8") {
				if _, err := schemas.ParseJSON([]byte(tc.body)); err == nil {
					t.Fatal("ParseJSON accepted it")
				}
			}
		})
	}
}

func TestValidator_BoundsKeepValidBodies(t *testing.T) {
	t.Parallel()
	v := schemas.Default()
	ok := []struct{ schema, body string }{
		// A caption may be 65 536 characters; a text status only 700 (WhatsApp's limit, issue 12).
		{schemas.PublishInput, `{"type":"image","mediaUrl":"https://e.com/a.jpg","message":"` + strings.Repeat("é", 65536) + `"}`},
		{schemas.PublishInput, `{"type":"image","mediaUrl":"https://e.com/a.jpg","message":"` + strings.Repeat(`\ud83d\ude00`, 65536) + `"}`}, // surrogate pairs count once
		{schemas.PublishInput, `{"type":"text","message":"` + strings.Repeat(`\ud83d\ude00`, 700) + `"}`},
		{schemas.PublishInput, `{"type":"text","message":"literal \\u0000 is text, not NUL"}`},
		{schemas.PublishInput, `{"type":"audio","mediaUrl":"https://e.com/a.mp3","waveform":[` + strings.Repeat("1,", 63) + `1]}`},
		{schemas.ExecuteInput, `{"instance":"s","input":{"type":"text","message":"a"},"origin":{"platform":"n8n","extra":{"a":[1,2,{"b":null}]}}}`},
	}
	for i, c := range ok {
		if err := v.Decode(c.schema, []byte(c.body), nil); err != nil {
			t.Errorf("body %d: %v", i, err)
		}
	}
	for _, name := range v.Names() {
		exs, _ := v.Doc(name)["examples"].([]any)
		if len(exs) > 0 {
			if err := v.Check(name, []byte(mustJSON(t, exs[0]))); err != nil {
				t.Errorf("%s example: %v", name, err)
			}
		}
	}
}

// BenchmarkInvalidBody compares what the 1 MB / 480k-item waveform
// body costs against a valid Send Status body. Before the bounds check it
// took ~6 s of CPU; the ratio printed is invalid/valid.
func BenchmarkInvalidBody(b *testing.B) {
	v := schemas.Default()
	valid := []byte(`{"type":"audio","message":"Listen","mediaUrl":"https://example.com/hello.mp3","isVoice":true,"duration":12.5,"source":"crm"}`)
	var nsValid, nsHuge float64
	b.Run("Valid", func(b *testing.B) {
		for b.Loop() {
			if err := v.Decode(schemas.PublishInput, valid, nil); err != nil {
				b.Fatal(err)
			}
		}
		nsValid = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("HugeWaveform", func(b *testing.B) {
		for b.Loop() {
			if err := v.Decode(schemas.PublishInput, hugeWaveform, nil); err == nil {
				b.Fatal("accepted")
			}
		}
		nsHuge = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	if nsValid > 0 {
		b.Logf("1 MB / 480k-item waveform: %.0f ns vs valid body %.0f ns: ratio %.1f", nsHuge, nsValid, nsHuge/nsValid)
	}
}

func mustJSON(t *testing.T, x any) string {
	t.Helper()
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
