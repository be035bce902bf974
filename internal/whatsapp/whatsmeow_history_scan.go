package whatsapp

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// History sync by scanning.
//
// whatsmeow's DownloadHistorySync (message.go) inflates a chunk and
// proto-unmarshals all of it, every message of every conversation with its
// content, only for its doStorage to read a handful of fields: a 31 MB
// chunk becomes about 350 MB of Go objects. scanHistorySync gets and
// inflates the same bytes, then walks the protobuf wire format reading
// only those fields, and makes the same store writes, in the same order and
// shapes, through the device store's exported APIs:
//
//   - handleHistoricalPushNames (user.go), PUSH_NAME chunks: every
//     Pushname but "-" goes to Contacts.PutPushName, one call per name.
//   - storeHistoricalMessageSecrets, other chunks with conversations:
//     one MsgSecrets.PutMessageSecrets of every message carrying a
//     WebMessageInfo.messageSecret (sender: the own JID when fromMe, the
//     chat in a 1:1 chat, else the key's participant, else the message's),
//     then one PrivacyTokens.PutPrivacyTokens of the tcToken of every 1:1
//     conversation (timestamp: tcTokenSenderTimestamp, else
//     tcTokenTimestamp). Nothing when the device has no JID.
//   - storeHistoricalPNLIDMappings: one LIDs.PutManyLIDMappings of the
//     chunk's phoneNumberToLidMappings (legacy c.us numbers as
//     s.whatsapp.net, unparsable entries left out).
//   - storeGlobalSettings: GlobalSettings.chatDbLidMigrationTimestamp
//     becomes the device's LIDMigrationTimestamp (saved) if it has none.
//
// Message content (WebMessageInfo.message), the bulk of a chunk, and every
// other field are skipped without being decoded. The scanner rejects what
// proto.Unmarshal rejects in the messages it reads (malformed wire, a
// missing required syncType, Conversation.ID or WebMessageInfo.key), and
// then writes nothing, as whatsmeow does; it does not look inside the
// fields it skips, so a chunk corrupt only there, which whatsmeow would
// refuse whole, has its side effects stored.
//
// Field numbers and kinds come from the generated descriptors, checked at
// init: a whatsmeow update that renames, retypes or drops one of these
// fields panics here rather than scanning the wrong field.

// historySummary is what a scanned chunk held, for the log.
type historySummary struct {
	SyncType      waHistorySync.HistorySync_HistorySyncType
	ChunkOrder    uint32
	Progress      uint32
	Inflated      int
	Conversations int
	Messages      int
	PushNames     int
	LIDMappings   int
	// Secrets and PrivacyTokens count what was handed to the store.
	Secrets       int
	PrivacyTokens int
	// StoreErr joins the writes that failed. As in whatsmeow, a failed
	// write does not stop the others, nor does it fail the chunk.
	StoreErr error
}

// wireField is one field of a message on the wire: a varint's value or a
// length-delimited field's bytes (aliasing the chunk).
type wireField struct {
	num    protowire.Number
	typ    protowire.Type
	varint uint64
	bytes  []byte
}

// scanField is a field the scanner reads: its number and the wire type
// its kind is encoded with. A field with that number but another wire type
// is, as for proto.Unmarshal, an unknown field.
type scanField struct {
	num protowire.Number
	typ protowire.Type
}

func (f wireField) is(s scanField) bool { return f.num == s.num && f.typ == s.typ }

// protoField looks a field up in m's descriptor and checks it has the kind
// and cardinality the scanner decodes it as.
func protoField(m protoreflect.ProtoMessage, name string, kind protoreflect.Kind, list bool) scanField {
	d := m.ProtoReflect().Descriptor()
	fd := d.Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		panic(fmt.Sprintf("whatsapp: history scan: %s has no field %s", d.FullName(), name))
	}
	if fd.Kind() != kind || fd.IsList() != list {
		panic(fmt.Sprintf("whatsapp: history scan: %s is %v (list %v), scanned as %v (list %v)", fd.FullName(), fd.Kind(), fd.IsList(), kind, list))
	}
	typ := protowire.VarintType
	switch kind {
	case protoreflect.MessageKind, protoreflect.StringKind, protoreflect.BytesKind:
		typ = protowire.BytesType
	case protoreflect.EnumKind, protoreflect.BoolKind, protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Int64Kind:
	default:
		panic(fmt.Sprintf("whatsapp: history scan: %s: kind %v not scanned", fd.FullName(), kind))
	}
	return scanField{num: fd.Number(), typ: typ}
}

const (
	kMessage = protoreflect.MessageKind
	kString  = protoreflect.StringKind
	kBytes   = protoreflect.BytesKind
	kEnum    = protoreflect.EnumKind
	kBool    = protoreflect.BoolKind
	kUint32  = protoreflect.Uint32Kind
	kUint64  = protoreflect.Uint64Kind
	kInt64   = protoreflect.Int64Kind
)

var (
	hsSyncType      = protoField(&waHistorySync.HistorySync{}, "syncType", kEnum, false)
	hsConversations = protoField(&waHistorySync.HistorySync{}, "conversations", kMessage, true)
	hsChunkOrder    = protoField(&waHistorySync.HistorySync{}, "chunkOrder", kUint32, false)
	hsProgress      = protoField(&waHistorySync.HistorySync{}, "progress", kUint32, false)
	hsPushnames     = protoField(&waHistorySync.HistorySync{}, "pushnames", kMessage, true)
	hsGlobal        = protoField(&waHistorySync.HistorySync{}, "globalSettings", kMessage, false)
	hsLIDMappings   = protoField(&waHistorySync.HistorySync{}, "phoneNumberToLidMappings", kMessage, true)

	convID          = protoField(&waHistorySync.Conversation{}, "ID", kString, false)
	convMessages    = protoField(&waHistorySync.Conversation{}, "messages", kMessage, true)
	convToken       = protoField(&waHistorySync.Conversation{}, "tcToken", kBytes, false)
	convTokenTS     = protoField(&waHistorySync.Conversation{}, "tcTokenTimestamp", kUint64, false)
	convTokenSender = protoField(&waHistorySync.Conversation{}, "tcTokenSenderTimestamp", kUint64, false)

	hsmMessage = protoField(&waHistorySync.HistorySyncMsg{}, "message", kMessage, false)

	webKey         = protoField(&waWeb.WebMessageInfo{}, "key", kMessage, false)
	webParticipant = protoField(&waWeb.WebMessageInfo{}, "participant", kString, false)
	webSecret      = protoField(&waWeb.WebMessageInfo{}, "messageSecret", kBytes, false)

	keyFromMe      = protoField(&waCommon.MessageKey{}, "fromMe", kBool, false)
	keyID          = protoField(&waCommon.MessageKey{}, "ID", kString, false)
	keyParticipant = protoField(&waCommon.MessageKey{}, "participant", kString, false)

	pushID   = protoField(&waHistorySync.Pushname{}, "ID", kString, false)
	pushName = protoField(&waHistorySync.Pushname{}, "pushname", kString, false)

	mapPN  = protoField(&waHistorySync.PhoneNumberToLIDMapping{}, "pnJID", kString, false)
	mapLID = protoField(&waHistorySync.PhoneNumberToLIDMapping{}, "lidJID", kString, false)

	globalLIDMigration = protoField(&waHistorySync.GlobalSettings{}, "chatDbLidMigrationTimestamp", kInt64, false)
)

// eachField calls fn with each field of the message encoded in b, in wire
// order. Groups and fixed-size fields are consumed unread.
func eachField(b []byte, fn func(f wireField) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := wireField{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.varint, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// historyPushName is a push name to store.
type historyPushName struct {
	user types.JID
	name string
}

// historyScan is what a chunk asks to be stored, collected before any of
// it is, so a chunk that fails to scan stores nothing.
type historyScan struct {
	summary   historySummary
	pushNames []historyPushName
	secrets   []wastore.MessageSecretInsert
	tokens    []wastore.PrivacyToken
	lids      []wastore.LIDMapping
	// global is set when the chunk has GlobalSettings; lidMigration is its
	// chatDbLidMigrationTimestamp.
	global       bool
	lidMigration int64
}

var (
	errNoSyncType = errors.New("required field syncType not set")
	errNoChatID   = errors.New("required field Conversation.ID not set")
	errNoKey      = errors.New("required field WebMessageInfo.key not set")
)

// scanHistoryChunk reads an inflated chunk. own is the device's JID (the
// sender of its own messages); without one, no secrets or tokens are kept.
func scanHistoryChunk(raw []byte, own types.JID) (*historyScan, error) {
	sc := &historyScan{}
	sc.summary.Inflated = len(raw)
	hasType := false
	// First the chunk's scalars: what is stored depends on the type,
	// wherever on the wire it comes.
	err := eachField(raw, func(f wireField) error {
		switch {
		case f.is(hsSyncType):
			// Kept whatever the value, as proto.Unmarshal keeps it in
			// whatsmeow's generated code.
			sc.summary.SyncType = waHistorySync.HistorySync_HistorySyncType(int32(f.varint))
			hasType = true
		case f.is(hsChunkOrder):
			sc.summary.ChunkOrder = uint32(f.varint)
		case f.is(hsProgress):
			sc.summary.Progress = uint32(f.varint)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !hasType {
		return nil, errNoSyncType
	}
	own = own.ToNonAD()
	pushNames := sc.summary.SyncType == waHistorySync.HistorySync_PUSH_NAME
	err = eachField(raw, func(f wireField) error {
		switch {
		case f.is(hsConversations):
			sc.summary.Conversations++
			if !pushNames {
				return sc.conversation(f.bytes, own)
			}
		case f.is(hsPushnames):
			sc.summary.PushNames++
			if pushNames {
				return sc.pushName(f.bytes)
			}
		case f.is(hsLIDMappings):
			sc.summary.LIDMappings++
			return sc.lidMapping(f.bytes)
		case f.is(hsGlobal):
			sc.global = true
			return eachField(f.bytes, func(f wireField) error {
				if f.is(globalLIDMigration) {
					sc.lidMigration = int64(f.varint)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sc.summary.Secrets, sc.summary.PrivacyTokens = len(sc.secrets), len(sc.tokens)
	return sc, nil
}

// conversation reads a Conversation: its privacy token and the secrets of
// its messages.
func (sc *historyScan) conversation(b []byte, own types.JID) error {
	var id, token []byte
	var hasID, hasToken bool
	var tokenTS, senderTS uint64
	err := eachField(b, func(f wireField) error {
		switch {
		case f.is(convID):
			id, hasID = f.bytes, true
		case f.is(convToken):
			token, hasToken = f.bytes, true
		case f.is(convTokenTS):
			tokenTS = f.varint
		case f.is(convTokenSender):
			senderTS = f.varint
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !hasID {
		return errNoChatID
	}
	chat, _ := types.ParseJID(string(id))
	keep := !chat.IsEmpty() && !own.IsEmpty()
	if keep && chat.Server == types.DefaultUserServer && hasToken {
		ts := senderTS
		if ts == 0 {
			ts = tokenTS
		}
		sc.tokens = append(sc.tokens, wastore.PrivacyToken{User: chat, Token: nonNil(token), Timestamp: time.Unix(int64(ts), 0)})
	}
	return eachField(b, func(f wireField) error {
		if !f.is(convMessages) {
			return nil
		}
		sc.summary.Messages++
		return sc.message(f.bytes, chat, own, keep)
	})
}

// message reads a HistorySyncMsg and keeps its message secret. A message
// field that occurs more than once is merged, as by proto.Unmarshal: the
// last value of each scalar wins, and the merged WebMessageInfo must have
// a key.
func (sc *historyScan) message(b []byte, chat, own types.JID, keep bool) error {
	var secret, id, keyPart, part []byte
	var hasMsg, hasKey, hasSecret, fromMe bool
	err := eachField(b, func(f wireField) error {
		if !f.is(hsmMessage) {
			return nil
		}
		hasMsg = true
		return eachField(f.bytes, func(f wireField) error {
			switch {
			case f.is(webKey):
				hasKey = true
				return eachField(f.bytes, func(f wireField) error {
					switch {
					case f.is(keyFromMe):
						fromMe = protowire.DecodeBool(f.varint)
					case f.is(keyID):
						id = f.bytes
					case f.is(keyParticipant):
						keyPart = f.bytes
					}
					return nil
				})
			case f.is(webParticipant):
				part = f.bytes
			case f.is(webSecret):
				secret, hasSecret = f.bytes, true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if hasMsg && !hasKey {
		return errNoKey
	}
	if !keep || !hasSecret {
		return nil
	}
	var sender types.JID
	switch {
	case fromMe:
		sender = own
	case chat.Server == types.DefaultUserServer:
		sender = chat
	case len(keyPart) > 0:
		sender, _ = types.ParseJID(string(keyPart))
	case len(part) > 0:
		sender, _ = types.ParseJID(string(part))
	}
	if sender.IsEmpty() || len(id) == 0 {
		return nil
	}
	sc.secrets = append(sc.secrets, wastore.MessageSecretInsert{Chat: chat, Sender: sender, ID: string(id), Secret: nonNil(secret)})
	return nil
}

// pushName reads a Pushname of a PUSH_NAME chunk.
func (sc *historyScan) pushName(b []byte) error {
	var id, name []byte
	err := eachField(b, func(f wireField) error {
		switch {
		case f.is(pushID):
			id = f.bytes
		case f.is(pushName):
			name = f.bytes
		}
		return nil
	})
	if err != nil || string(name) == "-" {
		return err
	}
	// handleHistoricalPushNames logs an unparsable ID and goes on.
	if user, err := types.ParseJID(string(id)); err == nil {
		sc.pushNames = append(sc.pushNames, historyPushName{user: user, name: string(name)})
	}
	return nil
}

// lidMapping reads a PhoneNumberToLIDMapping.
func (sc *historyScan) lidMapping(b []byte) error {
	var pnJID, lidJID []byte
	err := eachField(b, func(f wireField) error {
		switch {
		case f.is(mapPN):
			pnJID = f.bytes
		case f.is(mapLID):
			lidJID = f.bytes
		}
		return nil
	})
	if err != nil {
		return err
	}
	// storeHistoricalPNLIDMappings logs an unparsable JID and goes on.
	pn, err := types.ParseJID(string(pnJID))
	if err != nil {
		return nil
	}
	if pn.Server == types.LegacyUserServer {
		pn.Server = types.DefaultUserServer
	}
	lid, err := types.ParseJID(string(lidJID))
	if err != nil {
		return nil
	}
	sc.lids = append(sc.lids, wastore.LIDMapping{LID: lid, PN: pn})
	return nil
}

// nonNil keeps a present but empty bytes field non-nil, as proto.Unmarshal
// does for a proto2 field.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// store makes the chunk's writes to dev, in doStorage's order. As in
// whatsmeow, a failed write does not stop the others; the failures are
// returned joined.
func (sc *historyScan) store(ctx context.Context, dev *wastore.Device) error {
	var errs []error
	if sc.summary.SyncType == waHistorySync.HistorySync_PUSH_NAME {
		if dev.Contacts != nil {
			failed := 0
			var first error
			for _, p := range sc.pushNames {
				if _, _, err := dev.Contacts.PutPushName(ctx, p.user, p.name); err != nil {
					failed++
					if first == nil {
						first = err
					}
				}
			}
			if failed > 0 {
				errs = append(errs, fmt.Errorf("%d push names: %w", failed, first))
			}
		}
	} else {
		if len(sc.secrets) > 0 {
			if err := dev.MsgSecrets.PutMessageSecrets(ctx, sc.secrets); err != nil {
				errs = append(errs, fmt.Errorf("message secrets: %w", err))
			}
		}
		if len(sc.tokens) > 0 {
			if err := dev.PrivacyTokens.PutPrivacyTokens(ctx, sc.tokens...); err != nil {
				errs = append(errs, fmt.Errorf("privacy tokens: %w", err))
			}
		}
	}
	if sc.summary.LIDMappings > 0 {
		if err := dev.LIDs.PutManyLIDMappings(ctx, sc.lids); err != nil {
			errs = append(errs, fmt.Errorf("LID mappings: %w", err))
		}
	}
	if sc.global && dev.LIDMigrationTimestamp == 0 && sc.lidMigration > 0 {
		dev.LIDMigrationTimestamp = sc.lidMigration
		if err := dev.Save(ctx); err != nil {
			errs = append(errs, fmt.Errorf("LID migration timestamp: %w", err))
		}
	}
	return errors.Join(errs...)
}

// historyChunkBytes gets a notification's chunk as DownloadHistorySync
// does (the inline payload, else the downloaded blob) and inflates it.
func historyChunkBytes(ctx context.Context, cli waClient, notif *waE2E.HistorySyncNotification) ([]byte, error) {
	data := notif.InitialHistBootstrapInlinePayload
	if data == nil {
		var err error
		if data, err = cli.Download(ctx, notif); err != nil {
			return nil, fmt.Errorf("failed to download: %w", err)
		}
	}
	return inflateHistory(data)
}

// inflateHistory decompresses a zlib-compressed chunk. The buffer starts
// at a few times the compressed size (text deflates about fourfold) and
// doubles, so a large chunk is copied a few times, not dozens.
func inflateHistory(data []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("failed to prepare to decompress: %w", err)
	}
	buf := make([]byte, 0, min(max(4*len(data), 4<<10), 64<<20))
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to decompress: %w", err)
		}
	}
}

// scanHistorySync is the engine's historyDownload: it gets and inflates a
// chunk, scans it and stores its push names, message secrets, privacy
// tokens, LID mappings and LID migration timestamp in dev (the client's
// device store), as whatsmeow's DownloadHistorySync with
// synchronousStorage would, without parsing the chunk's messages.
func scanHistorySync(ctx context.Context, cli waClient, dev *wastore.Device, notif *waE2E.HistorySyncNotification) (historySummary, error) {
	raw, err := historyChunkBytes(ctx, cli, notif)
	if err != nil {
		return historySummary{}, err
	}
	sc, err := scanHistoryChunk(raw, dev.GetJID())
	if err != nil {
		return historySummary{Inflated: len(raw)}, fmt.Errorf("failed to scan: %w", err)
	}
	sc.summary.StoreErr = sc.store(ctx, dev)
	return sc.summary, nil
}
