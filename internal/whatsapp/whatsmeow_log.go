package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	signallog "go.mau.fi/libsignal/logger"
	wastore "go.mau.fi/whatsmeow/store"
	waLog "go.mau.fi/whatsmeow/util/log"
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

var deviceNameOnce sync.Once

// setupDeviceName makes whatsmeow announce [DeviceName] when a device is
// linked by QR code: the name travels in DeviceProps.Os of the registration
// payload (whatsmeow store.SetOSInfo). Pairing by phone number shows
// [PairClientDisplayName] instead, as WhatsApp accepts only `Browser (OS)`
// there. It sets package globals of whatsmeow, so it runs once, before any
// client exists.
func setupDeviceName() {
	deviceNameOnce.Do(func() { wastore.SetOSInfo(DeviceName, [3]uint32{1, 0, 0}) })
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
