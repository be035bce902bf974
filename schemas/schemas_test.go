package schemas_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/whatsapp"
	"github.com/statusflow/statusflow/schemas"
)

func TestSchemas_Compile(t *testing.T) {
	t.Parallel()
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Names()) < 10 {
		t.Fatalf("only %d schemas", len(v.Names()))
	}
	// Every example of every schema validates against it.
	for _, name := range v.Names() {
		exs, _ := v.Doc(name)["examples"].([]any)
		if len(exs) == 0 && name != schemas.Origin {
			t.Errorf("%s has no examples", name)
		}
		for i, ex := range exs {
			if err := v.Validate(name, ex); err != nil {
				t.Errorf("%s example %d: %v", name, i, err)
			}
		}
	}
}

func TestPublishInput_Messages(t *testing.T) {
	t.Parallel()
	v := schemas.Default()
	cases := []struct {
		name, body, want string
	}{
		{"Empty", ``, "Invalid request body: the body is empty; send a JSON object"},
		{"Malformed", `{"type":`, "Invalid request body: unexpected EOF"},
		{"NotObject", `[1]`, "Invalid request body: expected a JSON object"},
		{"TrailingData", `{"type":"text","message":"a"} x`, "Invalid request body: unexpected data after the JSON value"},
		{"WrongFieldType", `{"type":"text","message":5}`, "Invalid request body: message: expected string, but got number"},
		{"WrongTypeBeatsMissingType", `{"message":5}`, "Invalid request body: message: expected string, but got number"},
		{"MissingType", `{"message":"hi"}`, "Type must be one of: text, image, video, audio"},
		{"UnknownType", `{"type":"sticker","message":"hi"}`, "Type must be one of: text, image, video, audio"},
		{"TypeNotString", `{"type":1}`, "Type must be one of: text, image, video, audio"},
		{"TextWithoutMessage", `{"type":"text"}`, "Message is required"},
		{"TextBlankMessage", `{"type":"text","message":"  "}`, "Message is required"},
		{"ImageWithoutURL", `{"type":"image"}`, "MediaURL is required for type: image"},
		{"VideoEmptyURL", `{"type":"video","mediaUrl":""}`, "MediaURL is required for type: video"},
		{"AudioWithoutURL", `{"type":"audio","message":"x"}`, "MediaURL is required for type: audio"},
		{"MessageBeforeFont", `{"type":"text","font":"comic"}`, "Message is required"},
		{"UnknownFont", `{"type":"text","message":"a","font":"comic"}`, "Invalid request body: font must be one of: system, sans-serif, serif, script, bold, morningbreeze, calistoga, exo2, courierprime, monospace, handwriting, extrabold"},
		{"BadColour", `{"type":"text","message":"a","backgroundColor":"red"}`, "Invalid request body: backgroundColor must be #RRGGBB or #AARRGGBB"},
		{"BadVoiceColour", `{"type":"audio","mediaUrl":"http://x/a.mp3","backgroundColor":"#12"}`, "Invalid request body: backgroundColor must be #RRGGBB or #AARRGGBB"},
		{"UnknownField", `{"type":"text","message":"a","mediaURL":"x"}`, "Invalid request body: unknown field 'mediaURL' not allowed"},
		{"TextTooLong", `{"type":"text","message":"` + strings.Repeat("é", 701) + `"}`, "Invalid request body: message must be at most 700 characters for a text status (WhatsApp's limit)"},
		{"VoiceTooLong", `{"type":"audio","mediaUrl":"http://x/a.mp3","duration":61}`, "Invalid request body: duration must be at most 60 seconds (WhatsApp's voice-status limit)"},
		{"ShortWaveform", `{"type":"audio","mediaUrl":"http://x/a.mp3","waveform":[1,2]}`, "Invalid request body: waveform: minimum 64 items required, but found 2 items"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var args status.PublishArgs
			err := v.Decode(schemas.PublishInput, []byte(tc.body), &args)
			var se *errcode.Error
			if !errors.As(err, &se) || se.Code != errcode.CodeInvalid {
				t.Fatalf("got %v, want CodeInvalid", err)
			}
			if se.Message != tc.want {
				t.Fatalf("message\n got %q\nwant %q", se.Message, tc.want)
			}
		})
	}
}

func TestPublishInput_Accepts(t *testing.T) {
	t.Parallel()
	v := schemas.Default()
	for _, body := range []string{
		`{"type":"text","message":"hi"}`,
		`{"type":"text","message":"hi","backgroundColor":"#80FF0000","font":"monospace","source":"crm"}`,
		// Ignored fields are not checked where they do not apply.
		`{"type":"image","mediaUrl":"https://e.com/a.jpg","backgroundColor":"whatever","font":"comic"}`,
		`{"type":"audio","mediaUrl":"https://e.com/a.mp3","isVoice":false,"duration":3.5}`,
		// The limits are inclusive; a caption is not a text status.
		`{"type":"text","message":"` + strings.Repeat("é", 700) + `"}`,
		`{"type":"image","mediaUrl":"https://e.com/a.jpg","message":"` + strings.Repeat("x", 2000) + `"}`,
		`{"type":"audio","mediaUrl":"https://e.com/a.mp3","duration":60}`,
	} {
		var args status.PublishArgs
		if err := v.Decode(schemas.PublishInput, []byte(body), &args); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestDeleteInput_Messages(t *testing.T) {
	t.Parallel()
	v := schemas.Default()
	for body, want := range map[string]string{
		`{}`:               "MessageID is required",
		`{"messageId":""}`: "MessageID is required",
		`{"messageId":"X","deleteForEveryone":"yes"}`: "Invalid request body: deleteForEveryone: expected boolean, but got string",
	} {
		err := v.Decode(schemas.DeleteInput, []byte(body), nil)
		var se *errcode.Error
		if !errors.As(err, &se) || se.Message != want {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
}

// The font names the schema accepts are exactly the ones the message builder maps.
func TestPublishInput_FontsMatchBuilder(t *testing.T) {
	t.Parallel()
	doc := schemas.Default().Doc(schemas.PublishInput)
	b, _ := json.Marshal(doc["allOf"].([]any)[0].(map[string]any)["then"].(map[string]any)["properties"].(map[string]any)["font"].(map[string]any)["enum"])
	var names []string
	json.Unmarshal(b, &names)
	if !slices.Equal(names, whatsapp.FontNames()) {
		t.Fatalf("schema fonts %v, builder fonts %v", names, whatsapp.FontNames())
	}
}

func FuzzDecodePublish(f *testing.F) {
	for _, s := range []string{`{"type":"text","message":"hi"}`, `{"type":"image"}`, `[]`, `{"type":"audio","mediaUrl":"x","waveform":[1]}`, ``} {
		f.Add([]byte(s))
	}
	v := schemas.Default()
	f.Fuzz(func(t *testing.T, body []byte) {
		var args status.PublishArgs
		err := v.Decode(schemas.PublishInput, body, &args)
		if err == nil {
			if args.Type == "" {
				t.Fatalf("accepted a body without type: %q", body)
			}
			return
		}
		var se *errcode.Error
		if !errors.As(err, &se) || se.Code != errcode.CodeInvalid || se.Message == "" {
			t.Fatalf("error is not an invalid-request status error: %v", err)
		}
	})
}
