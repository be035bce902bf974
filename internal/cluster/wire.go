package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/status"
)

// The wire format of forwarded commands and their answers.
//
// It was JSON (encoding/json: ~35 µs of reflection per forwarded command
// across both replicas, json.Unmarshal of the answer alone 8.6% of the
// forwarding replica's CPU). It is now two header bytes, [wireMagic,
// wireVersion], then the message in the protobuf wire format written by
// hand with protowire (no generated code, no reflection): each field a
// (number, type) tag and its value, fields at their zero value left out. A
// decoder skips the fields it does not know, as encoding/json skipped
// unknown keys, so adding a field needs no new version; wireVersion changes
// only for a change older builds must refuse.
//
// Mixed versions in a rolling upgrade: builds before this one send and
// answer only JSON objects, whose first byte is '{', never wireMagic.
//   - An old replica forwards to a new owner: the owner decodes the JSON
//     command and answers in JSON (the format of the command it got).
//   - A new replica forwards to an old owner: the old owner cannot decode
//     the command, runs nothing, and answers a JSON invalid_request. A JSON
//     answer to a binary command can only mean that, so the forwarder sends
//     the command once more in JSON (forward), which costs the extra round
//     trip only until the owner is upgraded.
//   - Anything else (another magic, another version, a truncated or garbage
//     message) is an error that says so: the owner answers invalid_request
//     without running the command, the forwarder reports an internal error
//     for an answer it cannot read. Never a panic (FuzzDecodeCommand,
//     FuzzDecodeReply).
const (
	// wireMagic starts every binary message: not '{' (nor any byte a JSON
	// text can start with) and not valid UTF-8, so it cannot be mistaken
	// for the JSON of an older build or for text.
	wireMagic   byte = 0xF7
	wireVersion byte = 1
)

// Field numbers. Never reuse a number for another meaning: an older
// replica would read the new field as the old one.
const (
	// wireCommand
	fCmdInstance       protowire.Number = 1
	fCmdKind           protowire.Number = 2
	fCmdArgs           protowire.Number = 3 // a message: publishArgs, deleteArgs or cancelArgs, per kind
	fCmdOrigin         protowire.Number = 4
	fCmdTraceParent    protowire.Number = 5
	fCmdIdempotencyKey protowire.Number = 6
	fCmdMessageID      protowire.Number = 7

	// status.PublishArgs
	fPubType               protowire.Number = 1
	fPubMessage            protowire.Number = 2
	fPubMediaURL           protowire.Number = 3
	fPubMimeType           protowire.Number = 4
	fPubFileName           protowire.Number = 5
	fPubBackgroundColor    protowire.Number = 6
	fPubFont               protowire.Number = 7
	fPubIsVoice            protowire.Number = 8 // present when set (false is not unset)
	fPubDuration           protowire.Number = 9 // present when set, float64 bits
	fPubWaveform           protowire.Number = 10
	fPubSource             protowire.Number = 11
	fPubPublishAt          protowire.Number = 12
	fPubExpireAfter        protowire.Number = 13
	fPubAllowEmptyAudience protowire.Number = 14

	// status.DeleteArgs
	fDelMessageID         protowire.Number = 1
	fDelDeleteForEveryone protowire.Number = 2

	// status.CancelArgs
	fCancelScheduleID protowire.Number = 1

	// status.Origin
	fOriginPlatform     protowire.Number = 1
	fOriginWorkflowID   protowire.Number = 2
	fOriginWorkflowName protowire.Number = 3
	fOriginExecutionID  protowire.Number = 4
	fOriginNodeName     protowire.Number = 5
	fOriginSource       protowire.Number = 6
	fOriginExtra        protowire.Number = 7

	// wireReply
	fRepResult   protowire.Number = 1
	fRepReplayed protowire.Number = 2
	fRepError    protowire.Number = 3

	// wireError
	fErrCode         protowire.Number = 1
	fErrMessage      protowire.Number = 2
	fErrRetryAfterMs protowire.Number = 3

	// status.Result
	fResMessageID   protowire.Number = 1
	fResMessageType protowire.Number = 2
	fResChat        protowire.Number = 3
	fResTimestamp   protowire.Number = 4
	fResSource      protowire.Number = 5
	fResTraceID     protowire.Number = 6
	fResOrigin      protowire.Number = 7 // present when set (an empty origin is not unset)
	fResConfirmed   protowire.Number = 8 // present when set
	fResAudience    protowire.Number = 9 // present when set
	fResDeleteType  protowire.Number = 10
	fResScheduleID  protowire.Number = 11
	fResScheduled   protowire.Number = 12
	fResPublishAt   protowire.Number = 13 // present when set
	fResExpireAt    protowire.Number = 14 // present when set
	fResReplayed    protowire.Number = 15

	// status.Chat
	fChatJID protowire.Number = 1

	// status.Audience
	fAudMode       protowire.Number = 1
	fAudRecipients protowire.Number = 2

	// time.Time: the instant and the zone offset, which JSON kept too (a
	// forwarded answer renders like a local one).
	fTimeSeconds protowire.Number = 1
	fTimeNanos   protowire.Number = 2
	fTimeOffset  protowire.Number = 3
)

// wireCommand is a [status.Command] on the forwarding subject in the JSON
// of builds before the binary format (still read and answered, see above).
type wireCommand struct {
	Instance       string          `json:"instance"`
	Kind           string          `json:"kind"`
	Args           json.RawMessage `json:"args"`
	Origin         status.Origin   `json:"origin"`
	TraceParent    string          `json:"traceParent,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	MessageID      string          `json:"messageId,omitempty"`
}

// wireReply is the owner's answer (its JSON tags are the older builds').
type wireReply struct {
	Result   *status.Result `json:"result,omitempty"`
	Replayed bool           `json:"replayed,omitempty"`
	Error    *wireError     `json:"error,omitempty"`
}

type wireError struct {
	Code    errcode.Code `json:"code"`
	Message string       `json:"message"`
	// RetryAfterMs is the owner's own backoff (it lost the lease meanwhile).
	RetryAfterMs int64 `json:"retryAfterMs,omitempty"`
}

// isJSON reports whether a forwarded message is an older build's JSON.
func isJSON(b []byte) bool { return len(b) > 0 && b[0] == '{' }

// checkHeader refuses what is neither JSON nor this format's version.
func checkHeader(b []byte) error {
	switch {
	case len(b) == 0:
		return errors.New("empty message")
	case b[0] != wireMagic:
		return fmt.Errorf("unknown format (first byte 0x%02x; want 0x%02x or a JSON object)", b[0], wireMagic)
	case len(b) < 2:
		return errors.New("truncated header")
	case b[1] != wireVersion:
		return fmt.Errorf("format version %d, this replica reads version %d (replicas of incompatible builds)", b[1], wireVersion)
	}
	return nil
}

// encodeCommand is cmd in the binary format. Its error is for an Args
// this codec does not know (a kind added without updating it).
func encodeCommand(cmd status.Command) ([]byte, error) {
	b := make([]byte, 0, 512) // a typical publish with its origin and keys is ~300 bytes: no regrowth

	b = append(b, wireMagic, wireVersion)
	b = putString(b, fCmdInstance, cmd.Instance)
	switch a := cmd.Args.(type) {
	case status.PublishArgs:
		b = putString(b, fCmdKind, a.Kind())
		b = putMessage(b, fCmdArgs, func(b []byte) []byte { return appendPublishArgs(b, &a) })
	case status.DeleteArgs:
		b = putString(b, fCmdKind, a.Kind())
		b = putMessage(b, fCmdArgs, func(b []byte) []byte {
			b = putString(b, fDelMessageID, a.MessageID)
			return putBool(b, fDelDeleteForEveryone, a.DeleteForEveryone)
		})
	case status.CancelArgs:
		b = putString(b, fCmdKind, a.Kind())
		b = putMessage(b, fCmdArgs, func(b []byte) []byte { return putString(b, fCancelScheduleID, a.ScheduleID) })
	default:
		return nil, fmt.Errorf("cluster: cannot forward command args %T", cmd.Args)
	}
	if !cmd.Origin.IsZero() {
		b = putMessage(b, fCmdOrigin, func(b []byte) []byte { return appendOrigin(b, &cmd.Origin) })
	}
	b = putString(b, fCmdTraceParent, cmd.TraceParent)
	b = putString(b, fCmdIdempotencyKey, cmd.IdempotencyKey)
	b = putString(b, fCmdMessageID, cmd.MessageID)
	return b, nil
}

func appendPublishArgs(b []byte, a *status.PublishArgs) []byte {
	b = putString(b, fPubType, a.Type)
	b = putString(b, fPubMessage, a.Message)
	b = putString(b, fPubMediaURL, a.MediaURL)
	b = putString(b, fPubMimeType, a.MimeType)
	b = putString(b, fPubFileName, a.FileName)
	b = putString(b, fPubBackgroundColor, a.BackgroundColor)
	b = putString(b, fPubFont, a.Font)
	if a.IsVoice != nil {
		b = protowire.AppendTag(b, fPubIsVoice, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(*a.IsVoice))
	}
	if a.Duration != nil {
		b = protowire.AppendTag(b, fPubDuration, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(*a.Duration))
	}
	if len(a.Waveform) > 0 {
		b = putMessage(b, fPubWaveform, func(b []byte) []byte { // packed
			for _, v := range a.Waveform {
				b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(v)))
			}
			return b
		})
	}
	b = putString(b, fPubSource, a.Source)
	b = putString(b, fPubPublishAt, a.PublishAt)
	b = putString(b, fPubExpireAfter, a.ExpireAfter)
	return putBool(b, fPubAllowEmptyAudience, a.AllowEmptyAudience)
}

func appendOrigin(b []byte, o *status.Origin) []byte {
	b = putString(b, fOriginPlatform, o.Platform)
	b = putString(b, fOriginWorkflowID, o.WorkflowID)
	b = putString(b, fOriginWorkflowName, o.WorkflowName)
	b = putString(b, fOriginExecutionID, o.ExecutionID)
	b = putString(b, fOriginNodeName, o.NodeName)
	b = putString(b, fOriginSource, o.Source)
	if len(o.Extra) > 0 {
		b = protowire.AppendTag(b, fOriginExtra, protowire.BytesType)
		b = protowire.AppendBytes(b, o.Extra)
	}
	return b
}

// decodeCommand reads a forwarded command in either format; legacy is true
// for an older build's JSON (answer it in JSON).
func decodeCommand(b []byte) (cmd status.Command, legacy bool, err error) {
	if isJSON(b) {
		cmd, err = decodeCommandJSON(b)
		return cmd, true, err
	}
	if err := checkHeader(b); err != nil {
		return status.Command{}, false, err
	}
	r := newWireReader(b[2:])
	var kind string
	var args wireReader
	for r.next() {
		switch r.num {
		case fCmdInstance:
			cmd.Instance = r.string()
		case fCmdKind:
			kind = r.string()
		case fCmdArgs:
			args = r.message()
		case fCmdOrigin:
			sub := r.message()
			cmd.Origin = readOrigin(&sub)
			r.adopt(&sub)
		case fCmdTraceParent:
			cmd.TraceParent = r.string()
		case fCmdIdempotencyKey:
			cmd.IdempotencyKey = r.string()
		case fCmdMessageID:
			cmd.MessageID = r.string()
		default:
			r.skip()
		}
	}
	if r.err != nil {
		return status.Command{}, false, r.err
	}
	switch kind {
	case status.KindPublish:
		cmd.Args = readPublishArgs(&args)
	case status.KindDelete:
		var a status.DeleteArgs
		for args.next() {
			switch args.num {
			case fDelMessageID:
				a.MessageID = args.string()
			case fDelDeleteForEveryone:
				a.DeleteForEveryone = args.bool()
			default:
				args.skip()
			}
		}
		cmd.Args = a
	case status.KindCancel:
		var a status.CancelArgs
		for args.next() {
			switch args.num {
			case fCancelScheduleID:
				a.ScheduleID = args.string()
			default:
				args.skip()
			}
		}
		cmd.Args = a
	default:
		return status.Command{}, false, fmt.Errorf("unknown command kind %q", kind)
	}
	if args.err != nil {
		return status.Command{}, false, args.err
	}
	return cmd, false, nil
}

func readPublishArgs(r *wireReader) (a status.PublishArgs) {
	for r.next() {
		switch r.num {
		case fPubType:
			a.Type = r.string()
		case fPubMessage:
			a.Message = r.string()
		case fPubMediaURL:
			a.MediaURL = r.string()
		case fPubMimeType:
			a.MimeType = r.string()
		case fPubFileName:
			a.FileName = r.string()
		case fPubBackgroundColor:
			a.BackgroundColor = r.string()
		case fPubFont:
			a.Font = r.string()
		case fPubIsVoice:
			v := r.bool()
			a.IsVoice = &v
		case fPubDuration:
			v := math.Float64frombits(r.fixed64())
			a.Duration = &v
		case fPubWaveform:
			packed := r.message()
			for len(packed.b) > 0 && packed.err == nil {
				v, n := protowire.ConsumeVarint(packed.b)
				if n < 0 {
					packed.err = protowire.ParseError(n)
					break
				}
				packed.advance(n)
				a.Waveform = append(a.Waveform, int(protowire.DecodeZigZag(v)))
			}
			r.adopt(&packed)
		case fPubSource:
			a.Source = r.string()
		case fPubPublishAt:
			a.PublishAt = r.string()
		case fPubExpireAfter:
			a.ExpireAfter = r.string()
		case fPubAllowEmptyAudience:
			a.AllowEmptyAudience = r.bool()
		default:
			r.skip()
		}
	}
	return a
}

func readOrigin(r *wireReader) (o status.Origin) {
	for r.next() {
		switch r.num {
		case fOriginPlatform:
			o.Platform = r.string()
		case fOriginWorkflowID:
			o.WorkflowID = r.string()
		case fOriginWorkflowName:
			o.WorkflowName = r.string()
		case fOriginExecutionID:
			o.ExecutionID = r.string()
		case fOriginNodeName:
			o.NodeName = r.string()
		case fOriginSource:
			o.Source = r.string()
		case fOriginExtra:
			if s := r.string(); s != "" {
				o.Extra = json.RawMessage(s)
			}
		default:
			r.skip()
		}
	}
	return o
}

// encodeReply is rep in the binary format, or in JSON for an older build
// that forwarded its command in JSON.
func encodeReply(rep *wireReply, legacy bool) []byte {
	if legacy {
		b, _ := json.Marshal(rep) // cannot fail: no channels, funcs or cyclic values
		return b
	}
	b := make([]byte, 0, 256) // a typical answer is ~170 bytes
	b = append(b, wireMagic, wireVersion)
	if rep.Result != nil {
		b = putMessage(b, fRepResult, func(b []byte) []byte { return appendResult(b, rep.Result) })
	}
	b = putBool(b, fRepReplayed, rep.Replayed)
	if e := rep.Error; e != nil {
		b = putMessage(b, fRepError, func(b []byte) []byte {
			b = putString(b, fErrCode, string(e.Code))
			b = putString(b, fErrMessage, e.Message)
			return putSint(b, fErrRetryAfterMs, e.RetryAfterMs)
		})
	}
	return b
}

func appendResult(b []byte, r *status.Result) []byte {
	b = putString(b, fResMessageID, r.MessageID)
	b = putString(b, fResMessageType, r.MessageType)
	if r.Chat != (status.Chat{}) {
		b = putMessage(b, fResChat, func(b []byte) []byte { return putString(b, fChatJID, r.Chat.JID) })
	}
	if !r.Timestamp.IsZero() {
		b = putTime(b, fResTimestamp, r.Timestamp)
	}
	b = putString(b, fResSource, r.Source)
	b = putString(b, fResTraceID, r.TraceID)
	if r.Origin != nil {
		b = putMessage(b, fResOrigin, func(b []byte) []byte { return appendOrigin(b, r.Origin) })
	}
	if r.Confirmed != nil {
		b = protowire.AppendTag(b, fResConfirmed, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(*r.Confirmed))
	}
	if a := r.Audience; a != nil {
		b = putMessage(b, fResAudience, func(b []byte) []byte {
			b = putString(b, fAudMode, a.Mode)
			return putSint(b, fAudRecipients, int64(a.Recipients))
		})
	}
	b = putString(b, fResDeleteType, r.DeleteType)
	b = putString(b, fResScheduleID, r.ScheduleID)
	b = putBool(b, fResScheduled, r.Scheduled)
	if r.PublishAt != nil {
		b = putTime(b, fResPublishAt, *r.PublishAt)
	}
	if r.ExpireAt != nil {
		b = putTime(b, fResExpireAt, *r.ExpireAt)
	}
	return putBool(b, fResReplayed, r.Replayed)
}

// decodeReply reads an owner's answer in either format; legacy is true for
// an older build's JSON.
func decodeReply(b []byte) (rep wireReply, legacy bool, err error) {
	if isJSON(b) {
		err = json.Unmarshal(b, &rep)
		return rep, true, err
	}
	if err := checkHeader(b); err != nil {
		return wireReply{}, false, err
	}
	r := newWireReader(b[2:])
	for r.next() {
		switch r.num {
		case fRepResult:
			sub := r.message()
			rep.Result = readResult(&sub)
			r.adopt(&sub)
		case fRepReplayed:
			rep.Replayed = r.bool()
		case fRepError:
			sub := r.message()
			rep.Error = readError(&sub)
			r.adopt(&sub)
		default:
			r.skip()
		}
	}
	if r.err != nil {
		return wireReply{}, false, r.err
	}
	return rep, false, nil
}

func readError(r *wireReader) *wireError {
	e := &wireError{}
	for r.next() {
		switch r.num {
		case fErrCode:
			e.Code = errcode.Code(r.string())
		case fErrMessage:
			e.Message = r.string()
		case fErrRetryAfterMs:
			e.RetryAfterMs = r.sint()
		default:
			r.skip()
		}
	}
	return e
}

func readResult(r *wireReader) *status.Result {
	res := &status.Result{}
	for r.next() {
		switch r.num {
		case fResMessageID:
			res.MessageID = r.string()
		case fResMessageType:
			res.MessageType = r.string()
		case fResChat:
			sub := r.message()
			for sub.next() {
				if sub.num == fChatJID {
					res.Chat.JID = sub.string()
				} else {
					sub.skip()
				}
			}
			r.adopt(&sub)
		case fResTimestamp:
			res.Timestamp = r.time()
		case fResSource:
			res.Source = r.string()
		case fResTraceID:
			res.TraceID = r.string()
		case fResOrigin:
			sub := r.message()
			o := readOrigin(&sub)
			res.Origin = &o
			r.adopt(&sub)
		case fResConfirmed:
			v := r.bool()
			res.Confirmed = &v
		case fResAudience:
			sub := r.message()
			a := &status.Audience{}
			for sub.next() {
				switch sub.num {
				case fAudMode:
					a.Mode = sub.string()
				case fAudRecipients:
					a.Recipients = int(sub.sint())
				default:
					sub.skip()
				}
			}
			res.Audience = a
			r.adopt(&sub)
		case fResDeleteType:
			res.DeleteType = r.string()
		case fResScheduleID:
			res.ScheduleID = r.string()
		case fResScheduled:
			res.Scheduled = r.bool()
		case fResPublishAt:
			t := r.time()
			res.PublishAt = &t
		case fResExpireAt:
			t := r.time()
			res.ExpireAt = &t
		case fResReplayed:
			res.Replayed = r.bool()
		default:
			r.skip()
		}
	}
	return res
}

// The JSON of older builds.

func encodeCommandJSON(cmd status.Command) ([]byte, error) {
	if cmd.Args == nil {
		return nil, errors.New("cluster: command without args")
	}
	args, err := json.Marshal(cmd.Args)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wireCommand{Instance: cmd.Instance, Kind: cmd.Args.Kind(), Args: args, Origin: cmd.Origin,
		TraceParent: cmd.TraceParent, IdempotencyKey: cmd.IdempotencyKey, MessageID: cmd.MessageID})
}

func decodeCommandJSON(b []byte) (status.Command, error) {
	var w wireCommand
	if err := json.Unmarshal(b, &w); err != nil {
		return status.Command{}, err
	}
	cmd := status.Command{Instance: w.Instance, Origin: w.Origin, TraceParent: w.TraceParent,
		IdempotencyKey: w.IdempotencyKey, MessageID: w.MessageID}
	var err error
	switch w.Kind {
	case status.KindPublish:
		var a status.PublishArgs
		err = json.Unmarshal(w.Args, &a)
		cmd.Args = a
	case status.KindDelete:
		var a status.DeleteArgs
		err = json.Unmarshal(w.Args, &a)
		cmd.Args = a
	case status.KindCancel:
		var a status.CancelArgs
		err = json.Unmarshal(w.Args, &a)
		cmd.Args = a
	default:
		err = fmt.Errorf("unknown command kind %q", w.Kind)
	}
	return cmd, err
}

// Writing.

func putString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func putBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return append(b, 1)
}

func putSint(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeZigZag(v))
}

func putTime(b []byte, num protowire.Number, t time.Time) []byte {
	_, offset := t.Zone()
	return putMessage(b, num, func(b []byte) []byte {
		b = putSint(b, fTimeSeconds, t.Unix())
		if ns := t.Nanosecond(); ns != 0 {
			b = protowire.AppendTag(b, fTimeNanos, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(ns))
		}
		return putSint(b, fTimeOffset, int64(offset))
	})
}

// putMessage appends a length-delimited field whose content body appends,
// in place: one length byte is reserved and the content moved only when it
// is 128 bytes or longer, so no scratch buffer per nested message.
func putMessage(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	at := len(b)
	b = append(b, 0)
	b = body(b)
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	size := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, size-1)...)
	copy(b[at+size:], b[at+1:at+1+n])
	binary.PutUvarint(b[at:at+size], uint64(n))
	return b
}

// Reading.

// wireReader reads the fields of one message. Strings are substrings of
// one copy of the whole message (one allocation per message, not one per
// field); the copy is what lets the caller's buffer be reused.
type wireReader struct {
	s   string // the message
	b   []byte // what is left of it to read
	pos int    // offset of b in s
	num protowire.Number
	typ protowire.Type
	err error
}

func newWireReader(b []byte) wireReader { return wireReader{s: string(b), b: b} }

// next reads the next field's tag; false at the end or on an error.
func (r *wireReader) next() bool {
	if r.err != nil || len(r.b) == 0 {
		return false
	}
	num, typ, n := protowire.ConsumeTag(r.b)
	if n < 0 {
		r.err = protowire.ParseError(n)
		return false
	}
	r.advance(n)
	r.num, r.typ = num, typ
	return true
}

func (r *wireReader) advance(n int) { r.b, r.pos = r.b[n:], r.pos+n }

// want checks the current field's wire type.
func (r *wireReader) want(typ protowire.Type) bool {
	if r.err != nil {
		return false
	}
	if r.typ != typ {
		r.err = fmt.Errorf("field %d has wire type %d, want %d", r.num, r.typ, typ)
		return false
	}
	return true
}

func (r *wireReader) fail(n int) { r.err = fmt.Errorf("field %d: %w", r.num, protowire.ParseError(n)) }

func (r *wireReader) string() string {
	if !r.want(protowire.BytesType) {
		return ""
	}
	v, n := protowire.ConsumeBytes(r.b)
	if n < 0 {
		r.fail(n)
		return ""
	}
	end := r.pos + n
	r.advance(n)
	return r.s[end-len(v) : end]
}

// message is the reader of the current field's content; after reading it,
// adopt its error.
func (r *wireReader) message() wireReader {
	if !r.want(protowire.BytesType) {
		return wireReader{}
	}
	v, n := protowire.ConsumeBytes(r.b)
	if n < 0 {
		r.fail(n)
		return wireReader{}
	}
	end := r.pos + n
	r.advance(n)
	return wireReader{s: r.s[end-len(v) : end], b: v}
}

// adopt takes the error of a reader message returned.
func (r *wireReader) adopt(sub *wireReader) {
	if r.err == nil && sub.err != nil {
		r.err = fmt.Errorf("field %d: %w", r.num, sub.err)
	}
}

func (r *wireReader) uvarint() uint64 {
	if !r.want(protowire.VarintType) {
		return 0
	}
	v, n := protowire.ConsumeVarint(r.b)
	if n < 0 {
		r.fail(n)
		return 0
	}
	r.advance(n)
	return v
}

func (r *wireReader) bool() bool  { return r.uvarint() != 0 }
func (r *wireReader) sint() int64 { return protowire.DecodeZigZag(r.uvarint()) }

func (r *wireReader) fixed64() uint64 {
	if !r.want(protowire.Fixed64Type) {
		return 0
	}
	v, n := protowire.ConsumeFixed64(r.b)
	if n < 0 {
		r.fail(n)
		return 0
	}
	r.advance(n)
	return v
}

// time reads a time message: UTC when its offset is 0, else a zone of that
// offset (as encoding/json read the RFC 3339 offset).
func (r *wireReader) time() time.Time {
	sub := r.message()
	var sec, offset int64
	var nsec uint64
	for sub.next() {
		switch sub.num {
		case fTimeSeconds:
			sec = sub.sint()
		case fTimeNanos:
			nsec = sub.uvarint()
		case fTimeOffset:
			offset = sub.sint()
		default:
			sub.skip()
		}
	}
	r.adopt(&sub)
	if r.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 || offset <= -24*3600 || offset >= 24*3600 {
		r.err = fmt.Errorf("field %d: time out of range (%d ns, offset %d s)", r.num, nsec, offset)
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if offset == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(offset)))
}

// skip passes over a field this build does not know (a newer build's).
func (r *wireReader) skip() {
	n := protowire.ConsumeFieldValue(r.num, r.typ, r.b)
	if n < 0 {
		r.fail(n)
		return
	}
	r.advance(n)
}
