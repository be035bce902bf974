package media

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/statusflow/statusflow/internal/ssrf"
)

// Defaults of [Config].
const (
	// DefaultMaxBytes is the largest media file accepted: 16 MiB, WhatsApp's
	// own limit for status media.
	DefaultMaxBytes int64 = 16 << 20
	// DefaultDownloadTimeout bounds a whole download.
	DefaultDownloadTimeout = 60 * time.Second
	// DefaultProcessTimeout bounds one ffmpeg or ffprobe run.
	DefaultProcessTimeout = 2 * time.Minute
)

// MaxVideoSeconds is the longest video a status may carry; longer videos are
// trimmed to it.
const MaxVideoSeconds = 30

// MaxVoiceSeconds is the longest voice status WhatsApp takes: 30 s when voice
// status launched (February 2023), one minute since 2024 (WABetaInfo, reported
// e.g. by read.pk/14501 and techdailyinsider.com). Longer audio is refused
// rather than cut, since cutting speech mid-sentence is worse than a clear
// 400 the caller can act on.
const MaxVoiceSeconds = 60

// Config configures [New]. The zero value is usable: every field has a default.
type Config struct {
	// AllowPrivate lets media URLs resolve to loopback, private, link-local
	// and metadata addresses (tests, trusted LANs). Environment
	// STATUSFLOW_MEDIA_ALLOW_PRIVATE. Defaults to false.
	AllowPrivate bool

	// AllowAddrs are exact IP:port pairs fetched even though their address is
	// private (see [GuardConfig.AllowAddrs]). Defaults to none.
	AllowAddrs []netip.AddrPort

	// LookupIP resolves media host names; the result is still checked when
	// dialling. Tests use it instead of real DNS. Defaults to the system
	// resolver.
	LookupIP ssrf.LookupFunc

	// MaxBytes is the largest media file accepted, enforced while the body
	// streams (a larger download is cut off, whatever Content-Length says).
	// Environment STATUSFLOW_MEDIA_MAX_BYTES. Defaults to [DefaultMaxBytes]
	// (16777216).
	MaxBytes int64

	// MaxRedirects is how many redirects a download may follow. Defaults to
	// [DefaultMaxRedirects] (5).
	MaxRedirects int

	// ConnectTimeout bounds each connect and TLS handshake. Defaults to
	// [DefaultConnectTimeout] (10 s).
	ConnectTimeout time.Duration

	// HeaderTimeout bounds the wait for response headers. Defaults to
	// [DefaultHeaderTimeout] (15 s).
	HeaderTimeout time.Duration

	// DownloadTimeout bounds a whole download, body included, so a server
	// that trickles bytes cannot hold a request. Defaults to
	// [DefaultDownloadTimeout] (60 s).
	DownloadTimeout time.Duration

	// TempDir is where downloads and conversions are written; each request
	// gets its own subdirectory, removed when the request is done. Defaults to
	// [os.TempDir].
	TempDir string

	// FFmpegPath and FFprobePath are the binaries run. Defaults to "ffmpeg"
	// and "ffprobe" looked up on PATH. When missing, [New] still succeeds,
	// [Pipeline.Ready] says what is missing and media statuses fail.
	FFmpegPath  string
	FFprobePath string

	// MaxProcesses bounds how many ffmpeg/ffprobe processes run at once;
	// further requests wait their turn (or their context). Defaults to
	// [runtime.NumCPU].
	MaxProcesses int

	// ProcessTimeout bounds one ffmpeg or ffprobe run; a run that exceeds it
	// is killed. Defaults to [DefaultProcessTimeout] (2 min).
	ProcessTimeout time.Duration

	// Uploads, when set, serves mediaUrls of uploaded files (POST
	// /api/media/:instance) from disk instead of fetching them. Defaults to
	// none: such URLs are then fetched like any other.
	Uploads *Uploads

	// MaxProcessesPerInstance is the share of the MaxProcesses slots one
	// instance's media may hold at once, so one user's heavy media never
	// holds every slot. Defaults to half of MaxProcesses (at least 1).
	MaxProcessesPerInstance int

	// ProcessMemory bounds the address space of each ffmpeg or ffprobe
	// process (RLIMIT_AS, set by prlimit(1) before the tool starts, so no
	// allocation escapes it): past it the tool fails and the media is
	// refused. Defaults to [DefaultProcessMemory] (2 GiB).
	ProcessMemory int64

	// ProcessCPU bounds the CPU time of each ffmpeg or ffprobe process
	// (RLIMIT_CPU, all its threads together). Defaults to ProcessTimeout.
	ProcessCPU time.Duration
}

// DefaultProcessMemory is the default [Config.ProcessMemory]: 2 GiB of
// address space (not resident memory: thread stacks and libraries count, and
// x264 starts 1.5 threads per core). The pixel limits keep every accepted
// input far below it; a decompression bomb that slipped past them stops here.
const DefaultProcessMemory int64 = 2 << 30

// WithDefaults returns the config with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = ssrf.DefaultMaxRedirects
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = ssrf.DefaultConnectTimeout
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = ssrf.DefaultHeaderTimeout
	}
	if c.DownloadTimeout == 0 {
		c.DownloadTimeout = DefaultDownloadTimeout
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	if c.FFmpegPath == "" {
		c.FFmpegPath = "ffmpeg"
	}
	if c.FFprobePath == "" {
		c.FFprobePath = "ffprobe"
	}
	if c.MaxProcesses == 0 {
		c.MaxProcesses = runtime.NumCPU()
	}
	if c.ProcessTimeout == 0 {
		c.ProcessTimeout = DefaultProcessTimeout
	}
	if c.MaxProcessesPerInstance == 0 {
		c.MaxProcessesPerInstance = max(1, c.MaxProcesses/2)
	}
	if c.ProcessMemory == 0 {
		c.ProcessMemory = DefaultProcessMemory
	}
	if c.ProcessCPU == 0 {
		c.ProcessCPU = max(c.ProcessTimeout, time.Second)
	}
	return c
}

// Validate reports the first setting that cannot work. It is called by [New]
// after [Config.WithDefaults]. Missing ffmpeg binaries are not an error here.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("STATUSFLOW_MEDIA_MAX_BYTES must be > 0, got %d", c.MaxBytes))
	}
	if c.MaxProcesses < 1 {
		errs = append(errs, fmt.Errorf("media MaxProcesses must be >= 1, got %d", c.MaxProcesses))
	}
	if c.MaxProcessesPerInstance < 1 || c.MaxProcessesPerInstance > c.MaxProcesses {
		errs = append(errs, fmt.Errorf("media MaxProcessesPerInstance must be 1..MaxProcesses, got %d", c.MaxProcessesPerInstance))
	}
	if c.ProcessMemory < 64<<20 || c.ProcessCPU < time.Second {
		errs = append(errs, fmt.Errorf("media ProcessMemory must be >= 64 MiB and ProcessCPU >= 1s"))
	}
	for name, d := range map[string]time.Duration{"ConnectTimeout": c.ConnectTimeout, "HeaderTimeout": c.HeaderTimeout,
		"DownloadTimeout": c.DownloadTimeout, "ProcessTimeout": c.ProcessTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("media %s must be >= 0, got %s", name, d))
		}
	}
	if fi, err := os.Stat(c.TempDir); err != nil {
		errs = append(errs, fmt.Errorf("media TempDir: %w", err))
	} else if !fi.IsDir() {
		errs = append(errs, fmt.Errorf("media TempDir %q is not a directory", c.TempDir))
	}
	return errors.Join(errs...)
}

func (c Config) guardConfig() ssrf.GuardConfig {
	return ssrf.GuardConfig{
		AllowPrivate:   c.AllowPrivate,
		AllowAddrs:     c.AllowAddrs,
		LookupIP:       c.LookupIP,
		MaxRedirects:   c.MaxRedirects,
		ConnectTimeout: c.ConnectTimeout,
		HeaderTimeout:  c.HeaderTimeout,
		Timeout:        c.DownloadTimeout,
	}
}
