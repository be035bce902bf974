package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	wastore "go.mau.fi/whatsmeow/store"

	"github.com/statusflow/statusflow/internal/store"
)

// Client version policy. whatsmeow advertises the WhatsApp Web version it
// was built with, and WhatsApp refuses versions it deems too old with a 405
// "client outdated" connect failure (tulir/whatsmeow#1040: the version in
// our go.mod, 2025-12-17, was refused two days later; #1164, 2026-06). Mature
// whatsmeow users fetch the live version at start (whatsmeow's own
// GetLatestVersion reads `client_revision` from web.whatsapp.com) and set it
// before connecting; so does statusflow, and again every
// [VersionRefreshInterval]. STATUSFLOW_WA_VERSION pins one by hand; when a
// fetch fails the last version fetched (kept in the settings table) stays in use.
const (
	// VersionRefreshInterval is how often the live version is fetched again.
	VersionRefreshInterval = 6 * time.Hour
	// VersionFetchTimeout bounds one fetch.
	VersionFetchTimeout = 15 * time.Second
	// versionSetting is the engine setting that keeps the last version fetched.
	versionSetting = "wa_version"
)

// VersionConfig is the client version policy of the whatsmeow engine.
type VersionConfig struct {
	// Pinned, when set ("2.3000.1031080782"), is used as is and never
	// refreshed (STATUSFLOW_WA_VERSION).
	Pinned string
	// HTTPClient fetches web.whatsapp.com. Defaults to a client with
	// [VersionFetchTimeout]; tests point it at a loopback server.
	HTTPClient *http.Client
	// Interval defaults to [VersionRefreshInterval]; negative: no periodic refresh.
	Interval time.Duration
}

// settingStore keeps the last version fetched.
type settingStore interface {
	SettingGet(ctx context.Context, name string) (string, error)
	SettingPut(ctx context.Context, key, value string) error
}

// versionKeeper chooses and applies the advertised client version.
type versionKeeper struct {
	cfg   VersionConfig
	store settingStore
	log   *slog.Logger
	now   func() time.Time

	// mu serialises applying a version (whatsmeow package globals) with the
	// dials statusflow starts, which read them.
	mu      sync.RWMutex
	current wastore.WAVersionContainer
	source  string
}

func newVersionKeeper(cfg VersionConfig, st settingStore, log *slog.Logger) *versionKeeper {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: VersionFetchTimeout}
	}
	if cfg.Interval == 0 {
		cfg.Interval = VersionRefreshInterval
	}
	return &versionKeeper{cfg: cfg, store: st, log: log, now: func() time.Time { return time.Now().UTC() },
		current: wastore.GetWAVersion(), source: "built-in"}
}

// Current is the version advertised now and where it came from:
// "pinned", "fetched", "stored" or "built-in".
func (k *versionKeeper) Current() (wastore.WAVersionContainer, string) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current, k.source
}

// apply makes v the version every new connection advertises.
//
// NOTE: whatsmeow's store.SetWAVersion (this go.mod's version) updates the
// version and its hash but not BaseClientPayload.UserAgent.AppVersion, which
// was filled from the built-in version at package init
// (store/clientpayload.go) and is what the login payload carries; so it is
// set here too.
func (k *versionKeeper) apply(v wastore.WAVersionContainer, source string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	wastore.SetWAVersion(v)
	wastore.BaseClientPayload.UserAgent.AppVersion = v.ProtoAppVersion()
	k.current, k.source = v, source
}

// dialing holds the version steady while f dials.
func (k *versionKeeper) dialing(f func() error) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return f()
}

// Init chooses the version before the first connection: the pinned one,
// else the live one, else the stored one, else whatsmeow's built-in one.
func (k *versionKeeper) Init(ctx context.Context) error {
	if k.cfg.Pinned != "" {
		v, err := wastore.ParseVersion(k.cfg.Pinned)
		if err != nil {
			return fmt.Errorf("STATUSFLOW_WA_VERSION: %w", err)
		}
		k.apply(v, "pinned")
		k.log.Info("WhatsApp Web version pinned", "version", v.String())
		return nil
	}
	if _, err := k.Refresh(ctx); err == nil {
		return nil
	}
	if s, err := k.store.SettingGet(ctx, versionSetting); err == nil {
		if v, err := wastore.ParseVersion(s); err == nil && wastore.GetWAVersion().LessThan(v) {
			k.apply(v, "stored")
			k.log.Info("using the last WhatsApp Web version fetched", "version", v.String())
		}
	}
	return nil
}

// Refresh fetches the live version and applies it (a pinned version is
// kept). On failure the version in use stays and the reason is logged.
func (k *versionKeeper) Refresh(ctx context.Context) (wastore.WAVersionContainer, error) {
	if k.cfg.Pinned != "" {
		v, _ := k.Current()
		return v, nil
	}
	fctx, cancel := context.WithTimeout(ctx, VersionFetchTimeout)
	defer cancel()
	v, err := whatsmeow.GetLatestVersion(fctx, k.cfg.HTTPClient)
	if err == nil && v.IsZero() {
		err = errors.New("zero version")
	}
	if err != nil {
		cur, src := k.Current()
		k.log.Warn("fetch WhatsApp Web version failed; keeping the one in use", "version", cur.String(), "source", src, "err", err)
		return cur, err
	}
	k.apply(*v, "fetched")
	if err := k.store.SettingPut(ctx, versionSetting, v.String()); err != nil {
		k.log.Warn("store WhatsApp Web version", "err", err)
	}
	k.log.Info("WhatsApp Web version refreshed", "version", v.String())
	return *v, nil
}

// run chooses the version (see [versionKeeper.Init]), closes first, then
// refreshes every interval until ctx ends.
func (k *versionKeeper) run(ctx context.Context, first chan<- struct{}) {
	if err := k.Init(ctx); err != nil {
		k.log.Error("WhatsApp Web version", "err", err)
	}
	close(first)
	if k.cfg.Pinned != "" || k.cfg.Interval < 0 {
		return
	}
	t := time.NewTicker(k.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.Refresh(ctx)
		}
	}
}

var _ settingStore = (*store.Store)(nil)
