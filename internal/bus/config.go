package bus

import (
	"cmp"
	"fmt"
	"net"
	"strings"
	"time"
)

// Defaults of [Config].
const (
	ListenDefault         = "127.0.0.1:4222"
	PrefixDefault         = "statusflow"
	DedupWindowDefault    = 24 * time.Hour
	EventsMaxAgeDefault   = 7 * 24 * time.Hour
	DLQMaxAgeDefault      = 30 * 24 * time.Hour
	MaxDeliverDefault     = 10
	AckWaitDefault        = 30 * time.Second
	HandlerTimeoutDefault = 2 * time.Minute
	RetryBaseDefault      = time.Second
	RetryMaxDefault       = time.Minute
	ConcurrencyDefault    = 64
	ConnectTimeoutDefault = 10 * time.Second
)

// Config is the bus's policy. The zero value plus a DataDir is a working
// embedded setup; [Config.WithDefaults] fills the rest.
type Config struct {
	// URL connects to an existing NATS server or cluster (comma-separated
	// URLs). Defaults to empty: an embedded server with JetStream in DataDir.
	// From STATUSFLOW_NATS_URL.
	URL string
	// Listen is where the embedded server listens. When that port is taken a
	// free one is chosen and its URL logged. Defaults to "127.0.0.1:4222".
	// From STATUSFLOW_NATS_LISTEN.
	Listen string
	// DataDir holds the embedded server's JetStream store (DataDir/nats).
	// Required when URL is empty. From STATUSFLOW_DATA_DIR.
	DataDir string
	// Prefix is the first token of every subject and names the streams
	// (<PREFIX>_TRIGGERS, …). Defaults to "statusflow". From STATUSFLOW_NATS_PREFIX.
	Prefix string
	// Replicas is how many servers of a NATS cluster keep a copy of each
	// stream. Defaults to 1. From STATUSFLOW_NATS_REPLICAS.
	Replicas int
	// Replica, with clustering on, is this replica's id: every event it
	// publishes carries it in [HeaderReplica], so a replica relaying the
	// others' events to its live streams skips its own (internal/app).
	Replica string

	// DedupWindow is how long the triggers stream remembers Nats-Msg-Id
	// values to drop duplicates. Defaults to 24h, the idempotency window.
	DedupWindow time.Duration
	// EventsMaxAge is how long events stay in the events stream. Defaults to 7 days.
	EventsMaxAge time.Duration
	// DLQMaxAge is how long dead triggers stay in the DLQ stream. Defaults to 30 days.
	DLQMaxAge time.Duration

	// MaxDeliver is how many deliveries a trigger gets before it goes to the
	// DLQ. Defaults to 10.
	MaxDeliver int
	// AckWait is how long the server waits for an ack before redelivering; the
	// consumer sends InProgress while a trigger runs. Defaults to 30s.
	AckWait time.Duration
	// HandlerTimeout bounds one execution of a trigger. Defaults to 2m.
	HandlerTimeout time.Duration
	// RetryBase and RetryMax shape the NAK delay of a retryable failure:
	// RetryBase·2^(attempt-1), capped at RetryMax, with ±20% jitter.
	// Default to 1s and 1m.
	RetryBase, RetryMax time.Duration
	// Concurrency is how many triggers this process runs at once. Defaults
	// to 64: a trigger spends most of its time waiting for its database
	// writes, which are group-committed, so more triggers in flight share
	// each commit (8 gave a third less throughput).
	Concurrency int
	// ConnectTimeout bounds the first connection (and the embedded server's
	// start). Defaults to 10s.
	ConnectTimeout time.Duration

	// ClientUser and ClientPassword: with the embedded server, the user
	// external clients (nats CLI, workers) log in as, with the permissions of
	// clientPermissions; the password may be a bcrypt hash ("$2a$…"). With
	// URL, what statusflow logs in with (unless the URL carries them).
	// From STATUSFLOW_NATS_USER and STATUSFLOW_NATS_PASSWORD.
	ClientUser, ClientPassword string
	// ClientNKey is a user nkey (public, "U…") external clients of the
	// embedded server may log in with instead, same permissions.
	// From STATUSFLOW_NATS_NKEY.
	ClientNKey string
	// CredsFile, NKeySeedFile and Token are statusflow's credentials for an
	// external server (URL): a .creds file (JWT and seed), an nkey seed file,
	// or a token. From STATUSFLOW_NATS_CREDS, STATUSFLOW_NATS_NKEY_SEED and
	// STATUSFLOW_NATS_TOKEN.
	CredsFile, NKeySeedFile, Token string
}

// WithDefaults returns a copy with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Listen = cmp.Or(c.Listen, ListenDefault)
	c.Prefix = cmp.Or(c.Prefix, PrefixDefault)
	c.DedupWindow = cmp.Or(c.DedupWindow, DedupWindowDefault)
	c.EventsMaxAge = cmp.Or(c.EventsMaxAge, EventsMaxAgeDefault)
	c.DLQMaxAge = cmp.Or(c.DLQMaxAge, DLQMaxAgeDefault)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, MaxDeliverDefault)
	c.AckWait = cmp.Or(c.AckWait, AckWaitDefault)
	c.HandlerTimeout = cmp.Or(c.HandlerTimeout, HandlerTimeoutDefault)
	c.RetryBase = cmp.Or(c.RetryBase, RetryBaseDefault)
	c.RetryMax = cmp.Or(c.RetryMax, RetryMaxDefault)
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, ConnectTimeoutDefault)
	return c
}

// Validate checks a config (after [Config.WithDefaults]); errors name the
// environment variable or the field.
func (c Config) Validate() error {
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, ". *>\t\r\n") {
		return fmt.Errorf("STATUSFLOW_NATS_PREFIX must be one subject token, got %q", c.Prefix)
	}
	if c.URL != "" && !strings.Contains(c.URL, "://") {
		return fmt.Errorf("STATUSFLOW_NATS_URL must be a nats:// URL, got %q", c.URL)
	}
	if c.URL == "" {
		if c.DataDir == "" {
			return fmt.Errorf("STATUSFLOW_DATA_DIR is required for the embedded NATS server")
		}
		host, _, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return fmt.Errorf("STATUSFLOW_NATS_LISTEN must be host:port, got %q: %w", c.Listen, err)
		}
		if !isLoopback(host) && (c.ClientUser == "" || c.ClientPassword == "") && c.ClientNKey == "" {
			return fmt.Errorf("STATUSFLOW_NATS_LISTEN %q accepts remote clients: set STATUSFLOW_NATS_USER and STATUSFLOW_NATS_PASSWORD (or STATUSFLOW_NATS_NKEY) or listen on loopback", c.Listen)
		}
		if c.CredsFile != "" || c.NKeySeedFile != "" || c.Token != "" {
			return fmt.Errorf("STATUSFLOW_NATS_CREDS, _NKEY_SEED and _TOKEN are credentials for STATUSFLOW_NATS_URL; the embedded server takes STATUSFLOW_NATS_USER/_PASSWORD or STATUSFLOW_NATS_NKEY")
		}
	}
	switch {
	case c.DedupWindow < 0:
		return fmt.Errorf("DedupWindow cannot be negative")
	case c.EventsMaxAge < 0 || c.DLQMaxAge < 0:
		return fmt.Errorf("EventsMaxAge and DLQMaxAge cannot be negative")
	case c.MaxDeliver < 1:
		return fmt.Errorf("MaxDeliver must be at least 1")
	case c.AckWait < time.Second:
		return fmt.Errorf("AckWait must be at least 1s")
	case c.HandlerTimeout <= 0 || c.RetryBase <= 0 || c.RetryMax < c.RetryBase:
		return fmt.Errorf("HandlerTimeout and RetryBase must be positive, RetryMax at least RetryBase")
	case c.Concurrency < 1:
		return fmt.Errorf("Concurrency must be at least 1")
	}
	return nil
}
