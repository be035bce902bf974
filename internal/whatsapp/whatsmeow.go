package whatsapp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/statusflow/statusflow/internal/store"
)

// Timing of the whatsmeow engine.
const (
	// SyncTimeoutDefault bounds how long SendStatus, RevokeStatus and Upload
	// wait for a connecting session to log in and finish its first app-state
	// sync before they give up with [ErrNotConnected].
	SyncTimeoutDefault = 30 * time.Second
	// PairTimeoutDefault bounds how long Connect waits for WhatsApp's first
	// QR code after dialling.
	PairTimeoutDefault = 30 * time.Second
	// ReconnectMaxDelay caps the backoff between attempts to dial a stored
	// session; attempts start at once and double from one second.
	ReconnectMaxDelay = time.Minute
)

// PairClientDisplayName is how a device linked with a pairing code shows up
// in the phone's "Linked devices"; WhatsApp accepts only `Browser (OS)` names.
const PairClientDisplayName = "Chrome (Linux)"

// Whatsmeow is the engine that talks to WhatsApp through go.mau.fi/whatsmeow.
// Device keys and sessions live in whatsmeow's sqlstore tables in
// statusflow's own database, so a linked instance reconnects by itself after
// a restart.
type Whatsmeow struct {
	container *sqlstore.Container
	log       *slog.Logger
	waLog     waLog.Logger
	now       func() time.Time

	// syncTimeout and pairTimeout default to the constants above.
	syncTimeout time.Duration
	pairTimeout time.Duration
	// httpClient, when set, carries the websocket and media traffic of every
	// client (tests point it at a loopback listener).
	httpClient *http.Client
	// contactsGrace defaults to [ContactsSyncGrace].
	contactsGrace time.Duration
	// sent keeps what was sent to status@broadcast, for retry receipts.
	sent     sentStore
	settings settingStore
	// version chooses the advertised WhatsApp Web version; nil until
	// [Whatsmeow.SetVersionPolicy]. It starts with the first session.
	version      *versionKeeper
	versionOnce  sync.Once
	versionFirst chan struct{}
	versionStop  context.CancelFunc
	versionDone  chan struct{}

	// historySem holds one token per history-sync chunk being downloaded
	// and parsed, across every session of the engine (capacity
	// [HistorySyncConcurrency]); see whatsmeow_history.go.
	historySem chan struct{}
	// historyDownload downloads, scans and stores one chunk in dev (cli's
	// device store): scanHistorySync; tests wrap it.
	historyDownload func(ctx context.Context, cli waClient, dev *wastore.Device, notif *waE2E.HistorySyncNotification) (historySummary, error)
}

// sentStore keeps sent status messages for whatsmeow's retry callback.
type sentStore interface {
	SentMessagePut(ctx context.Context, instance, messageID string, body []byte, at, keepSince time.Time) error
	SentMessageGet(ctx context.Context, instance, messageID string) ([]byte, error)
}

// NewWhatsmeow returns the whatsmeow engine on st's database, creating or
// upgrading whatsmeow's own tables (`whatsmeow_*`). On SQLite the
// connection must have foreign keys on, as store.Open's DSN does.
func NewWhatsmeow(st *store.Store, log *slog.Logger) (*Whatsmeow, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	setupSignalLogger(log)
	setupDeviceProps()
	wl := newSlogWALogger(log.With("engine", EngineWhatsmeow))
	c := sqlstore.NewWithDB(st.DB, string(st.Dialect), wl.Sub("Database"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Under the schema lock: replicas starting together upgrade once.
	if err := st.Exclusive(ctx, c.Upgrade); err != nil {
		return nil, fmt.Errorf("whatsmeow store: %w", err)
	}
	return &Whatsmeow{
		container:     c,
		log:           log,
		waLog:         wl,
		now:           func() time.Time { return time.Now().UTC() },
		syncTimeout:   SyncTimeoutDefault,
		pairTimeout:   PairTimeoutDefault,
		contactsGrace: ContactsSyncGrace,
		sent:          st,
		settings:      st,

		historySem:      make(chan struct{}, HistorySyncConcurrency),
		historyDownload: scanHistorySync,
	}, nil
}

// Name implements [Engine].
func (*Whatsmeow) Name() string { return EngineWhatsmeow }

// Open implements [Engine]. With params.DeviceJID set it loads that device
// from the store and starts dialling in the background (state connecting),
// retrying with backoff until it connects or the session is closed; whatsmeow
// then reconnects by itself after later drops. A DeviceJID the store no
// longer has opens a fresh session in state loggedout. Without DeviceJID the
// session holds a fresh device and stays disconnected until Connect.
func (e *Whatsmeow) Open(ctx context.Context, p OpenParams) (Session, error) {
	var dev *wastore.Device
	lost := false
	if p.DeviceJID != "" {
		jid, err := types.ParseJID(p.DeviceJID)
		if err != nil {
			return nil, fmt.Errorf("instance %s: device %q: %w", p.Instance, p.DeviceJID, err)
		}
		dev, err = e.container.GetDevice(ctx, jid)
		if err != nil {
			return nil, fmt.Errorf("instance %s: load device: %w", p.Instance, err)
		}
		lost = dev == nil
	}
	if dev == nil {
		dev = e.container.NewDevice()
	}
	s := newWhatsmeowSession(e, p)
	s.setClient(dev, e.newClient(dev, s))
	switch {
	case lost:
		s.log.Warn("stored device is gone from the whatsmeow store; the instance must be linked again", "device", p.DeviceJID)
		s.report(StateLoggedOut, "device not found in store")
	case dev.ID != nil:
		s.startReconnect()
	}
	return s, nil
}

// newClient builds the whatsmeow client of a device and routes its events
// to s. Events of a client that s no longer holds are dropped.
func (e *Whatsmeow) newClient(dev *wastore.Device, s *whatsmeowSession) *whatsmeow.Client {
	cli := whatsmeow.NewClient(dev, e.waLog.Sub("Client").Sub(s.instance))
	// Our own loop dials stored sessions; whatsmeow reconnects after drops.
	cli.EnableAutoReconnect = true
	cli.InitialAutoReconnect = false
	// History sync is ours to run, bounded per engine and without keeping
	// the parsed chats (whatsmeow_history.go).
	cli.ManualHistorySyncDownload = true
	if e.httpClient != nil {
		cli.SetWebsocketHTTPClient(e.httpClient)
		cli.SetPreLoginHTTPClient(e.httpClient)
		cli.SetMediaHTTPClient(e.httpClient)
	}
	// Never wait here: whatsmeow runs handlers on its own loops. Events are
	// queued and applied in order by the session's event goroutine.
	cli.AddEventHandler(func(evt any) {
		if !s.holds(cli) {
			return
		}
		if n := historyNotification(evt); n != nil {
			s.events.Add(historySyncJob{cli: cli, dev: dev, notif: n})
			return
		}
		s.events.Add(evt)
	})
	// Retry receipts: a recipient's device that could not decrypt a status
	// asks for it again; whatsmeow answers from its in-memory recent
	// messages, which a restart empties, and then asks this callback.
	cli.GetMessageForRetry = func(requester, to types.JID, id types.MessageID) *waE2E.Message {
		return e.sentMessage(s.instance, to, id)
	}
	return cli
}

// waClient is what a session calls on its [*whatsmeow.Client]; tests
// substitute a recorder to check the exact calls up to the network edge.
type waClient interface {
	ConnectContext(ctx context.Context) error
	Disconnect()
	IsLoggedIn() bool
	GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error)
	PairPhone(ctx context.Context, phone string, showPushNotification bool, clientType whatsmeow.PairClientType, clientDisplayName string) (string, error)
	Logout(ctx context.Context) error
	UploadReader(ctx context.Context, plaintext io.Reader, tempFile io.ReadWriteSeeker, appInfo whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
	SendMessage(ctx context.Context, to types.JID, message *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error)
	BuildRevoke(chat, sender types.JID, id types.MessageID) *waE2E.Message
	GetStatusPrivacy(ctx context.Context) ([]types.StatusPrivacy, error)
	FetchAppState(ctx context.Context, name appstate.WAPatchName, fullSync, onlyIfNotSynced bool) error
	Download(ctx context.Context, msg whatsmeow.DownloadableMessage) ([]byte, error)
}

var _ waClient = (*whatsmeow.Client)(nil)
