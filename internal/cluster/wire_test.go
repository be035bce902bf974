package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/status"
)

// fill sets every exported field of v, recursively, to a value that is not
// its zero value (distinct per field, counted by n), and fails on a field
// it cannot fill: a field added to status.Command, its Args, status.Result
// or the wire types is then in the round-trip tests below without anyone
// listing it, and they fail until the codec carries it. Interfaces (Args)
// are left to the caller.
func fill(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	*n++
	i := *n
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s-%d-é", v.Type().Name(), i))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := int64(i*1000 + 7) // large enough for a multi-byte varint
		if i%2 == 0 {
			x = -x // and negative ones, to exercise zigzag
		}
		v.SetInt(x)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(i) + 0.25)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), n)
		v.Set(p)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // json.RawMessage
			v.SetBytes([]byte(fmt.Sprintf(`{"n":%d}`, i)))
			return
		}
		s := reflect.MakeSlice(v.Type(), 3, 3)
		for j := range 3 {
			fill(t, s.Index(j), n)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			// Nanoseconds and a zone offset: both must survive, as they did in JSON.
			v.Set(reflect.ValueOf(time.Date(2026, 11, 30, 3, i%60, 5, 123456789+i, time.FixedZone("", 3600*(i%5+1)))))
			return
		}
		for j := range v.NumField() {
			f := v.Type().Field(j)
			if !f.IsExported() {
				t.Fatalf("fill: %s.%s is unexported: the codec cannot see it", v.Type(), f.Name)
			}
			if f.Type.Kind() == reflect.Interface {
				continue
			}
			fill(t, v.Field(j), n)
		}
	case reflect.Interface:
	default:
		t.Fatalf("fill: no test value for a %s: teach fill (and the codec) this type", v.Type())
	}
}

// filledCommands is one command per Args kind, every field set.
func filledCommands(t *testing.T) []status.Command {
	t.Helper()
	var out []status.Command
	n := 0
	for _, args := range []status.Args{status.PublishArgs{}, status.DeleteArgs{}, status.CancelArgs{}} {
		var cmd status.Command
		fill(t, reflect.ValueOf(&cmd).Elem(), &n)
		a := reflect.New(reflect.TypeOf(args))
		fill(t, a.Elem(), &n)
		cmd.Args = a.Elem().Interface().(status.Args)
		out = append(out, cmd)
	}
	return out
}

func filledReply(t *testing.T) wireReply {
	t.Helper()
	var rep wireReply
	n := 0
	fill(t, reflect.ValueOf(&rep).Elem(), &n)
	return rep
}

func TestWire_CommandRoundTrip(t *testing.T) {
	t.Parallel()
	for _, cmd := range filledCommands(t) {
		t.Run(cmd.Args.Kind(), func(t *testing.T) {
			b, err := encodeCommand(cmd)
			if err != nil {
				t.Fatal(err)
			}
			got, legacy, err := decodeCommand(b)
			if err != nil || legacy {
				t.Fatalf("decode: %v (legacy %v)", err, legacy)
			}
			if !reflect.DeepEqual(got, cmd) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, cmd)
			}
			// The JSON of older builds still reads the same.
			j, err := encodeCommandJSON(cmd)
			if err != nil {
				t.Fatal(err)
			}
			got, legacy, err = decodeCommand(j)
			if err != nil || !legacy || !reflect.DeepEqual(got, cmd) {
				t.Fatalf("JSON: %v (legacy %v)\n got %#v\nwant %#v", err, legacy, got, cmd)
			}
		})
	}
	// Set-but-false and zero values are not "unset".
	f, zero := false, 0.0
	cmd := status.Command{Instance: "i", Args: status.PublishArgs{Type: "audio", IsVoice: &f, Duration: &zero, Waveform: []int{0, -1, 1 << 40}}}
	b, _ := encodeCommand(cmd)
	if got, _, err := decodeCommand(b); err != nil || !reflect.DeepEqual(got, cmd) {
		t.Fatalf("zero values: %v\n got %#v\nwant %#v", err, got, cmd)
	}
	if _, err := encodeCommand(status.Command{Instance: "i"}); err == nil {
		t.Fatal("a command without args was encoded")
	}
}

func TestWire_ReplyRoundTrip(t *testing.T) {
	t.Parallel()
	full := filledReply(t)
	utc := time.Date(2026, 11, 30, 3, 4, 5, 0, time.UTC)
	f := false
	for name, rep := range map[string]wireReply{
		"full":  full,
		"empty": {},
		"error": {Error: &wireError{Code: errcode.CodeDisconnected, Message: "m", RetryAfterMs: 1500}},
		// Set but empty or false is not unset; UTC stays UTC.
		"zeros": {Result: &status.Result{MessageID: "3EB0", Timestamp: utc, Origin: &status.Origin{}, Confirmed: &f,
			Audience: &status.Audience{}, PublishAt: &utc, ExpireAt: &time.Time{}}},
	} {
		t.Run(name, func(t *testing.T) {
			b := encodeReply(&rep, false)
			got, legacy, err := decodeReply(b)
			if err != nil || legacy {
				t.Fatalf("decode: %v (legacy %v)", err, legacy)
			}
			if !reflect.DeepEqual(got, rep) {
				t.Fatalf("round trip:\n got %s\nwant %s", dump(got), dump(rep))
			}
		})
	}
	// An older build's JSON answer reads as before (Result.Replayed is not
	// in its JSON: the wire's Replayed carries it).
	j := encodeReply(&full, true)
	got, legacy, err := decodeReply(j)
	want := full
	res := *full.Result
	res.Replayed = false
	want.Result = &res
	if err != nil || !legacy || !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON: %v (legacy %v)\n got %s\nwant %s", err, legacy, dump(got), dump(want))
	}
}

func dump(rep wireReply) string {
	s := fmt.Sprintf("%+v", rep)
	if rep.Result != nil {
		s += fmt.Sprintf(" result %+v", *rep.Result)
	}
	if rep.Error != nil {
		s += fmt.Sprintf(" error %+v", *rep.Error)
	}
	return s
}

// Fields of a newer build are skipped, as encoding/json skipped unknown keys.
func TestWire_UnknownFieldsSkipped(t *testing.T) {
	t.Parallel()
	cmd := filledCommands(t)[0]
	b, _ := encodeCommand(cmd)
	b = putString(b, 99, "from the future")
	b = putMessage(b, 100, func(b []byte) []byte { return putSint(b, 1, -5) })
	if got, _, err := decodeCommand(b); err != nil || !reflect.DeepEqual(got, cmd) {
		t.Fatalf("with unknown fields: %v", err)
	}
	rep := filledReply(t)
	r := encodeReply(&rep, false)
	r = putBool(r, 77, true)
	if got, _, err := decodeReply(r); err != nil || !reflect.DeepEqual(got, rep) {
		t.Fatalf("reply with unknown fields: %v", err)
	}
}

// What is neither this format nor an older build's JSON is a clear error.
func TestWire_Garbage(t *testing.T) {
	t.Parallel()
	good, _ := encodeCommand(filledCommands(t)[0])
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"empty":       {nil, "empty message"},
		"text":        {[]byte("hello"), "unknown format (first byte 0x68"},
		"magic only":  {[]byte{wireMagic}, "truncated header"},
		"new version": {[]byte{wireMagic, wireVersion + 1, 0x0a}, "format version 2, this replica reads version 1"},
		"truncated":   {good[:len(good)-3], "unexpected EOF"},
		"wire type":   {[]byte{wireMagic, wireVersion, byte(fCmdInstance<<3 | 0)}, "field 1 has wire type 0, want 2"},
		"bad JSON":    {[]byte(`{"instance": 1}`), "cannot unmarshal number"},
		"no kind":     {[]byte{wireMagic, wireVersion}, `unknown command kind ""`},
	} {
		_, _, err := decodeCommand(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: command error %v, want %q", name, err, tc.want)
		}
		if name == "no kind" || name == "bad JSON" {
			continue // valid (empty) answers
		}
		if _, _, err := decodeReply(tc.data); err == nil {
			t.Errorf("%s: reply decoded", name)
		}
	}
}

// FuzzDecodeCommand: no input panics the decoder, and what it accepts
// encodes and decodes again to the same bytes.
func FuzzDecodeCommand(f *testing.F) {
	t := &testing.T{}
	for _, cmd := range filledCommands(t) {
		b, _ := encodeCommand(cmd)
		f.Add(b)
		j, _ := encodeCommandJSON(cmd)
		f.Add(j)
	}
	f.Add([]byte{})
	f.Add([]byte{wireMagic, wireVersion})
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, legacy, err := decodeCommand(data)
		if err != nil || legacy {
			return
		}
		b1, err := encodeCommand(cmd)
		if err != nil {
			t.Fatalf("decoded %#v cannot be encoded: %v", cmd, err)
		}
		again, _, err := decodeCommand(b1)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if b2, _ := encodeCommand(again); !bytes.Equal(b1, b2) {
			t.Fatalf("not stable:\n%x\n%x", b1, b2)
		}
	})
}

// FuzzDecodeReply: the same for answers.
func FuzzDecodeReply(f *testing.F) {
	rep := filledReply(&testing.T{})
	f.Add(encodeReply(&rep, false))
	f.Add(encodeReply(&rep, true))
	f.Add(encodeReply(&wireReply{Error: &wireError{Code: "c", Message: "m", RetryAfterMs: 9}}, false))
	f.Add([]byte{})
	f.Add([]byte{wireMagic, wireVersion, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, legacy, err := decodeReply(data)
		if err != nil || legacy {
			return
		}
		b1 := encodeReply(&rep, false)
		again, _, err := decodeReply(b1)
		if err != nil {
			t.Fatalf("re-encoded reply does not decode: %v", err)
		}
		if b2 := encodeReply(&again, false); !bytes.Equal(b1, b2) {
			t.Fatalf("not stable:\n%x\n%x", b1, b2)
		}
	})
}

// BenchmarkForwardCodec compares the JSON of older builds with the binary
// format on a typical forwarded publish and its answer: the forwarding
// replica encodes the command and decodes the answer, the owner the
// reverse ("both" is one forwarded command's codec work on both replicas).
//
//	go test -run x -bench ForwardCodec -benchmem ./internal/cluster/
func BenchmarkForwardCodec(b *testing.B) {
	yes := true
	at := time.Date(2026, 11, 30, 3, 4, 5, 123456789, time.UTC)
	origin := status.Origin{Platform: "n8n", WorkflowID: "wf-1234", WorkflowName: "Daily status", ExecutionID: "exec-98765", NodeName: "Statusflow"}
	cmd := status.Command{
		Instance: "sales-team",
		Args: status.PublishArgs{Type: "text", Message: "Our store opens at 9 today. Come by for the new collection!",
			BackgroundColor: "#25D366", Font: "SERIF"},
		Origin:         origin,
		TraceParent:    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		IdempotencyKey: "b7e2d8a4-5c1f-4f0e-9a3b-1d2c3e4f5a6b",
		MessageID:      "3EB0A1B2C3D4E5F6A7B8C9",
	}
	rep := wireReply{Result: &status.Result{MessageID: "3EB0A1B2C3D4E5F6A7B8C9", MessageType: "text",
		Chat: status.Chat{JID: status.StatusBroadcastJID}, Timestamp: at, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Origin: &origin, Confirmed: &yes, Audience: &status.Audience{Mode: "contacts", Recipients: 212}}}

	jsonCommand := func(b *testing.B) {
		data, err := encodeCommandJSON(cmd)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeCommandJSON(data); err != nil {
			b.Fatal(err)
		}
	}
	binaryCommand := func(b *testing.B) {
		data, err := encodeCommand(cmd)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := decodeCommand(data); err != nil {
			b.Fatal(err)
		}
	}
	jsonReply := func(b *testing.B) {
		data, err := json.Marshal(&rep)
		if err != nil {
			b.Fatal(err)
		}
		var got wireReply
		if err := json.Unmarshal(data, &got); err != nil {
			b.Fatal(err)
		}
	}
	binaryReply := func(b *testing.B) {
		if _, _, err := decodeReply(encodeReply(&rep, false)); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		fn   []func(*testing.B)
	}{
		{"command/json", []func(*testing.B){jsonCommand}},
		{"command/binary", []func(*testing.B){binaryCommand}},
		{"reply/json", []func(*testing.B){jsonReply}},
		{"reply/binary", []func(*testing.B){binaryReply}},
		{"both/json", []func(*testing.B){jsonCommand, jsonReply}},
		{"both/binary", []func(*testing.B){binaryCommand, binaryReply}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, fn := range bc.fn {
					fn(b)
				}
			}
		})
	}
	c, _ := encodeCommand(cmd)
	cj, _ := encodeCommandJSON(cmd)
	r := encodeReply(&rep, false)
	rj := encodeReply(&rep, true)
	b.Logf("sizes: command %d bytes (JSON %d), reply %d bytes (JSON %d)", len(c), len(cj), len(r), len(rj))
}
