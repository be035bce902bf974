package whatsapp

import (
	"bytes"
	"compress/zlib"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

// Synthetic chunks: the JIDs are made up, the shapes are those of a
// phone's history sync.
const (
	hsAlice  = "15550001111@s.whatsapp.net"
	hsBob    = "15550002222@s.whatsapp.net"
	hsCarol  = "15550003333@s.whatsapp.net"
	hsGroup  = "120363000000000001@g.us"
	hsLIDDan = "98765432100001@lid"
)

func hsSecret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// hsMsg is a HistorySyncMsg; secret nil means none, participant is the
// WebMessageInfo's (outside the key).
func hsMsg(chat, id string, fromMe bool, keyParticipant, participant string, secret []byte) *waHistorySync.HistorySyncMsg {
	key := &waCommon.MessageKey{RemoteJID: proto.String(chat), FromMe: proto.Bool(fromMe)}
	if id != "" {
		key.ID = proto.String(id)
	}
	if keyParticipant != "" {
		key.Participant = proto.String(keyParticipant)
	}
	m := &waWeb.WebMessageInfo{
		Key:              key,
		Message:          &waE2E.Message{Conversation: proto.String("text of " + id)},
		MessageTimestamp: proto.Uint64(1_700_000_000),
		MessageSecret:    secret,
	}
	if participant != "" {
		m.Participant = proto.String(participant)
	}
	return &waHistorySync.HistorySyncMsg{Message: m, MsgOrderID: proto.Uint64(1)}
}

// hsConvs covers what storeHistoricalMessageSecrets tells apart.
func hsConvs() []*waHistorySync.Conversation {
	return []*waHistorySync.Conversation{
		{ // 1:1, token with a sender timestamp
			ID: proto.String(hsAlice), TcToken: []byte("token-alice"),
			TcTokenTimestamp: proto.Uint64(1_600_000_000), TcTokenSenderTimestamp: proto.Uint64(1_650_000_000),
			Messages: []*waHistorySync.HistorySyncMsg{
				hsMsg(hsAlice, "A1", false, "", "", hsSecret(1)),
				hsMsg(hsAlice, "A2", true, "", "", hsSecret(2)),
				hsMsg(hsAlice, "A3", false, "", "", nil),            // no secret
				hsMsg(hsAlice, "A4", false, "", "", []byte{}),       // empty secret, present
				hsMsg(hsAlice, "", false, "", "", hsSecret(5)),      // no ID
				hsMsg(hsAlice, "A1", false, "", "", hsSecret(6)),    // same key again: first kept
				hsMsg(hsAlice, "A6", false, hsBob, "", hsSecret(7)), // participant ignored in 1:1
				{MsgOrderID: proto.Uint64(9)},                       // no WebMessageInfo
			},
		},
		{ // 1:1, token without a sender timestamp
			ID: proto.String(hsBob), TcToken: []byte("token-bob"), TcTokenTimestamp: proto.Uint64(1_610_000_000),
			Messages: []*waHistorySync.HistorySyncMsg{hsMsg(hsBob, "B1", false, "", "", hsSecret(8))},
		},
		{ // 1:1, empty token, no timestamps
			ID: proto.String(hsCarol), TcToken: []byte{},
		},
		{ // group: senders from the key, the message, own, none
			ID: proto.String(hsGroup), TcToken: []byte("group-token"), // not a user: not stored
			Messages: []*waHistorySync.HistorySyncMsg{
				hsMsg(hsGroup, "G1", false, hsBob, "", hsSecret(11)),
				hsMsg(hsGroup, "G2", false, "", hsCarol, hsSecret(12)),
				hsMsg(hsGroup, "G3", true, "", "", hsSecret(13)),
				hsMsg(hsGroup, "G4", false, "", "", hsSecret(14)),                             // no sender
				hsMsg(hsGroup, "G5", false, hsBob, hsCarol, hsSecret(15)),                     // key wins
				hsMsg(hsGroup, "G6", false, "15550004444:3@s.whatsapp.net", "", hsSecret(16)), // device JID
				hsMsg(hsGroup, "G7", false, "1.2.3@s.whatsapp.net", "", hsSecret(17)),         // bad participant
				hsMsg(hsGroup, "G8", false, hsLIDDan, "", hsSecret(18)),
			},
		},
		{ // LID chat: not the phone-number server
			ID: proto.String(hsLIDDan), TcToken: []byte("token-dan"),
			Messages: []*waHistorySync.HistorySyncMsg{
				hsMsg(hsLIDDan, "D1", false, "", "", hsSecret(21)),
				hsMsg(hsLIDDan, "D2", false, hsLIDDan, "", hsSecret(22)),
			},
		},
		{ // unparsable and empty chat IDs
			ID:       proto.String("x.y.z@s.whatsapp.net"),
			TcToken:  []byte("token-odd"),
			Messages: []*waHistorySync.HistorySyncMsg{hsMsg("x", "X1", false, "", "", hsSecret(31))},
		},
		{ID: proto.String(""), Messages: []*waHistorySync.HistorySyncMsg{hsMsg("", "E1", true, "", "", hsSecret(32))}},
		{ID: proto.String("status@broadcast"), Messages: []*waHistorySync.HistorySyncMsg{hsMsg("status@broadcast", "S1", false, hsAlice, "", hsSecret(33))}},
	}
}

// hsMappings covers storeHistoricalPNLIDMappings.
func hsMappings() []*waHistorySync.PhoneNumberToLIDMapping {
	m := func(pn, lid string) *waHistorySync.PhoneNumberToLIDMapping {
		return &waHistorySync.PhoneNumberToLIDMapping{PnJID: proto.String(pn), LidJID: proto.String(lid)}
	}
	return []*waHistorySync.PhoneNumberToLIDMapping{
		m(hsAlice, "11111111111111@lid"),
		m("15550005555@c.us", "55555555555555@lid"), // legacy server
		m("1.2.3@s.whatsapp.net", "22222222222222@lid"),
		m(hsCarol, "1.2.3@lid"),
		m(hsBob, hsGroup),              // not a LID: the store drops it
		m(hsBob, "33333333333333@lid"), // later entries for one number win
		m(hsBob, "44444444444444@lid"),
		{PnJID: proto.String("15550006666@s.whatsapp.net")}, // no LID
	}
}

// withUnknown adds fields of numbers no schema uses, of every wire type.
func withUnknown(m proto.Message) {
	var b []byte
	b = protowire.AppendTag(b, 9001, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 9002, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("unknown"))
	b = protowire.AppendTag(b, 9003, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 1)
	b = protowire.AppendTag(b, 9004, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 2)
	b = protowire.AppendTag(b, 9005, protowire.StartGroupType)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 3)
	b = protowire.AppendTag(b, 9005, protowire.EndGroupType)
	m.ProtoReflect().SetUnknown(append(m.ProtoReflect().GetUnknown(), b...))
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wire builds a message by hand, for what proto.Marshal never writes:
// fields out of order, repeated, with another wire type.
type wire []byte

func (w wire) varint(n protowire.Number, v uint64) wire {
	return protowire.AppendVarint(protowire.AppendTag(w, n, protowire.VarintType), v)
}

func (w wire) bytes(n protowire.Number, v []byte) wire {
	return protowire.AppendBytes(protowire.AppendTag(w, n, protowire.BytesType), v)
}

// hsNonCanonical is a chunk in an order no encoder uses, which
// proto.Unmarshal still reads: syncType last and of no known value, the chat ID
// after the messages, a message and its key twice (merged), scalars twice
// (last wins), a known number with another wire type (unknown).
func hsNonCanonical() []byte {
	key1 := wire(nil).bytes(keyID.num, []byte("N1")).varint(keyFromMe.num, 1)
	key2 := wire(nil).varint(keyFromMe.num, 0).bytes(keyParticipant.num, []byte(hsBob))
	web1 := wire(nil).bytes(webKey.num, key1).bytes(webSecret.num, hsSecret(41))
	web2 := wire(nil).bytes(webKey.num, key2).bytes(webSecret.num, hsSecret(42))
	msg := wire(nil).bytes(hsmMessage.num, web1).bytes(hsmMessage.num, web2)
	// Only in the second occurrence's key: merged, the message has one.
	web3 := wire(nil).bytes(webSecret.num, hsSecret(43))
	web4 := wire(nil).bytes(webKey.num, wire(nil).bytes(keyID.num, []byte("N2")).varint(keyFromMe.num, 1))
	msg2 := wire(nil).bytes(hsmMessage.num, web3).bytes(hsmMessage.num, web4)
	conv := wire(nil).bytes(convMessages.num, msg).bytes(convMessages.num, msg2).
		varint(convID.num, 5). // wrong wire type: an unknown field
		bytes(convToken.num, []byte("first")).bytes(convToken.num, []byte("second")).
		varint(convTokenSender.num, 1_650_000_000).varint(convTokenTS.num, 1).
		bytes(convID.num, []byte("not-it@s.whatsapp.net")).bytes(convID.num, []byte(hsGroup))
	conv2 := wire(nil).bytes(convToken.num, []byte("tok")).bytes(convID.num, []byte(hsAlice)).varint(convTokenTS.num, 1<<40)
	mapping := wire(nil).bytes(mapLID.num, []byte("66666666666666@lid")).bytes(mapPN.num, []byte(hsCarol))
	global := wire(nil).varint(globalLIDMigration.num, 1_700_000_001)
	global2 := wire(nil).bytes(9001, []byte("wallpaper"))
	return wire(nil).
		varint(hsChunkOrder.num, 3).
		bytes(hsConversations.num, conv).
		bytes(hsLIDMappings.num, mapping).
		bytes(hsConversations.num, conv2).
		bytes(hsGlobal.num, global).bytes(hsGlobal.num, global2).
		varint(hsSyncType.num, uint64(waHistorySync.HistorySync_RECENT)).
		varint(hsSyncType.num, 999). // kept: whatsmeow's enums are open
		varint(hsProgress.num, 70)
}

// historyCase is a chunk, inflated (raw) or as the notification carries it
// (payload), and the device's LID migration timestamp before it.
type historyCase struct {
	name         string
	raw          []byte
	payload      []byte
	lidMigration int64
	// fails: both paths refuse the chunk.
	fails bool
	// divergent: whatsmeow refuses the chunk for a fault inside what the
	// scanner skips; the scanner stores it (see whatsmeow_history_scan.go).
	divergent bool
}

func historyCases(t testing.TB) []historyCase {
	pushNames := &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_PUSH_NAME.Enum(), ChunkOrder: proto.Uint32(1),
		Pushnames: []*waHistorySync.Pushname{
			{ID: proto.String(hsAlice), Pushname: proto.String("Alice")},
			{ID: proto.String(hsBob), Pushname: proto.String("-")},
			{ID: proto.String(hsLIDDan), Pushname: proto.String("Dan")},
			{ID: proto.String("1.2.3@s.whatsapp.net"), Pushname: proto.String("Bad")},
			{Pushname: proto.String("No ID")},
			{ID: proto.String(hsCarol)},
			{ID: proto.String(hsAlice), Pushname: proto.String("Alice Again")},
		},
		// Not read in a PUSH_NAME chunk.
		Conversations:            hsConvs(),
		PhoneNumberToLidMappings: hsMappings(),
		GlobalSettings:           &waHistorySync.GlobalSettings{ChatDbLidMigrationTimestamp: proto.Int64(1_700_000_000)},
	}
	bootstrap := &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(), ChunkOrder: proto.Uint32(0), Progress: proto.Uint32(10),
		Conversations:            hsConvs(),
		Pushnames:                []*waHistorySync.Pushname{{ID: proto.String(hsAlice), Pushname: proto.String("Not read")}},
		PhoneNumberToLidMappings: hsMappings(),
		GlobalSettings:           &waHistorySync.GlobalSettings{ChatDbLidMigrationTimestamp: proto.Int64(1_700_000_000)},
	}
	recent := &waHistorySync.HistorySync{
		SyncType:      waHistorySync.HistorySync_RECENT.Enum(),
		Conversations: hsConvs(),
		GlobalSettings: &waHistorySync.GlobalSettings{
			ChatDbLidMigrationTimestamp: proto.Int64(0),
			AutoDownloadWiFi:            &waHistorySync.AutoDownloadSettings{DownloadImages: proto.Bool(true)},
		},
		PhoneNumberToLidMappings: hsMappings()[:2],
	}
	withUnknown(recent)
	withUnknown(recent.GlobalSettings)
	withUnknown(recent.PhoneNumberToLidMappings[0])
	for _, c := range recent.Conversations {
		withUnknown(c)
		for _, m := range c.Messages {
			withUnknown(m)
			if m.Message != nil {
				withUnknown(m.Message)
				withUnknown(m.Message.Key)
			}
		}
	}
	full := &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_FULL.Enum(), Conversations: hsConvs(),
		GlobalSettings: &waHistorySync.GlobalSettings{ChatDbLidMigrationTimestamp: proto.Int64(1_700_000_000)},
	}
	noKey := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_RECENT.Enum(), Conversations: hsConvs()}
	noKey.Conversations[0].Messages[0].Message.Key = nil
	noID := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_RECENT.Enum(), Conversations: hsConvs()}
	noID.Conversations[3].ID = nil
	marshalPartial := func(m proto.Message) []byte {
		b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	boot := mustMarshal(t, bootstrap)
	// Malformed wire inside GlobalSettings.lightThemeWallpaper, a message
	// the scanner skips whole.
	corrupt := wire(boot).bytes(hsGlobal.num, wire(nil).bytes(1, []byte{0x0a, 0xff}))
	return []historyCase{
		{name: "PushNames", raw: mustMarshal(t, pushNames)},
		{name: "InitialBootstrap", raw: boot},
		{name: "RecentWithUnknownFields", raw: mustMarshal(t, recent)},
		{name: "FullKeepsLIDMigration", raw: mustMarshal(t, full), lidMigration: 42},
		{name: "NonCanonicalWire", raw: hsNonCanonical()},
		{name: "Empty", raw: mustMarshal(t, &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_RECENT.Enum()})},
		{name: "NoSyncType", raw: marshalPartial(&waHistorySync.HistorySync{Conversations: hsConvs()}), fails: true},
		{name: "UnknownSyncType", raw: wire(nil).varint(hsSyncType.num, 999).bytes(hsLIDMappings.num, mustMarshal(t, hsMappings()[0]))},
		{name: "CorruptSkippedContent", raw: corrupt, divergent: true},
		{name: "ConversationWithoutID", raw: marshalPartial(noID), fails: true},
		{name: "MessageWithoutKey", raw: marshalPartial(noKey), fails: true},
		{name: "Truncated", raw: boot[:len(boot)-3], fails: true},
		{name: "NotZlib", payload: boot, fails: true},
		{name: "ZlibTruncated", payload: historyPayloadRaw(t, boot)[:100], fails: true},
	}
}

// historyPayloadRaw compresses an inflated chunk as a phone does.
func historyPayloadRaw(t testing.TB, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// historyTables are the whatsmeow tables a history chunk can write to.
var historyTables = []string{"whatsmeow_contacts", "whatsmeow_message_secrets", "whatsmeow_privacy_tokens", "whatsmeow_lid_map"}

// dumpHistoryStore is every row of historyTables and every device's LID
// migration timestamp, as text.
func dumpHistoryStore(t *testing.T, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	query := func(name, q string) {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := ""
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = fmt.Sprintf("%q", b)
				}
				row += fmt.Sprintf("%s=%v ", cols[i], v)
			}
			out[name] = append(out[name], row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out[name])
	}
	for _, tbl := range historyTables {
		query(tbl, "SELECT * FROM "+tbl)
	}
	query("whatsmeow_device", "SELECT jid, lid_migration_ts FROM whatsmeow_device")
	return out
}

// readHistoryStore reads back through whatsmeow's store APIs what a chunk
// of historyCases may have written: contacts, the secret of every message
// ID under every chat and sender the cases use, the privacy token of every
// chat, the LID of every number, the LID migration timestamp.
func readHistoryStore(t *testing.T, dev *wastore.Device, secrets [][3]string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	contacts, err := dev.Contacts.GetAllContacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for jid, c := range contacts {
		out = append(out, fmt.Sprintf("contact %s %q", jid, c.PushName))
	}
	jids := []string{hsAlice, hsBob, hsCarol, hsGroup, hsLIDDan, "15550004444@s.whatsapp.net", "15550005555@s.whatsapp.net",
		"15550006666@s.whatsapp.net", "x.y.z@s.whatsapp.net", "status@broadcast", dev.GetJID().ToNonAD().String()}
	for _, c := range jids {
		chat := mustJIDLoose(c)
		if tok, err := dev.PrivacyTokens.GetPrivacyToken(ctx, chat); err != nil {
			t.Fatal(err)
		} else if tok != nil {
			out = append(out, fmt.Sprintf("token %s %q %d", chat, tok.Token, tok.Timestamp.Unix()))
		}
		if lid, err := dev.LIDs.GetLIDForPN(ctx, chat); err == nil && !lid.IsEmpty() {
			out = append(out, fmt.Sprintf("lid %s %s", chat, lid))
		}
	}
	for _, k := range secrets {
		chat, s, id := mustJIDLoose(k[0]), k[1], k[2]
		secret, sender, err := dev.MsgSecrets.GetMessageSecret(ctx, chat, mustJIDLoose(s), id)
		if err != nil {
			// A sender JID whatsmeow stored but cannot read back.
			out = append(out, fmt.Sprintf("secret %s %s %s: %v", chat, s, id, err))
		} else if secret != nil {
			out = append(out, fmt.Sprintf("secret %s %s %s %x %s", chat, s, id, secret, sender))
		}
	}
	out = append(out, fmt.Sprintf("lidMigration %d", dev.LIDMigrationTimestamp))
	slices.Sort(out)
	return out
}

// storedSecrets is the chat, sender and message id of every stored message
// secret.
func storedSecrets(t *testing.T, db *sql.DB) [][3]string {
	t.Helper()
	rows, err := db.Query("SELECT chat_jid, sender_jid, message_id FROM whatsmeow_message_secrets")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][3]string
	for rows.Next() {
		var k [3]string
		if err := rows.Scan(&k[0], &k[1], &k[2]); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJIDLoose(s string) types.JID {
	j, _ := types.ParseJID(s)
	return j
}

// TestScanHistorySync_MatchesWhatsmeow: for every case, whatsmeow's
// DownloadHistorySync (with synchronousStorage) on one fresh store and
// scanHistorySync on another write the same rows, read back the same
// through whatsmeow's store APIs, and fail on the same chunks.
func TestScanHistorySync_MatchesWhatsmeow(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		for _, c := range historyCases(t) {
			t.Run(fmt.Sprintf("%s/%s", d, c.name), func(t *testing.T) {
				t.Parallel()
				notif := &waE2E.HistorySyncNotification{SyncType: waE2E.HistorySyncType_RECENT.Enum(), InitialHistBootstrapInlinePayload: c.payload}
				if c.payload == nil {
					notif.InitialHistBootstrapInlinePayload = historyPayloadRaw(t, c.raw)
				}
				ctx := context.Background()
				side := func() (*wastore.Device, *whatsmeow.Client, *store.Store) {
					e, st := newTestEngine(t, d)
					dev := storeLinkedDevice(t, e, testDeviceJID)
					if c.lidMigration != 0 {
						dev.LIDMigrationTimestamp = c.lidMigration
						if err := dev.Save(ctx); err != nil {
							t.Fatal(err)
						}
					}
					return dev, whatsmeow.NewClient(dev, nil), st
				}
				wantDev, wantCli, wantSt := side()
				gotDev, gotCli, gotSt := side()

				_, wantErr := wantCli.DownloadHistorySync(ctx, notif, true)
				sum, gotErr := scanHistorySync(ctx, gotCli, gotDev, notif)
				if c.divergent {
					if wantErr == nil || gotErr != nil || sum.Secrets == 0 {
						t.Fatalf("whatsmeow: %v; scan: %v, %+v; want whatsmeow to refuse, the scan to store", wantErr, gotErr, sum)
					}
					return
				}
				if (wantErr != nil) != c.fails || (gotErr != nil) != c.fails {
					t.Fatalf("whatsmeow: %v; scan: %v; want failure %v", wantErr, gotErr, c.fails)
				}
				want, got := dumpHistoryStore(t, wantSt.DB), dumpHistoryStore(t, gotSt.DB)
				if !reflect.DeepEqual(want, got) {
					for _, tbl := range append(historyTables, "whatsmeow_device") {
						if !slices.Equal(want[tbl], got[tbl]) {
							t.Errorf("%s differs:\nwhatsmeow: %q\nscan:      %q", tbl, want[tbl], got[tbl])
						}
					}
				}
				// Read back the secrets either side stored (asking for every
				// chat × sender × id was thousands of queries a case, each a
				// statement prepared afresh by SQLite: minutes under -race).
				secrets := append(storedSecrets(t, wantSt.DB), storedSecrets(t, gotSt.DB)...)
				if w, g := readHistoryStore(t, wantDev, secrets), readHistoryStore(t, gotDev, secrets); !slices.Equal(w, g) {
					t.Errorf("store APIs read back differently:\nwhatsmeow: %q\nscan:      %q", w, g)
				}
				if c.fails {
					return
				}
				rows := 0
				for _, tbl := range historyTables {
					rows += len(got[tbl])
				}
				if c.name != "Empty" && c.name != "FullKeepsLIDMigration" && rows == 0 {
					t.Errorf("case wrote nothing: %+v", sum)
				}
			})
		}
	}
}

// TestScanHistorySync_Download: a chunk that is not inline is downloaded
// through the client, as whatsmeow does.
func TestScanHistorySync_Download(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, store.SQLite)
	dev := storeLinkedDevice(t, e, testDeviceJID)
	hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_RECENT.Enum(), ChunkOrder: proto.Uint32(4), Progress: proto.Uint32(90),
		Conversations: hsConvs(), PhoneNumberToLidMappings: hsMappings()}
	cli := newFakeClient()
	cli.blobs = map[string][]byte{"/v/t62.hist": historyPayload(t, hs)}
	notif := &waE2E.HistorySyncNotification{SyncType: waE2E.HistorySyncType_RECENT.Enum(), DirectPath: proto.String("/v/t62.hist")}
	sum, err := scanHistorySync(context.Background(), cli, dev, notif)
	if err != nil {
		t.Fatal(err)
	}
	want := historySummary{SyncType: waHistorySync.HistorySync_RECENT, ChunkOrder: 4, Progress: 90, Inflated: proto.Size(hs),
		Conversations: 8, Messages: 22, LIDMappings: 8, Secrets: 16, PrivacyTokens: 4}
	if sum != want {
		t.Errorf("summary = %+v\nwant      %+v", sum, want)
	}
	notif.DirectPath = proto.String("/v/gone")
	if _, err := scanHistorySync(context.Background(), cli, dev, notif); !errors.Is(err, whatsmeow.ErrNoURLPresent) {
		t.Errorf("missing blob: %v", err)
	}
}

// historyExpect is what whatsmeow's doStorage would hand the store for a
// parsed chunk (message.go, user.go), without a store: the reference the
// fuzz test holds the scanner to on every chunk proto.Unmarshal accepts.
func historyExpect(hs *waHistorySync.HistorySync, own types.JID) *historyScan {
	sc := &historyScan{summary: historySummary{
		SyncType: hs.GetSyncType(), ChunkOrder: hs.GetChunkOrder(), Progress: hs.GetProgress(),
		Conversations: len(hs.GetConversations()), PushNames: len(hs.GetPushnames()), LIDMappings: len(hs.GetPhoneNumberToLidMappings()),
	}}
	own = own.ToNonAD()
	if hs.GetSyncType() == waHistorySync.HistorySync_PUSH_NAME {
		for _, p := range hs.GetPushnames() {
			if p.GetPushname() == "-" {
				continue
			}
			if jid, err := types.ParseJID(p.GetID()); err == nil {
				sc.pushNames = append(sc.pushNames, historyPushName{jid, p.GetPushname()})
			}
		}
	}
	for _, conv := range hs.GetConversations() {
		if hs.GetSyncType() != waHistorySync.HistorySync_PUSH_NAME {
			sc.summary.Messages += len(conv.GetMessages())
		}
		chat, _ := types.ParseJID(conv.GetID())
		if hs.GetSyncType() == waHistorySync.HistorySync_PUSH_NAME || own.IsEmpty() || chat.IsEmpty() {
			continue
		}
		if chat.Server == types.DefaultUserServer && conv.GetTcToken() != nil {
			ts := conv.GetTcTokenSenderTimestamp()
			if ts == 0 {
				ts = conv.GetTcTokenTimestamp()
			}
			sc.tokens = append(sc.tokens, wastore.PrivacyToken{User: chat, Token: conv.GetTcToken(), Timestamp: time.Unix(int64(ts), 0)})
		}
		for _, msg := range conv.GetMessages() {
			secret := msg.GetMessage().GetMessageSecret()
			if secret == nil {
				continue
			}
			var sender types.JID
			key := msg.GetMessage().GetKey()
			if key.GetFromMe() {
				sender = own
			} else if chat.Server == types.DefaultUserServer {
				sender = chat
			} else if key.GetParticipant() != "" {
				sender, _ = types.ParseJID(key.GetParticipant())
			} else if msg.GetMessage().GetParticipant() != "" {
				sender, _ = types.ParseJID(msg.GetMessage().GetParticipant())
			}
			if sender.IsEmpty() || key.GetID() == "" {
				continue
			}
			sc.secrets = append(sc.secrets, wastore.MessageSecretInsert{Chat: chat, Sender: sender, ID: key.GetID(), Secret: secret})
		}
	}
	for _, m := range hs.GetPhoneNumberToLidMappings() {
		pn, err := types.ParseJID(m.GetPnJID())
		if err != nil {
			continue
		}
		if pn.Server == types.LegacyUserServer {
			pn.Server = types.DefaultUserServer
		}
		lid, err := types.ParseJID(m.GetLidJID())
		if err != nil {
			continue
		}
		sc.lids = append(sc.lids, wastore.LIDMapping{LID: lid, PN: pn})
	}
	if hs.GlobalSettings != nil {
		sc.global, sc.lidMigration = true, hs.GlobalSettings.GetChatDbLidMigrationTimestamp()
	}
	sc.summary.Secrets, sc.summary.PrivacyTokens = len(sc.secrets), len(sc.tokens)
	return sc
}

// scanAllocBound is the most a scan of n inflated bytes may allocate: a
// constant plus a fixed multiple of the input (the records it keeps),
// never a parse of the whole chunk.
func scanAllocBound(n int) uint64 { return 64<<10 + 48*uint64(n) }

// FuzzScanHistorySync: on any bytes, as an inflated chunk or as a
// compressed payload, the scan never panics, allocates within
// scanAllocBound, and returns a summary or an error; on every chunk
// proto.Unmarshal accepts, it accepts it too and keeps exactly what
// whatsmeow would store. The seeds are whole chunks, so give minimizing
// little time:
//
//	go test -run X -fuzz FuzzScanHistorySync -fuzztime 60s -fuzzminimizetime 2s ./internal/whatsapp/
func FuzzScanHistorySync(f *testing.F) {
	for _, c := range historyCases(f) {
		if c.raw != nil {
			f.Add(c.raw)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(historyPayloadRaw(f, mustMarshal(f, &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_RECENT.Enum(), Conversations: hsConvs()[:2]})))
	own := mustJID(testDeviceJID)
	var ms runtime.MemStats
	allocated := func(fn func()) uint64 {
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		fn()
		runtime.ReadMemStats(&ms)
		return ms.TotalAlloc - before
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var sc *historyScan
		var err error
		if n := allocated(func() { sc, err = scanHistoryChunk(data, own) }); n > scanAllocBound(len(data)) {
			t.Fatalf("scan of %d bytes allocated %d (bound %d)", len(data), n, scanAllocBound(len(data)))
		}
		if err == nil && sc.summary.Inflated != len(data) {
			t.Fatalf("summary %+v for %d bytes", sc.summary, len(data))
		}
		var hs waHistorySync.HistorySync
		if perr := proto.Unmarshal(data, &hs); perr == nil {
			if err != nil {
				t.Fatalf("proto.Unmarshal accepts the chunk, the scan refuses it: %v", err)
			}
			want := historyExpect(&hs, own)
			want.summary.Inflated = len(data)
			if !reflect.DeepEqual(sc, want) {
				t.Fatalf("scan kept\n%+v\nwhatsmeow would store\n%+v", sc, want)
			}
		}

		// The same bytes as a compressed payload.
		var raw []byte
		if n := allocated(func() { raw, err = inflateHistory(data) }); err == nil && n > 256<<10+8*uint64(len(raw)+len(data)) {
			t.Fatalf("inflating %d bytes to %d allocated %d", len(data), len(raw), n)
		}
		if err == nil {
			if n := allocated(func() { _, _ = scanHistoryChunk(raw, own) }); n > scanAllocBound(len(raw)) {
				t.Fatalf("scan of %d inflated bytes allocated %d", len(raw), n)
			}
		}
	})
}
