package whatsapp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/util/cbcutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/statusflow/statusflow/internal/store"
)

// sandboxStore is where the sandbox records what it would have sent.
type sandboxStore interface {
	SandboxStatusRecord(ctx context.Context, st *store.SandboxStatus) error
	SandboxStatusMarkRevoked(ctx context.Context, instance, messageID string) error
	SandboxAudienceGet(ctx context.Context, instance string) (*store.SandboxAudience, error)
}

// Sandbox is an engine that never touches WhatsApp. Its sessions are
// connected at once, compute what an upload would record (WhatsApp's media
// encryption, run for real), build the exact message the whatsmeow engine
// would send, and record it for GET /api/sandbox/:instance/statuses.
type Sandbox struct {
	store sandboxStore
	now   func() time.Time
	// Media, when set, keeps each upload's plaintext for the console's
	// preview (GET /api/sandbox/:instance/media/:messageId).
	Media *SandboxMedia
}

// NewSandbox returns the sandbox engine.
func NewSandbox(st sandboxStore) *Sandbox {
	return &Sandbox{store: st, now: func() time.Time { return time.Now().UTC() }}
}

// SetClock replaces the engine's clock, the time its sends report (tests
// move it with the core's, see status.Service.SetClock).
func (e *Sandbox) SetClock(now func() time.Time) { e.now = now }

// Name implements [Engine].
func (*Sandbox) Name() string { return EngineSandbox }

// Open implements [Engine]. The session reports connected straight away.
func (e *Sandbox) Open(ctx context.Context, p OpenParams) (Session, error) {
	s := &sandboxSession{engine: e, instance: p.Instance, hooks: p.Hooks, state: StateConnected}
	s.report(StateConnected, "sandbox session opened")
	return s, nil
}

type sandboxSession struct {
	engine   *Sandbox
	instance string
	hooks    Hooks

	mu    sync.Mutex
	state State
}

func (s *sandboxSession) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// JID is a fixed placeholder: the sandbox has no phone.
func (s *sandboxSession) JID() string {
	if s.State() == StateLoggedOut {
		return ""
	}
	return "0@sandbox"
}

func (s *sandboxSession) report(st State, reason string) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	if s.hooks.OnState != nil {
		s.hooks.OnState(StateChange{Instance: s.instance, State: st, JID: s.JID(), Reason: reason, At: s.engine.now()})
	}
}

func (s *sandboxSession) Connect(ctx context.Context, phone string) (*Pairing, error) {
	if s.State() != StateConnected {
		s.report(StateConnected, "sandbox connected")
	}
	return &Pairing{State: StateConnected}, nil
}

func (s *sandboxSession) Reconnect(ctx context.Context) error {
	s.report(StateConnected, "sandbox reconnected")
	return nil
}

func (s *sandboxSession) Logout(ctx context.Context) error {
	s.report(StateLoggedOut, "logged out")
	return nil
}

func (s *sandboxSession) Close() error { return nil }

// Upload runs WhatsApp's media encryption over the bytes (streamed, never
// held whole) and returns what a real upload would record. The direct path
// is invented: nothing is stored anywhere.
func (s *sandboxSession) Upload(ctx context.Context, r io.ReadSeeker, size int64, kind MediaKind) (*Upload, error) {
	if s.State() != StateConnected {
		return nil, ErrNotConnected
	}
	up, err := s.engine.Media.keep(s.instance, r, size, func(r io.Reader) (*Upload, error) { return EncryptMedia(r, kind) })
	if err != nil {
		return nil, err
	}
	up.MediaKeyTimestamp = s.engine.now().Unix()
	return up, nil
}

// appInfo is the HKDF info string WhatsApp uses per media kind: whatsmeow's
// media type names it.
func appInfo(kind MediaKind) whatsmeow.MediaType {
	switch kind {
	case MediaImage:
		return whatsmeow.MediaImage
	case MediaVideo:
		return whatsmeow.MediaVideo
	case MediaAudio:
		return whatsmeow.MediaAudio
	}
	return whatsmeow.MediaDocument
}

// EncryptMedia computes the upload fields of WhatsApp's media encryption
// with whatsmeow's own helpers (what Client.UploadReader runs before it
// uploads): a random 32-byte media key expanded with HKDF-SHA256 into IV,
// AES-256-CBC key and HMAC key; the file is CBC-encrypted with PKCS#7
// padding and a 10-byte HMAC-SHA256 tag appended. It streams r and discards
// the ciphertext, keeping only its hash.
func EncryptMedia(r io.Reader, kind MediaKind) (*Upload, error) {
	mediaKey := make([]byte, 32)
	if _, err := rand.Read(mediaKey); err != nil {
		return nil, err
	}
	expanded := hkdfutil.SHA256(mediaKey, nil, []byte(appInfo(kind)), 112)
	iv, cipherKey, macKey := expanded[:16], expanded[16:48], expanded[48:80]
	fileSHA, encSHA, total, _, err := cbcutil.EncryptStream(cipherKey, iv, macKey, r, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("read media: %w", err)
	}
	directPath := "/v/t62.7118-24/sandbox/" + hex.EncodeToString(fileSHA[:12]) + ".enc"
	return &Upload{
		URL:           "https://mmg.whatsapp.net" + directPath,
		DirectPath:    directPath,
		MediaKey:      mediaKey,
		FileEncSHA256: encSHA,
		FileSHA256:    fileSHA,
		FileLength:    total,
	}, nil
}

// SendStatus records the message the session would send. A repeated id is
// the same message to WhatsApp (a retry after a crash between send and
// record is not a second status): it is recorded once. In the core's publish
// the record is deferred into the transaction of the status row and its
// status.published event (store.WithDeferred): the three commit together,
// in one commit, or not at all.
func (s *sandboxSession) SendStatus(ctx context.Context, id string, msg *waE2E.Message) (time.Time, error) {
	if s.State() != StateConnected {
		return time.Time{}, ErrNotConnected
	}
	now := s.engine.now()
	rec, err := s.record(id, msg, now)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.engine.store.SandboxStatusRecord(ctx, rec); err != nil {
		return time.Time{}, err
	}
	return now, nil
}

// record is what the sandbox keeps of a message it would send.
func (s *sandboxSession) record(id string, msg *waE2E.Message, at time.Time) (*store.SandboxStatus, error) {
	body, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	rec := &store.SandboxStatus{Instance: s.instance, MessageID: id, Type: messageType(msg), Proto: body, CreatedAt: at}
	if m := mediaOf(msg); m != nil {
		rec.MediaMimetype, rec.MediaBytes, rec.MediaSHA256 = m.mimetype, int64(m.length), hex.EncodeToString(m.sha256)
	}
	return rec, nil
}

func (s *sandboxSession) RevokeStatus(ctx context.Context, id string) (time.Time, error) {
	if s.State() != StateConnected {
		return time.Time{}, ErrNotConnected
	}
	if err := s.engine.store.SandboxStatusMarkRevoked(ctx, s.instance, id); err != nil {
		return time.Time{}, err
	}
	return s.engine.now(), nil
}

// SandboxDefaultContacts is how many simulated contacts a sandbox instance
// has until its audience is set: statuses reach somebody out of the box.
const SandboxDefaultContacts = 3

// SandboxRecipients returns n simulated recipients: +1 555 01 xxxxx, a
// range reserved for fiction.
func SandboxRecipients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("1555%07d@s.whatsapp.net", 100001+i)
	}
	return out
}

// Audience implements [AudienceReader] with the instance's simulated
// audience (POST /api/instance/new `audience`, PUT
// /api/instance/audience/:instance), by default contacts mode with
// [SandboxDefaultContacts] contacts.
func (s *sandboxSession) Audience(ctx context.Context) (*Audience, error) {
	if s.State() != StateConnected {
		return nil, ErrNotConnected
	}
	a, err := s.engine.store.SandboxAudienceGet(ctx, s.instance)
	if errors.Is(err, store.ErrNotFound) {
		return sortedAudience(AudienceContacts, SandboxRecipients(SandboxDefaultContacts)), nil
	}
	if err != nil {
		return nil, err
	}
	return sortedAudience(a.Mode, append([]string(nil), a.Recipients...)), nil
}

func messageType(m *waE2E.Message) string {
	switch {
	case m.GetImageMessage() != nil:
		return "image"
	case m.GetVideoMessage() != nil:
		return "video"
	case m.GetAudioMessage() != nil:
		return "audio"
	}
	return "text"
}

type mediaFields struct {
	mimetype string
	length   uint64
	sha256   []byte
}

func mediaOf(m *waE2E.Message) *mediaFields {
	switch {
	case m.GetImageMessage() != nil:
		x := m.GetImageMessage()
		return &mediaFields{x.GetMimetype(), x.GetFileLength(), x.GetFileSHA256()}
	case m.GetVideoMessage() != nil:
		x := m.GetVideoMessage()
		return &mediaFields{x.GetMimetype(), x.GetFileLength(), x.GetFileSHA256()}
	case m.GetAudioMessage() != nil:
		x := m.GetAudioMessage()
		return &mediaFields{x.GetMimetype(), x.GetFileLength(), x.GetFileSHA256()}
	}
	return nil
}

// RecordedMessage is the message the sandbox recorded in rec.
func RecordedMessage(rec *store.SandboxStatus) (*waE2E.Message, error) {
	var m waE2E.Message
	if len(rec.Proto) > 0 {
		return &m, proto.Unmarshal(rec.Proto, &m)
	}
	return &m, protojson.Unmarshal([]byte(rec.Message), &m) // recorded before the binary form
}

// RecordedMessageJSON is the message the sandbox recorded in rec, as
// protojson (what GET /api/sandbox/:instance/statuses shows).
func RecordedMessageJSON(rec *store.SandboxStatus) (json.RawMessage, error) {
	if len(rec.Proto) == 0 {
		return json.RawMessage(rec.Message), nil
	}
	m, err := RecordedMessage(rec)
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(m)
}
