// Package whatsapp holds the engines that talk to WhatsApp (or pretend to):
// whatsmeow, the real one, and sandbox, which never touches the network but
// builds and records the exact message it would send. Both implement [Engine].
package whatsapp

import (
	"context"
	"errors"
	"io"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
)

// State is an instance's connection state, as shown in `connection.state`.
type State string

const (
	// StateConnected: logged in and online; statuses can be published.
	StateConnected State = "connected"
	// StateConnecting: dialling, waiting for a QR scan or pairing code, or
	// syncing app state after login.
	StateConnecting State = "connecting"
	// StateDisconnected: not connected; a stored session may reconnect.
	StateDisconnected State = "disconnected"
	// StateLoggedOut: no session; the device must be linked again.
	StateLoggedOut State = "loggedout"
)

// Engine names, as accepted by `POST /api/instance/new`.
const (
	EngineWhatsmeow = "whatsmeow"
	EngineSandbox   = "sandbox"
)

// MediaKind says which WhatsApp media bucket an upload goes to.
type MediaKind string

const (
	MediaImage MediaKind = "image"
	MediaVideo MediaKind = "video"
	MediaAudio MediaKind = "audio"
)

// Upload is what an upload records: the fields WhatsApp clients need to fetch
// and decrypt the media.
type Upload struct {
	URL           string
	DirectPath    string
	MediaKey      []byte
	FileEncSHA256 []byte
	FileSHA256    []byte
	FileLength    uint64
	// MediaKeyTimestamp is when the media key was made (Unix seconds).
	// WhatsApp Web and Baileys (prepareWAMessageMedia: mediaKeyTimestamp =
	// unixTimestampSeconds()) send it with every media message; recipients
	// use it to judge how old the media is before fetching it.
	MediaKeyTimestamp int64
}

// Errors an engine or session returns; the core maps them to status codes.
var (
	// ErrNotConnected: the session is not connected (or not yet synced).
	ErrNotConnected = errors.New("whatsapp: not connected")
	// ErrNotPaired: the instance has no linked device.
	ErrNotPaired = errors.New("whatsapp: no linked device")
)

// Pairing is what Connect returns: a QR code to scan or a pairing code to type.
type Pairing struct {
	// State is StateConnected when the session was already linked.
	State State
	// QRCode is the raw QR payload (empty when PairingCode is set).
	QRCode string
	// PairingCode is the 8-character code for "link with phone number".
	PairingCode string
}

// StateChange is reported by sessions through [Hooks.OnState].
type StateChange struct {
	Instance string
	State    State
	// JID is the linked device's JID, when known.
	JID string
	// Reason says why, in words ("stream replaced", "keep-alive timeout", …).
	Reason string
	At     time.Time
}

// Hooks is how a session reports back. Fields may be nil.
type Hooks struct {
	// OnState is called on every state change.
	OnState func(StateChange)
	// OnPaired is called once a new device is linked, with its JID, so the
	// caller can store which device belongs to the instance.
	OnPaired func(instance, jid string)
	// OnReceipt is called for each viewer's read or played receipt of a
	// status this device sent.
	OnReceipt func(Receipt)
	// OnQR is called with each QR code of a pairing: the first (also
	// returned by Connect) and every rotated one.
	OnQR func(instance, code string)
}

// OpenParams identify the session to open.
type OpenParams struct {
	Instance string
	// DeviceJID is the stored device of a linked instance; empty for new ones.
	DeviceJID string
	Hooks     Hooks
	// Owned, when set, is the fencing check of a session opened under a
	// lease (see [Gate]): false once this replica no longer holds the
	// instance. The session's background work (history sync) checks it
	// before it starts; nil means the session is always owned.
	Owned func() bool
}

// Engine opens sessions for instances.
type Engine interface {
	// Name is the engine's name as stored with the instance.
	Name() string
	// Open returns a session for the instance. It does not block on the
	// network: a stored session starts reconnecting in the background.
	Open(ctx context.Context, params OpenParams) (Session, error)
}

// Session is one instance's connection.
type Session interface {
	// State is the current connection state.
	State() State
	// JID is the linked device's JID, empty when not linked.
	JID() string
	// Connect starts linking: with phone empty it returns a QR code, else a
	// pairing code for that number. An already-linked session returns State connected.
	Connect(ctx context.Context, phone string) (*Pairing, error)
	// Reconnect resumes a stored session.
	Reconnect(ctx context.Context) error
	// Logout unlinks the device and removes its keys; the instance stays.
	Logout(ctx context.Context) error
	// Close disconnects without unlinking.
	Close() error
	// Upload encrypts and uploads media read from r (size bytes).
	Upload(ctx context.Context, r io.ReadSeeker, size int64, kind MediaKind) (*Upload, error)
	// SendStatus sends msg to status@broadcast with the given message id and
	// returns the server's timestamp.
	SendStatus(ctx context.Context, id string, msg *waE2E.Message) (time.Time, error)
	// RevokeStatus revokes a status this device sent.
	RevokeStatus(ctx context.Context, id string) (time.Time, error)
}
