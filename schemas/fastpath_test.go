package schemas

import (
	"encoding/json"
	"testing"
)

// full runs only the full validator (the bounds check runs before both paths).
func full(v *Validator, name string, body []byte) bool {
	doc, err := parseJSON(body)
	return err == nil && v.Validate(name, doc) == nil
}

var fastBodies = []string{
	`{"type":"text","message":"hi"}`,
	`{"type":"text","message":"hi","backgroundColor":"#80FF0000","font":"monospace","source":"crm"}`,
	`{"type":"image","mediaUrl":"https://e.com/a.jpg","backgroundColor":"whatever","font":"comic"}`,
	`{"type":"audio","mediaUrl":"https://e.com/a.mp3","isVoice":false,"duration":3.5}`,
	`{"type":"audio","mediaUrl":"https://e.com/a.mp3","waveform":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63]}`,
	`{"type":"audio","mediaUrl":"https://e.com/a.mp3","waveform":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,1.0]}`,
	`{"type":"text"}`, `{"type":"text","message":" "}`, `{"type":"image"}`, `{"type":"video","mediaUrl":""}`,
	`{"type":"text","message":"a","font":"comic"}`, `{"type":"audio","mediaUrl":"x","backgroundColor":"#12"}`,
	`{"type":"text","type":"image","message":"x"}`, `{"type":"image","type":"text","message":"x"}`,
	`{"type":"audio","mediaUrl":"x","duration":0}`, `{"type":"audio","mediaUrl":"x","duration":86400.0000000000000001}`,
	`{"type":"text","message":"a","mediaURL":"x"}`, `[]`, ``, `{"type":"text","message":"a"} x`, "{\"type\":\"text\",\"message\":\"\xff\"}",
	`{"type":"text","message":"a","isVoice":"yes"}`, `{"type":1}`, `{"message":"x"}`, `{"type":"text","message":"\u0000"}`,
	`{"messageId":"3EB0","deleteForEveryone":true}`, `{"messageId":""}`,
	`{"instance":"sales","input":{"type":"text"},"origin":{"platform":"n8n","extra":{"a":1}}}`, `{"instance":"sales","input":{},"origin":{"platform":5}}`,
}

func TestFastPath_AgreesWithValidator(t *testing.T) {
	t.Parallel()
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{PublishInput, DeleteInput, ExecuteInput, Origin, InstanceCreate} {
		if _, ok := v.fast[name]; !ok {
			t.Errorf("%s has no fast path", name)
		}
	}
	for _, name := range v.Names() {
		for _, body := range fastBodies {
			if v.fastValid(name, []byte(body)) && !full(v, name, []byte(body)) {
				t.Errorf("%s: fast path accepts %s, the validator does not", name, body)
			}
		}
		// Every valid example takes the fast path.
		if _, ok := v.fast[name]; !ok {
			continue
		}
		exs, _ := v.Doc(name)["examples"].([]any)
		for i := range exs {
			b, _ := jsonMarshal(exs[i])
			if !v.fastValid(name, b) {
				t.Errorf("%s example %d misses the fast path", name, i)
			}
		}
	}
	if !v.fastValid(PublishInput, []byte(fastBodies[4])) || v.fastValid(PublishInput, []byte(fastBodies[5])) {
		t.Error("waveform: integer check")
	}
}

func FuzzFastPath(f *testing.F) {
	for _, b := range fastBodies {
		f.Add([]byte(b))
	}
	v := Default()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, name := range []string{PublishInput, DeleteInput, ExecuteInput} {
			if v.fastValid(name, body) && !full(v, name, body) {
				t.Fatalf("%s: fast path accepts %q, the validator does not", name, body)
			}
		}
	})
}

func jsonMarshal(x any) ([]byte, error) { return json.Marshal(x) }
