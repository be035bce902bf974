package bus

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbedded starts nats-server in-process with JetStream in
// DataDir/nats, listening on cfg.Listen, or on a free port when that one is
// taken (the URL is logged).
//
// Every client must log in: statusflow itself as internalUser with
// internalPassword (in-process), external clients with the configured user
// or nkey and [clientPermissions].
func startEmbedded(cfg Config, internalPassword string, log *slog.Logger) (*server.Server, error) {
	host, portStr, _ := net.SplitHostPort(cfg.Listen)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("STATUSFLOW_NATS_LISTEN %q: bad port", cfg.Listen)
	}
	if port == 0 {
		// nats-server reads port 0 as "the default, 4222"; we mean any free port.
		port = server.RANDOM_PORT
	} else if ln, err := net.Listen("tcp", cfg.Listen); err != nil {
		log.Warn("STATUSFLOW_NATS_LISTEN is taken; the embedded NATS server uses a free port", "listen", cfg.Listen, "err", err)
		port = server.RANDOM_PORT
	} else {
		ln.Close()
	}
	opts := &server.Options{
		ServerName: "statusflow",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	opts.Users, opts.Nkeys = embeddedUsers(cfg, internalPassword)
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns.SetLoggerV2(serverLogger{log}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(cfg.ConnectTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: not ready after %s (STATUSFLOW_NATS_LISTEN %s, store %s)", cfg.ConnectTimeout, cfg.Listen, opts.StoreDir)
	}
	log.Info("embedded nats server listening", "url", ns.ClientURL(), "store", opts.StoreDir)
	return ns, nil
}

// serverLogger sends nats-server's log to slog: notices at debug, warnings
// and errors as such.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  {}
func (l serverLogger) Tracef(format string, v ...any)  {}

// redact hides a password in a URL for logs.
func redact(u string) string {
	if i, j := strings.LastIndexByte(u, '@'), strings.Index(u, "://"); i > 0 && j > 0 && i > j {
		return u[:j+3] + "***" + u[i:]
	}
	return u
}
