package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// Receipt kinds that count as a view of a status.
const (
	// ViewRead: the viewer opened the status.
	ViewRead = "read"
	// ViewPlayed: the viewer played a voice or video status.
	ViewPlayed = "played"
)

// Receipt is a viewer's read or played receipt for statuses this device
// sent, as a session reports it through [Hooks.OnReceipt].
type Receipt struct {
	Instance   string
	MessageIDs []string
	// Viewer is the viewer's JID (phone-number JID or LID, as WhatsApp sent it).
	Viewer string
	// Kind is [ViewRead] or [ViewPlayed].
	Kind string
	At   time.Time
}

// statusReceipt turns a whatsmeow receipt into a status view, when it is
// one: a read or played receipt in status@broadcast from someone else.
//
// WhatsApp sends one <receipt from="status@broadcast" participant="<viewer>"
// id="<message id>" type="read"/> per viewer (whatsmeow's parseReceipt and
// parseMessageSource put the viewer in Sender); users of whatsmeow, WAHA and
// Baileys count views from exactly these (tulir/whatsmeow#829,
// adiwajshing/Baileys#1968). Delivery receipts ("" type) are not views.
// Grouped status receipts (<participants>) reach us through whatsmeow's
// handleGroupedReceipt with an empty message id and no per-user type
// (tulir/whatsmeow#1270, still so in the vendored version): they carry
// nothing to attribute, so they are dropped here and counted by the caller.
func statusReceipt(instance string, r *events.Receipt) (Receipt, bool) {
	if r.Chat != types.StatusBroadcastJID || r.IsFromMe {
		return Receipt{}, false
	}
	var kind string
	switch r.Type {
	case types.ReceiptTypeRead:
		kind = ViewRead
	case types.ReceiptTypePlayed:
		kind = ViewPlayed
	default:
		return Receipt{}, false
	}
	ids := make([]string, 0, len(r.MessageIDs))
	for _, id := range r.MessageIDs {
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 || r.Sender.IsEmpty() {
		return Receipt{}, false
	}
	at := r.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	return Receipt{Instance: instance, MessageIDs: ids, Viewer: r.Sender.ToNonAD().String(), Kind: kind, At: at.UTC()}, true
}

// ErrNotSandbox is returned by [Manager.SimulateViews] for an instance of another engine.
var ErrNotSandbox = errors.New("whatsapp: not a sandbox instance")

// viewSimulator is a session that can pretend viewers saw its statuses (the sandbox).
type viewSimulator interface {
	SimulateViews(ctx context.Context, messageID, kind string, viewers []string) error
}

// SimulateViews makes a sandbox instance report read (or played) receipts
// from the given viewers for one of its statuses, through the same hook as
// real receipts.
func (m *Manager) SimulateViews(ctx context.Context, instance, messageID, kind string, viewers []string) error {
	sess, err := m.Session(ctx, instance)
	if err != nil {
		return err
	}
	sim, ok := sess.(viewSimulator)
	if !ok {
		return fmt.Errorf("instance %s: %w", instance, ErrNotSandbox)
	}
	return sim.SimulateViews(ctx, messageID, kind, viewers)
}

// SimulateViews implements viewSimulator: one receipt per viewer, a
// millisecond apart, as WhatsApp would send them.
func (s *sandboxSession) SimulateViews(ctx context.Context, messageID, kind string, viewers []string) error {
	if kind == "" {
		kind = ViewRead
	}
	if s.hooks.OnReceipt == nil {
		return nil
	}
	now := s.engine.now()
	for i, v := range viewers {
		s.hooks.OnReceipt(Receipt{Instance: s.instance, MessageIDs: []string{messageID}, Viewer: v, Kind: kind, At: now.Add(time.Duration(i) * time.Millisecond)})
	}
	return nil
}
