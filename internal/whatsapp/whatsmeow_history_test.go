package whatsapp

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/statusflow/statusflow/internal/store"
)

// historyPayload is what a phone inlines in a notification: the chunk,
// zlib-compressed.
func historyPayload(t testing.TB, hs *waHistorySync.HistorySync) []byte {
	t.Helper()
	raw, err := proto.Marshal(hs)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// inlineNotification is a history-sync notification carrying hs inline.
func inlineNotification(t testing.TB, typ waE2E.HistorySyncType, chunk uint32, hs *waHistorySync.HistorySync) *waE2E.HistorySyncNotification {
	return &waE2E.HistorySyncNotification{
		SyncType:                          typ.Enum(),
		ChunkOrder:                        proto.Uint32(chunk),
		Progress:                          proto.Uint32(50),
		InitialHistBootstrapInlinePayload: historyPayload(t, hs),
	}
}

// historyMessage is the protocol message the account's phone sends to the
// linked device with a notification, as whatsmeow decrypts it.
func historyMessage(own types.JID, id string, n *waE2E.HistorySyncNotification) (*types.MessageInfo, *waE2E.Message) {
	info := &types.MessageInfo{
		MessageSource: types.MessageSource{Chat: own.ToNonAD(), Sender: own, IsFromMe: true},
		ID:            id,
	}
	msg := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type:                    waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
		HistorySyncNotification: n,
	}}
	return info, msg
}

// historyMessageEvent is historyMessage as the events.Message whatsmeow
// dispatches for it.
func historyMessageEvent(own types.JID, id string, n *waE2E.HistorySyncNotification) *events.Message {
	info, msg := historyMessage(own, id, n)
	return (&events.Message{Info: *info, RawMessage: msg}).UnwrapRaw()
}

// TestWhatsmeow_HistorySyncConfig: the registration payload a fresh device
// sends when it is linked asks the phone for little history.
func TestWhatsmeow_HistorySyncConfig(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, store.SQLite)
	// A device without an ID gets whatsmeow's registration payload.
	payload := e.container.NewDevice().GetClientPayload()
	raw := payload.GetDevicePairingData().GetDeviceProps()
	if raw == nil {
		t.Fatal("registration payload without DeviceProps")
	}
	var props waCompanionReg.DeviceProps
	if err := proto.Unmarshal(raw, &props); err != nil {
		t.Fatal(err)
	}
	c := props.GetHistorySyncConfig()
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"Os", props.GetOs(), DeviceName},
		{"RequireFullSync", props.GetRequireFullSync(), false},
		{"FullSyncDaysLimit", c.GetFullSyncDaysLimit(), uint32(7)},
		{"FullSyncSizeMbLimit", c.GetFullSyncSizeMbLimit(), uint32(10)},
		{"StorageQuotaMb", c.GetStorageQuotaMb(), uint32(100)},
		{"RecentSyncDaysLimit", c.GetRecentSyncDaysLimit(), uint32(7)},
		{"SupportGroupHistory", c.GetSupportGroupHistory(), false},
		{"SupportCallLogHistory", c.GetSupportCallLogHistory(), false},
		// whatsmeow's default, kept: the first chunk comes inline.
		{"InlineInitialPayloadInE2EeMsg", c.GetInlineInitialPayloadInE2EeMsg(), true},
	} {
		if tt.got != tt.want {
			t.Errorf("DeviceProps %s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if props.RequireFullSync == nil || c.FullSyncDaysLimit == nil || c.StorageQuotaMb == nil {
		t.Error("limits not set explicitly in the payload")
	}
}

// historyBundle is a session with a real whatsmeow client on a linked
// device, fed as whatsmeow's socket handlers would feed it.
type historyBundle struct {
	engine *Whatsmeow
	cli    *whatsmeow.Client
	own    types.JID
	// histories counts the events.HistorySync the client dispatched.
	histories atomic.Int32
}

func setupHistorySession(t *testing.T, e *Whatsmeow, instance, jid string, p OpenParams) (*whatsmeowSession, *historyBundle) {
	t.Helper()
	dev := storeLinkedDevice(t, e, jid)
	p.Instance = instance
	s := newWhatsmeowSession(e, p)
	cli := e.newClient(dev, s)
	s.setClient(dev, cli)
	t.Cleanup(func() { s.Close() })
	b := &historyBundle{engine: e, cli: cli, own: *dev.ID}
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.HistorySync); ok {
			b.histories.Add(1)
		}
	})
	return s, b
}

// TestWhatsmeowSession_HistorySync: chunks delivered through whatsmeow's
// own message handling are scanned by the session, their push names, LID
// mappings and message secrets land in whatsmeow's store, and the chats go
// nowhere.
func TestWhatsmeowSession_HistorySync(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, store.SQLite)
	done := make(chan historySummary, 4)
	e.historyDownload = func(ctx context.Context, cli waClient, dev *wastore.Device, n *waE2E.HistorySyncNotification) (historySummary, error) {
		sum, err := scanHistorySync(ctx, cli, dev, n)
		if err != nil {
			t.Errorf("scanHistorySync: %v", err)
		}
		done <- sum
		return sum, err
	}
	_, b := setupHistorySession(t, e, "sales", testDeviceJID, OpenParams{})
	if !b.cli.ManualHistorySyncDownload {
		t.Fatal("client downloads history by itself")
	}

	chat := mustJID("15550001111@s.whatsapp.net")
	pn, lid := mustJID("15550002222@s.whatsapp.net"), mustJID("98765432109876@lid")
	secret := bytes.Repeat([]byte{7}, 32)
	bootstrap := &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		Conversations: []*waHistorySync.Conversation{{
			ID: proto.String(chat.String()),
			Messages: []*waHistorySync.HistorySyncMsg{{
				Message: &waWeb.WebMessageInfo{
					Key:           &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(false), ID: proto.String("MSG1")},
					Message:       &waE2E.Message{Conversation: proto.String("hello from last year")},
					MessageSecret: secret,
				},
			}},
		}},
		PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{{PnJID: proto.String(pn.String()), LidJID: proto.String(lid.String())}},
	}
	names := &waHistorySync.HistorySync{
		SyncType:  waHistorySync.HistorySync_PUSH_NAME.Enum(),
		Pushnames: []*waHistorySync.Pushname{{ID: proto.String(chat.String()), Pushname: proto.String("Alice")}},
	}
	ctx := context.Background()
	for i, n := range []*waE2E.HistorySyncNotification{
		inlineNotification(t, waE2E.HistorySyncType_INITIAL_BOOTSTRAP, 0, bootstrap),
		inlineNotification(t, waE2E.HistorySyncType_PUSH_NAME, 1, names),
	} {
		info, msg := historyMessage(b.own, fmt.Sprintf("HS%d", i), n)
		b.cli.DangerousInternals().HandleDecryptedMessage(ctx, info, msg, 0)
	}
	got := map[waHistorySync.HistorySync_HistorySyncType]historySummary{}
	for range 2 {
		sum := waitOrTimeout(t, done)
		got[sum.SyncType] = sum
	}
	if b, p := got[waHistorySync.HistorySync_INITIAL_BOOTSTRAP], got[waHistorySync.HistorySync_PUSH_NAME]; b.Conversations != 1 || b.Secrets != 1 || b.LIDMappings != 1 || p.PushNames != 1 {
		t.Fatalf("scanned chunks: %+v", got)
	}

	dev := b.cli.Store
	if c, err := dev.Contacts.GetContact(ctx, chat); err != nil || c.PushName != "Alice" {
		t.Errorf("push name of %s = %q (%v), want Alice", chat, c.PushName, err)
	}
	if l, err := dev.LIDs.GetLIDForPN(ctx, pn); err != nil || l != lid {
		t.Errorf("LID of %s = %s (%v), want %s", pn, l, err, lid)
	}
	if s, _, err := dev.MsgSecrets.GetMessageSecret(ctx, chat, chat, "MSG1"); err != nil || !bytes.Equal(s, secret) {
		t.Errorf("message secret = %x (%v)", s, err)
	}
	if n := b.histories.Load(); n != 0 {
		t.Errorf("%d events.HistorySync dispatched, want none", n)
	}
}

// historyCounter stands in for the download: it counts the chunks in
// flight and holds each until released.
type historyCounter struct {
	mu       sync.Mutex
	inflight int
	max      int
	total    int
	entered  chan string
	release  chan struct{}
}

func newHistoryCounter(n int) *historyCounter {
	return &historyCounter{entered: make(chan string, n), release: make(chan struct{})}
}

func (h *historyCounter) download(ctx context.Context, cli waClient, dev *wastore.Device, n *waE2E.HistorySyncNotification) (historySummary, error) {
	h.mu.Lock()
	h.inflight++
	h.total++
	h.max = max(h.max, h.inflight)
	h.mu.Unlock()
	h.entered <- n.GetOriginalMessageID()
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	h.mu.Lock()
	h.inflight--
	h.mu.Unlock()
	return historySummary{}, nil
}

func (h *historyCounter) counts() (inflight, peak, total int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inflight, h.max, h.total
}

// TestWhatsmeow_HistorySyncBound: many sessions of one engine receiving
// chunks at once never have more than HistorySyncConcurrency of them
// downloading, and every chunk is downloaded in the end.
func TestWhatsmeow_HistorySyncBound(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, store.SQLite)
	const sessions, chunks = 4, 2
	h := newHistoryCounter(sessions * chunks)
	e.historyDownload = h.download
	for i := range sessions {
		_, b := setupHistorySession(t, e, fmt.Sprintf("i%d", i), fmt.Sprintf("1555000%04d:1@s.whatsapp.net", i), OpenParams{})
		for c := range chunks {
			n := &waE2E.HistorySyncNotification{SyncType: waE2E.HistorySyncType_RECENT.Enum(), ChunkOrder: proto.Uint32(uint32(c)), OriginalMessageID: proto.String(fmt.Sprintf("i%d-%d", i, c))}
			b.cli.DangerousInternals().DispatchEvent(historyMessageEvent(b.own, fmt.Sprintf("HS%d", c), n))
		}
	}
	seen := map[string]bool{}
	for range HistorySyncConcurrency {
		seen[waitOrTimeout(t, h.entered)] = true
	}
	if inflight, _, _ := h.counts(); inflight != HistorySyncConcurrency {
		t.Fatalf("%d chunks in flight with all held, want %d", inflight, HistorySyncConcurrency)
	}
	for len(seen) < sessions*chunks {
		h.release <- struct{}{}
		seen[waitOrTimeout(t, h.entered)] = true
	}
	for range HistorySyncConcurrency {
		h.release <- struct{}{}
	}
	if _, peak, total := h.counts(); peak > HistorySyncConcurrency || total != sessions*chunks {
		t.Fatalf("peak %d chunks at once (bound %d), %d downloaded of %d", peak, HistorySyncConcurrency, total, sessions*chunks)
	}
}

// TestWhatsmeowSession_HistorySyncSkipped: a chunk still waiting for a
// slot when its session closes, or whose session lost its lease, is never
// downloaded.
func TestWhatsmeowSession_HistorySyncSkipped(t *testing.T) {
	t.Parallel()
	notif := &waE2E.HistorySyncNotification{SyncType: waE2E.HistorySyncType_RECENT.Enum()}

	t.Run("ClosedWhileWaiting", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true, synced: true})
		var downloads atomic.Int32
		b.engine.historyDownload = func(ctx context.Context, cli waClient, dev *wastore.Device, n *waE2E.HistorySyncNotification) (historySummary, error) {
			downloads.Add(1)
			return historySummary{}, nil
		}
		// Other sessions hold every slot.
		for range HistorySyncConcurrency {
			b.engine.historySem <- struct{}{}
		}
		s.handleEvent(historySyncJob{cli: b.cli, notif: notif})
		s.Close() // waits for the session's goroutines
		for range HistorySyncConcurrency {
			<-b.engine.historySem
		}
		if n := downloads.Load(); n != 0 {
			t.Fatalf("%d downloads after the session closed", n)
		}
	})

	t.Run("LeaseLost", func(t *testing.T) {
		t.Parallel()
		for _, owned := range []bool{true, false} {
			e, _ := newTestEngine(t, store.SQLite)
			ran := make(chan struct{}, 1)
			e.historyDownload = func(ctx context.Context, cli waClient, dev *wastore.Device, n *waE2E.HistorySyncNotification) (historySummary, error) {
				ran <- struct{}{}
				return historySummary{}, nil
			}
			checked := make(chan struct{}, 1)
			s := newWhatsmeowSession(e, OpenParams{Instance: "sales", Owned: func() bool {
				checked <- struct{}{}
				return owned
			}})
			cli := newFakeClient()
			s.setClient(storeLinkedDevice(t, e, testDeviceJID), cli)
			s.handleEvent(historySyncJob{cli: cli, dev: s.dev, notif: notif})
			waitOrTimeout(t, checked)
			if owned {
				waitOrTimeout(t, ran)
			}
			s.Close()
			if got := len(ran); got != 0 {
				t.Fatalf("owned=%v: %d more downloads", owned, got)
			}
		}
	})
}

// bigHistory is one chunk of about size bytes (uncompressed) of ordinary
// chat history: conversations of short text messages.
func bigHistory(size int) *waHistorySync.HistorySync {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("ok yes no see you tomorrow thanks the meeting is at ten call me later sent the file where are you on my way lunch price order delivered")
	text := func() string {
		var sb strings.Builder
		for sb.Len() < 120 {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteByte(' ')
		}
		return sb.String()
	}
	hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
	total := 0
	for c := 0; total < size; c++ {
		chat := fmt.Sprintf("1555%07d@s.whatsapp.net", c)
		conv := &waHistorySync.Conversation{ID: proto.String(chat)}
		for m := range 200 {
			t := text()
			conv.Messages = append(conv.Messages, &waHistorySync.HistorySyncMsg{
				Message: &waWeb.WebMessageInfo{
					Key:              &waCommon.MessageKey{RemoteJID: proto.String(chat), FromMe: proto.Bool(m%2 == 0), ID: proto.String(fmt.Sprintf("3EB0%012X", c*1000+m))},
					Message:          &waE2E.Message{Conversation: proto.String(t)},
					MessageTimestamp: proto.Uint64(uint64(1_700_000_000 + m)),
				},
				MsgOrderID: proto.Uint64(uint64(m)),
			})
			total += len(t) + 60
		}
		hs.Conversations = append(hs.Conversations, conv)
	}
	return hs
}
