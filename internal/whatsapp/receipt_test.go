package whatsapp

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

func TestStatusReceipt(t *testing.T) {
	t.Parallel()
	viewer := types.NewJID("5511999990001", types.DefaultUserServer)
	viewer.Device = 3
	at := time.Unix(1789901942, 0)
	src := func(chat types.JID, sender types.JID, fromMe bool) types.MessageSource {
		return types.MessageSource{Chat: chat, Sender: sender, IsFromMe: fromMe}
	}
	for _, c := range []struct {
		name string
		r    events.Receipt
		want *Receipt
	}{
		{"Read", events.Receipt{MessageSource: src(types.StatusBroadcastJID, viewer, false), MessageIDs: []string{"3EB0A"}, Type: types.ReceiptTypeRead, Timestamp: at},
			&Receipt{Instance: "sales", MessageIDs: []string{"3EB0A"}, Viewer: "5511999990001@s.whatsapp.net", Kind: ViewRead, At: at.UTC()}},
		{"PlayedList", events.Receipt{MessageSource: src(types.StatusBroadcastJID, viewer, false), MessageIDs: []string{"3EB0A", "3EB0B"}, Type: types.ReceiptTypePlayed, Timestamp: at},
			&Receipt{Instance: "sales", MessageIDs: []string{"3EB0A", "3EB0B"}, Viewer: "5511999990001@s.whatsapp.net", Kind: ViewPlayed, At: at.UTC()}},
		{"DeliveryIsNoView", events.Receipt{MessageSource: src(types.StatusBroadcastJID, viewer, false), MessageIDs: []string{"3EB0A"}, Type: types.ReceiptTypeDelivered}, nil},
		{"OtherChat", events.Receipt{MessageSource: src(viewer.ToNonAD(), viewer, false), MessageIDs: []string{"3EB0A"}, Type: types.ReceiptTypeRead}, nil},
		{"OwnOtherDevice", events.Receipt{MessageSource: src(types.StatusBroadcastJID, viewer, true), MessageIDs: []string{"3EB0A"}, Type: types.ReceiptTypeRead}, nil},
		// whatsmeow#1270: grouped status receipts arrive with an empty id.
		{"GroupedWithoutID", events.Receipt{MessageSource: src(types.StatusBroadcastJID, viewer, false), MessageIDs: []string{""}, Type: types.ReceiptTypeRead}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := statusReceipt("sales", &c.r)
			if ok != (c.want != nil) {
				t.Fatalf("ok = %v", ok)
			}
			if c.want != nil && (got.Viewer != c.want.Viewer || got.Kind != c.want.Kind || !got.At.Equal(c.want.At) || len(got.MessageIDs) != len(c.want.MessageIDs)) {
				t.Fatalf("got %+v, want %+v", got, *c.want)
			}
		})
	}
}
