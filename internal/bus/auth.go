package bus

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/statusflow/statusflow/internal/logging"
	"github.com/statusflow/statusflow/internal/store"
)

// internalInboxPrefix is the reply-subject prefix of statusflow's own
// connection. JetStream delivers pulled triggers (with their token headers)
// and API answers to the puller's inbox; external clients may subscribe to
// _INBOX.> for their own replies, so ours must live elsewhere.
const internalInboxPrefix = "_SF_INBOX"

// internalUser is statusflow's own user on the embedded server. Its password
// is random per start and never leaves the process (the connection is
// in-process).
const internalUser = "statusflow-internal"

// embeddedUsers returns the embedded server's users: statusflow itself
// (every permission) and the external clients' user and nkey with
// [clientPermissions].
func embeddedUsers(cfg Config, internalPassword string) ([]*server.User, []*server.NkeyUser) {
	perms := clientPermissions(cfg)
	users := []*server.User{{Username: internalUser, Password: internalPassword}}
	if cfg.ClientUser != "" && cfg.ClientPassword != "" {
		users = append(users, &server.User{Username: cfg.ClientUser, Password: cfg.ClientPassword, Permissions: perms})
	}
	var nkeys []*server.NkeyUser
	if cfg.ClientNKey != "" {
		nkeys = append(nkeys, &server.NkeyUser{Nkey: cfg.ClientNKey, Permissions: perms})
	}
	return users, nkeys
}

// clientPermissions is what an external client of the embedded server may
// do. It may publish triggers and requests and subscribe to events and the
// DLQ (and its own _INBOX replies). It may not subscribe to trigger or
// request subjects (they carry tokens), publish events or DLQ entries, or
// use the JetStream API beyond reading the events and DLQ streams: stream
// info, getting messages, and consumers of its own on those two streams
// (create, info, next, ack, delete) — `nats sub`, `nats stream view` and
// ordered or durable consumers work; purging, deleting or editing a stream,
// and anything on the triggers stream, are refused.
func clientPermissions(cfg Config) *server.Permissions {
	s := Subjects{Prefix: cfg.Prefix}
	pub := []string{cfg.Prefix + ".trigger.>", cfg.Prefix + ".request.>", "$JS.API.INFO", "$JS.API.STREAM.NAMES"}
	for _, st := range []string{s.EventsStream(), s.DLQStream()} {
		pub = append(pub,
			"$JS.API.STREAM.INFO."+st, "$JS.API.STREAM.MSG.GET."+st, "$JS.API.DIRECT.GET."+st, "$JS.API.DIRECT.GET."+st+".>",
			"$JS.API.CONSUMER.CREATE."+st, "$JS.API.CONSUMER.CREATE."+st+".>", "$JS.API.CONSUMER.DURABLE.CREATE."+st+".>",
			"$JS.API.CONSUMER.INFO."+st+".>", "$JS.API.CONSUMER.DELETE."+st+".>", "$JS.API.CONSUMER.MSG.NEXT."+st+".>",
			"$JS.API.CONSUMER.NAMES."+st, "$JS.API.CONSUMER.LIST."+st,
			"$JS.ACK."+st+".>", "$JS.FC."+st+".>")
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{cfg.Prefix + ".events.>", cfg.Prefix + ".dlq.>", "_INBOX.>"}},
	}
}

// randomSecret returns 32 random bytes, base64url.
func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// isLoopback reports whether a listen host only accepts local connections.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// urlAuthOptions are the credentials statusflow presents to an external
// server (STATUSFLOW_NATS_URL): a creds file (JWT + nkey seed), an nkey seed
// file, a token, or a user and password (which may also be in the URL).
func urlAuthOptions(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("STATUSFLOW_NATS_NKEY_SEED %s: %w", cfg.NKeySeedFile, err)
		}
		opts = append(opts, o)
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.ClientUser != "" && cfg.ClientPassword != "" {
		opts = append(opts, nats.UserInfo(cfg.ClientUser, cfg.ClientPassword))
	}
	return opts, nil
}

// settingClientPasswordHash keeps the bcrypt hash of a generated client password.
const settingClientPasswordHash = "nats_client_password_bcrypt"

// DefaultClientUser is the external clients' user when STATUSFLOW_NATS_USER is unset.
const DefaultClientUser = "statusflow"

type settingsStore interface {
	SettingGet(ctx context.Context, key string) (string, error)
	SettingInsert(ctx context.Context, key, value string) error
}

// EmbeddedCredentials fills the external clients' login of the embedded
// server. A configured password or nkey is used as is. Otherwise, like the
// account token, a password is generated on first start, logged once, and
// only its bcrypt hash kept (the server compares bcrypt hashes itself); and
// since nobody configured credentials, the server listens on loopback only.
func EmbeddedCredentials(ctx context.Context, st settingsStore, cfg Config, log *slog.Logger) (Config, error) {
	cfg.ClientUser = cmp.Or(cfg.ClientUser, DefaultClientUser)
	if cfg.ClientPassword != "" || cfg.ClientNKey != "" {
		return cfg, nil
	}
	host, port, err := net.SplitHostPort(cmp.Or(cfg.Listen, ListenDefault))
	if err == nil && !isLoopback(host) {
		log.Warn("no NATS credentials are configured (STATUSFLOW_NATS_PASSWORD or STATUSFLOW_NATS_NKEY): the embedded NATS server listens on loopback only", "asked", cfg.Listen)
		cfg.Listen = net.JoinHostPort("127.0.0.1", port)
	}
	hash, err := st.SettingGet(ctx, settingClientPasswordHash)
	if err == nil {
		cfg.ClientPassword = hash
		return cfg, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return cfg, err
	}
	pw := randomSecret()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return cfg, err
	}
	if err := st.SettingInsert(ctx, settingClientPasswordHash, string(h)); errors.Is(err, store.ErrConflict) {
		hash, err := st.SettingGet(ctx, settingClientPasswordHash) // another process won the race
		cfg.ClientPassword = hash
		return cfg, err
	} else if err != nil {
		return cfg, err
	}
	// The second secret ever logged, once, like the account token.
	log.Warn("generated the NATS password of the embedded server; it is shown only this once, keep it (or set STATUSFLOW_NATS_PASSWORD)",
		"natsUser", cfg.ClientUser, "natsPassword", logging.Reveal(pw))
	cfg.ClientPassword = string(h)
	return cfg, nil
}
