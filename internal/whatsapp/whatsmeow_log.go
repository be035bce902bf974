package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	signallog "go.mau.fi/libsignal/logger"
	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	wastore "go.mau.fi/whatsmeow/store"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"
)

// slogWALogger bridges whatsmeow's logger to slog; Sub adds to the module.
type slogWALogger struct {
	log    *slog.Logger
	module string
}

func newSlogWALogger(log *slog.Logger) waLog.Logger { return &slogWALogger{log: log} }

func (l *slogWALogger) Errorf(msg string, args ...any) { l.logf(slog.LevelError, msg, args) }
func (l *slogWALogger) Warnf(msg string, args ...any)  { l.logf(slog.LevelWarn, msg, args) }
func (l *slogWALogger) Infof(msg string, args ...any)  { l.logf(slog.LevelInfo, msg, args) }
func (l *slogWALogger) Debugf(msg string, args ...any) { l.logf(slog.LevelDebug, msg, args) }

func (l *slogWALogger) Sub(module string) waLog.Logger {
	if l.module != "" {
		module = l.module + "/" + module
	}
	return &slogWALogger{log: l.log, module: module}
}

func (l *slogWALogger) logf(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(msg, args...), "module", l.module)
}

// DeviceName is how a linked statusflow instance shows in the phone's
// "Linked devices" list (whatsmeow's default is "whatsmeow").
const DeviceName = "statusflow"

var devicePropsOnce sync.Once

// setupDeviceProps sets what a newly linked device tells the phone, in
// DeviceProps of the registration payload (whatsmeow
// store.getRegistrationPayload; only pairing sends it, so it changes nothing
// for devices linked before). It sets package globals of whatsmeow, so it
// runs once, before any client exists.
//
// The name: whatsmeow announces [DeviceName] when a device is linked by QR
// code (DeviceProps.Os, store.SetOSInfo). Pairing by phone number shows
// [PairClientDisplayName] instead, as WhatsApp accepts only `Browser (OS)`
// there.
//
// History: the limits below, so the phone sends little chat history.
func setupDeviceProps() {
	devicePropsOnce.Do(func() {
		wastore.SetOSInfo(DeviceName, [3]uint32{1, 0, 0})
		applyHistorySyncLimits(wastore.DeviceProps)
	})
}

// The history a newly linked device asks its phone for. statusflow reads no
// chat history (see whatsmeow_history.go); it keeps only the push names and
// phone-number↔LID mappings that come with it, so it asks for little:
//
//   - RequireFullSync false (whatsmeow's default too): mautrix-whatsapp's
//     request_full_sync "bumps the size of history syncs from 3 months to
//     1 year" (pkg/connector/example-config.yaml); Baileys maps its
//     syncFullHistory to the same flag (src/Utils/validate-connection.ts).
//   - FullSyncDaysLimit, FullSyncSizeMbLimit and StorageQuotaMb small,
//     where whatsmeow and Baileys send a StorageQuotaMb of 10240 (10 GB)
//     and no day or size limit. mautrix-whatsapp sends these three only
//     when all are above zero (pkg/connector/connector.go, its
//     full_sync_config: days_limit, size_mb_limit, storage_quota_mb), so
//     zero reads as "not set", not "nothing"; how a phone answers a zero
//     is not documented. Hence one week, 10 MB and 100 MB.
//   - RecentSyncDaysLimit one week: the recent (non-full) sync is the one
//     a phone sends by default, about three months per mautrix-whatsapp.
//   - SupportGroupHistory and SupportCallLogHistory false (whatsmeow's
//     defaults, kept explicit): no group or call history.
//
// These are requests: "ultimately how much history you get is completely up
// to the whatsapp app on your phone" (whatsmeow's author,
// github.com/tulir/whatsmeow/issues/358). The bounded download in
// whatsmeow_history.go is what caps memory whatever the phone sends.
const (
	historyRequireFullSync     = false
	historyFullSyncDaysLimit   = 7
	historyFullSyncSizeMbLimit = 10
	historyStorageQuotaMb      = 100
	historyRecentSyncDaysLimit = 7
	historySupportGroupHistory = false
	historySupportCallLog      = false
)

// applyHistorySyncLimits writes the history limits above into props.
func applyHistorySyncLimits(props *waCompanionReg.DeviceProps) {
	props.RequireFullSync = proto.Bool(historyRequireFullSync)
	if props.HistorySyncConfig == nil {
		props.HistorySyncConfig = &waCompanionReg.DeviceProps_HistorySyncConfig{}
	}
	c := props.HistorySyncConfig
	c.FullSyncDaysLimit = proto.Uint32(historyFullSyncDaysLimit)
	c.FullSyncSizeMbLimit = proto.Uint32(historyFullSyncSizeMbLimit)
	c.StorageQuotaMb = proto.Uint32(historyStorageQuotaMb)
	c.RecentSyncDaysLimit = proto.Uint32(historyRecentSyncDaysLimit)
	c.SupportGroupHistory = proto.Bool(historySupportGroupHistory)
	c.SupportCallLogHistory = proto.Bool(historySupportCallLog)
}

var signalLoggerOnce sync.Once

// setupSignalLogger routes libsignal's package-global logger to slog, once
// per process and before any key is generated. Left unset, libsignal
// installs a default on first use, racily, that prints every debug line to
// stdout.
func setupSignalLogger(log *slog.Logger) {
	signalLoggerOnce.Do(func() {
		var l signallog.Loggable = signalSlog{log: log.With("module", "libsignal")}
		signallog.Setup(&l)
	})
}

// signalSlog is libsignal's [signallog.Loggable] on slog.
type signalSlog struct{ log *slog.Logger }

func (l signalSlog) Debug(caller, msg string)   { l.log.Debug(msg, "caller", caller) }
func (l signalSlog) Info(caller, msg string)    { l.log.Info(msg, "caller", caller) }
func (l signalSlog) Warning(caller, msg string) { l.log.Warn(msg, "caller", caller) }
func (l signalSlog) Error(caller, msg string)   { l.log.Error(msg, "caller", caller) }
func (signalSlog) Configure(string)             {}
