// Package config reads statusflow's settings from the environment (API.md §1),
// with a command-line flag of the same name mirroring each. No other package
// reads the environment.
package config

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting, with the documented defaults.
type Config struct {
	// Addr is the HTTP listen address. Defaults to ":8080".
	Addr string
	// DataDir is where the embedded defaults keep their files. Defaults to "./data".
	DataDir string
	// DatabaseURL selects PostgreSQL with a postgres:// URL. Defaults to a
	// SQLite file in DataDir.
	DatabaseURL string
	// NATSURL connects to an existing NATS server or cluster. Defaults to
	// empty: an embedded server with JetStream in DataDir.
	NATSURL string
	// NATSListen is where the embedded server listens. Defaults to
	// "127.0.0.1:4222"; a free port is chosen when that one is taken.
	NATSListen string
	// NATSUser and NATSPassword: the embedded server's login for external
	// clients (generated once and logged once when the password is unset;
	// the server then listens on loopback only), or statusflow's login to
	// NATSURL. NATSNKey is a public user nkey external clients may use
	// instead. NATSCreds, NATSNKeySeed and NATSToken are statusflow's
	// credentials for NATSURL.
	NATSUser, NATSPassword, NATSNKey string
	// MediaProcesses, MediaProcessesPerInstance and MediaProcessMemory
	// bound FFmpeg: processes at once, one instance's share of them, and
	// each process's address space in bytes. 0: the media package defaults
	// (CPUs, half of them, 2 GiB).
	MediaProcesses, MediaProcessesPerInstance int
	MediaProcessMemory                        int64
	NATSCreds, NATSNKeySeed, NATSToken        string
	// NATSPrefix is the first token of every subject. Defaults to "statusflow".
	NATSPrefix string
	// AccountToken is the TokenAccount. Defaults to empty: one is generated on
	// first start, logged once, and only its hash kept.
	AccountToken string
	// RateLimit is requests per minute per token. Defaults to 100.
	RateLimit int
	// MediaAllowPrivate lets media URLs resolve to private addresses. Defaults to false.
	MediaAllowPrivate bool
	// MediaMaxBytes is the largest media file accepted. Defaults to 16777216.
	MediaMaxBytes int64
	// WebhookAllowPrivate lets webhook URLs resolve to private addresses. Defaults to false.
	WebhookAllowPrivate bool
	// WebhookMaxAttempts is how many attempts a webhook delivery gets before
	// it fails. 0: the webhooks package's default (12).
	WebhookMaxAttempts int
	// WebhookRetryBase is the first retry's wait, doubled each retry, with
	// jitter. 0: the default (2s).
	WebhookRetryBase time.Duration
	// WebhookRetryMax caps the wait between delivery attempts. 0: the default (1h).
	WebhookRetryMax time.Duration
	// WebhookTimeout bounds one delivery request. 0: the default (10s).
	WebhookTimeout time.Duration
	// WebhookLease is how long a claimed delivery belongs to its worker
	// before another may take it (crash recovery). 0: timeout + 30s.
	WebhookLease time.Duration
	// WebhookPollInterval is how often the delivery worker looks for due
	// retries. 0: the default (1s).
	WebhookPollInterval time.Duration
	// WebhookSecretGrace is how long a rotated-out secret keeps signing. 0:
	// the default (24h).
	WebhookSecretGrace time.Duration
	// ScheduleGrace: a scheduled publication found due this much after its
	// time (statusflow was down) still runs; later, it fails as
	// schedule_missed. 0: the default (5m).
	ScheduleGrace time.Duration
	// SchedulePrepareAhead is how long before its time a scheduled status's
	// media is fetched and converted. 0: the default (1m).
	SchedulePrepareAhead time.Duration
	// ScheduleLease is how long a running schedule belongs to its replica
	// before another may take it over (crash recovery). 0: the default (5m).
	ScheduleLease time.Duration
	// ClusterReplica is this replica's id; non-empty turns clustering on
	// (instance leases in NATS). Defaults to empty: one process owns everything.
	ClusterReplica string
	// ClusterLeaseTTL is an instance lease's lifetime. 0: cluster.TTLDefault (10s).
	ClusterLeaseTTL time.Duration
	// NATSReplicas is how many NATS servers keep a copy of statusflow's
	// streams and KV buckets (3 on a 3-node cluster, so losing a node loses
	// nothing). 0: 1.
	NATSReplicas int
	// WAVersion pins the WhatsApp Web version whatsmeow advertises
	// ("2.3000.1031080782"). Defaults to empty: fetch the current one at
	// start and every 6 h, keeping the last one fetched when a fetch fails.
	WAVersion string
	// LogFormat is "json", "text" or "" (json, or text on a terminal).
	LogFormat string
	// OTLPEndpoint is the OpenTelemetry collector spans are exported to over
	// OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://collector:4318).
	// Defaults to empty: no export.
	OTLPEndpoint string
}

// Defaults.
const (
	AddrDefault          = ":8080"
	DataDirDefault       = "./data"
	NATSListenDefault    = "127.0.0.1:4222"
	NATSPrefixDefault    = "statusflow"
	RateLimitDefault     = 100
	MediaMaxBytesDefault = 16 << 20
)

type setting struct {
	name, usage, def string
	set              func(c *Config, v string) error
}

var settings = []setting{
	{"STATUSFLOW_ADDR", "HTTP listen address", AddrDefault, func(c *Config, v string) error { c.Addr = v; return nil }},
	{"STATUSFLOW_DATA_DIR", "where the embedded defaults keep their files", DataDirDefault, func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"STATUSFLOW_DATABASE_URL", "postgres://… selects PostgreSQL (default: SQLite in the data dir)", "", func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
	{"STATUSFLOW_NATS_URL", "nats://… uses an existing server (default: embedded)", "", func(c *Config, v string) error { c.NATSURL = v; return nil }},
	{"STATUSFLOW_NATS_LISTEN", "where the embedded NATS server listens", NATSListenDefault, func(c *Config, v string) error { c.NATSListen = v; return nil }},
	{"STATUSFLOW_NATS_USER", "embedded NATS: the user external clients log in as (default statusflow); with STATUSFLOW_NATS_URL: statusflow's user", "", func(c *Config, v string) error { c.NATSUser = v; return nil }},
	{"STATUSFLOW_NATS_PASSWORD", "its password (embedded: generated once, logged once, when unset)", "", func(c *Config, v string) error { c.NATSPassword = v; return nil }},
	{"STATUSFLOW_NATS_NKEY", "embedded NATS: a public user nkey (U…) external clients may log in with", "", func(c *Config, v string) error { c.NATSNKey = v; return nil }},
	{"STATUSFLOW_NATS_CREDS", "with STATUSFLOW_NATS_URL: a .creds file (JWT and nkey seed)", "", func(c *Config, v string) error { c.NATSCreds = v; return nil }},
	{"STATUSFLOW_NATS_NKEY_SEED", "with STATUSFLOW_NATS_URL: an nkey seed file", "", func(c *Config, v string) error { c.NATSNKeySeed = v; return nil }},
	{"STATUSFLOW_NATS_TOKEN", "with STATUSFLOW_NATS_URL: a token", "", func(c *Config, v string) error { c.NATSToken = v; return nil }},
	{"STATUSFLOW_MEDIA_PROCESSES", "ffmpeg processes at once (default: CPUs)", "", func(c *Config, v string) (err error) { c.MediaProcesses, err = optInt(v); return }},
	{"STATUSFLOW_MEDIA_PROCESSES_PER_INSTANCE", "ffmpeg processes one instance may hold at once (default: half)", "", func(c *Config, v string) (err error) { c.MediaProcessesPerInstance, err = optInt(v); return }},
	{"STATUSFLOW_MEDIA_PROCESS_MEMORY", "address space of each ffmpeg process in bytes (default 2 GiB)", "", func(c *Config, v string) (err error) {
		n, err := optInt(v)
		c.MediaProcessMemory = int64(n)
		return err
	}},
	{"STATUSFLOW_NATS_PREFIX", "first token of every NATS subject", NATSPrefixDefault, func(c *Config, v string) error { c.NATSPrefix = v; return nil }},
	{"STATUSFLOW_ACCOUNT_TOKEN", "the TokenAccount (default: generated once)", "", func(c *Config, v string) error { c.AccountToken = v; return nil }},
	{"STATUSFLOW_RATE_LIMIT", "requests per minute per token", strconv.Itoa(RateLimitDefault), func(c *Config, v string) (err error) { c.RateLimit, err = strconv.Atoi(v); return }},
	{"STATUSFLOW_MEDIA_ALLOW_PRIVATE", "let media URLs resolve to private addresses", "false", func(c *Config, v string) (err error) { c.MediaAllowPrivate, err = strconv.ParseBool(v); return }},
	{"STATUSFLOW_MEDIA_MAX_BYTES", "largest media file accepted", strconv.Itoa(MediaMaxBytesDefault), func(c *Config, v string) (err error) { c.MediaMaxBytes, err = strconv.ParseInt(v, 10, 64); return }},
	{"STATUSFLOW_WEBHOOK_ALLOW_PRIVATE", "let webhook URLs resolve to private addresses", "false", func(c *Config, v string) (err error) { c.WebhookAllowPrivate, err = strconv.ParseBool(v); return }},
	{"STATUSFLOW_WEBHOOK_MAX_ATTEMPTS", "attempts per webhook delivery before it fails (default 12)", "", func(c *Config, v string) (err error) {
		if v != "" {
			c.WebhookMaxAttempts, err = strconv.Atoi(v)
		}
		return
	}},
	{"STATUSFLOW_WEBHOOK_RETRY_BASE", "first webhook retry wait, doubled each retry (default 2s)", "", func(c *Config, v string) (err error) { c.WebhookRetryBase, err = optDuration(v); return }},
	{"STATUSFLOW_WEBHOOK_RETRY_MAX", "longest wait between webhook attempts (default 1h)", "", func(c *Config, v string) (err error) { c.WebhookRetryMax, err = optDuration(v); return }},
	{"STATUSFLOW_WEBHOOK_TIMEOUT", "timeout of one webhook delivery (default 10s)", "", func(c *Config, v string) (err error) { c.WebhookTimeout, err = optDuration(v); return }},
	{"STATUSFLOW_WEBHOOK_LEASE", "how long a claimed delivery is held before another worker may take it (default timeout+30s)", "", func(c *Config, v string) (err error) { c.WebhookLease, err = optDuration(v); return }},
	{"STATUSFLOW_WEBHOOK_POLL_INTERVAL", "how often due webhook retries are looked for (default 1s)", "", func(c *Config, v string) (err error) { c.WebhookPollInterval, err = optDuration(v); return }},
	{"STATUSFLOW_WEBHOOK_SECRET_GRACE", "how long a rotated-out webhook secret still signs (default 24h)", "", func(c *Config, v string) (err error) { c.WebhookSecretGrace, err = optDuration(v); return }},
	{"STATUSFLOW_SCHEDULE_GRACE", "a scheduled publication due while statusflow was down still runs if found within this window, else fails as schedule_missed (default 5m)", "", func(c *Config, v string) (err error) { c.ScheduleGrace, err = optDuration(v); return }},
	{"STATUSFLOW_SCHEDULE_PREPARE_AHEAD", "how long before its time a scheduled status's media is fetched and converted (default 1m)", "", func(c *Config, v string) (err error) { c.SchedulePrepareAhead, err = optDuration(v); return }},
	{"STATUSFLOW_SCHEDULE_LEASE", "how long a running schedule is held before another replica may take it over (default 5m)", "", func(c *Config, v string) (err error) { c.ScheduleLease, err = optDuration(v); return }},
	{"STATUSFLOW_CLUSTER_REPLICA", "this replica's id; set, it turns clustering on: each instance's session opens only on the replica holding its lease in NATS (needs PostgreSQL and STATUSFLOW_NATS_URL)", "", func(c *Config, v string) error { c.ClusterReplica = v; return nil }},
	{"STATUSFLOW_CLUSTER_LEASE_TTL", "how long an instance lease lives without renewal: the bound on how long a dead replica's instances stay unowned (default 10s)", "", func(c *Config, v string) (err error) { c.ClusterLeaseTTL, err = optDuration(v); return }},
	{"STATUSFLOW_NATS_REPLICAS", "copies of statusflow's JetStream streams and KV buckets in a NATS cluster: 3 on a 3-node cluster survives a node's loss (default 1)", "", func(c *Config, v string) (err error) { c.NATSReplicas, err = optInt(v); return }},
	{"STATUSFLOW_WA_VERSION", "pin the WhatsApp Web version advertised, e.g. 2.3000.1031080782 (default: fetch the current one)", "", func(c *Config, v string) error { c.WAVersion = v; return nil }},
	{"STATUSFLOW_LOG_FORMAT", "json or text (default: json, text on a terminal)", "", func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "export OpenTelemetry spans over OTLP/HTTP to this collector URL (default: none)", "", func(c *Config, v string) error { c.OTLPEndpoint = v; return nil }},
}

// Load reads the environment, then the flags in args (same names, e.g.
// -STATUSFLOW_ADDR=:9090), over the defaults.
func Load(args []string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := &Config{}
	fs := flag.NewFlagSet("statusflow", flag.ContinueOnError)
	values := map[string]*string{}
	for _, s := range settings {
		v := s.def
		if e := getenv(s.name); e != "" {
			v = e
		}
		values[s.name] = fs.String(s.name, v, s.usage)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, s := range settings {
		if err := s.set(c, strings.TrimSpace(*values[s.name])); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return c, c.Validate()
}

// Validate checks the settings; errors name the environment variable.
func (c *Config) Validate() error {
	if c.RateLimit <= 0 {
		return fmt.Errorf("STATUSFLOW_RATE_LIMIT must be a positive number of requests per minute")
	}
	if c.NATSReplicas < 0 || c.NATSReplicas > 5 {
		return fmt.Errorf("STATUSFLOW_NATS_REPLICAS must be between 1 and 5 (JetStream's limit)")
	}
	if c.MediaMaxBytes <= 0 {
		return fmt.Errorf("STATUSFLOW_MEDIA_MAX_BYTES must be positive")
	}
	if c.NATSPrefix == "" || strings.ContainsAny(c.NATSPrefix, ". *>\t") {
		return fmt.Errorf("STATUSFLOW_NATS_PREFIX must be one subject token")
	}
	if c.NATSURL != "" && !strings.Contains(c.NATSURL, "://") {
		return fmt.Errorf("STATUSFLOW_NATS_URL must be a nats:// URL")
	}
	if c.DatabaseURL != "" && strings.Contains(c.DatabaseURL, "://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.HasPrefix(c.DatabaseURL, "sqlite://") {
		return fmt.Errorf("STATUSFLOW_DATABASE_URL must be a postgres:// URL or a SQLite file path")
	}
	return nil
}

// optDuration parses a Go duration ("500ms", "2s", "1h"); empty is 0 (the default).
func optDuration(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	return time.ParseDuration(v)
}

// optInt parses an optional integer: "" is 0 (the default).
func optInt(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	return strconv.Atoi(v)
}
