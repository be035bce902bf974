package media

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/ssrf"
	"github.com/statusflow/statusflow/internal/tracing"
)

// Pipeline prepares media statuses: it fetches, sniffs, validates and
// converts media so that WhatsApp clients can play it. It is safe for
// concurrent use. Create it with [New].
type Pipeline struct {
	cfg      Config
	log      *slog.Logger
	client   *http.Client
	slots    *slots // ffmpeg/ffprobe process slots, with a per-instance share
	prlimit  string // prlimit(1), which puts each tool under ProcessMemory and ProcessCPU; "" when missing
	ffmpeg   string
	ffprobe  string
	notReady error // why media cannot be prepared (missing tools); nil when ready
	openFile func(path string) (*os.File, error)
}

// New returns a pipeline. It fails only on an invalid config: missing ffmpeg
// or ffprobe binaries (or an FFmpeg build without the encoders we need) are
// recorded, not fatal, so the server still starts; [Pipeline.Ready] then
// reports them and Prepare fails with a clear media_validation_failed. log may
// be nil.
func New(cfg Config, log *slog.Logger) (*Pipeline, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{
		cfg:    cfg,
		log:    log,
		client: ssrf.NewGuardedClient(cfg.guardConfig()),
		slots:  newSlots(cfg.MaxProcesses, cfg.MaxProcessesPerInstance),
	}
	if path, err := exec.LookPath("prlimit"); err == nil {
		p.prlimit = path
	} else {
		log.Warn("prlimit (util-linux) was not found: ffmpeg runs without memory and CPU-time limits")
	}
	var missing []error
	if path, err := exec.LookPath(cfg.FFmpegPath); err != nil {
		missing = append(missing, fmt.Errorf("ffmpeg was not found (%q): install FFmpeg (Debian package ffmpeg)", cfg.FFmpegPath))
	} else {
		p.ffmpeg = path
	}
	if path, err := exec.LookPath(cfg.FFprobePath); err != nil {
		missing = append(missing, fmt.Errorf("ffprobe was not found (%q): install FFmpeg (Debian package ffmpeg)", cfg.FFprobePath))
	} else {
		p.ffprobe = path
	}
	if p.ffmpeg != "" {
		if err := p.checkEncoders(); err != nil {
			missing = append(missing, err)
		}
	}
	p.notReady = errors.Join(missing...)
	if p.notReady != nil {
		log.Warn("media statuses are unavailable", "reason", p.notReady.Error())
	}
	return p, nil
}

// requiredEncoders are the FFmpeg encoders the pipeline uses.
var requiredEncoders = []string{"libopus", "libx264", "aac", "mjpeg", "pcm_s16le"}

// checkEncoders asks FFmpeg once, at start, whether it has every encoder we
// use, so a minimal build is reported by Ready instead of failing per request.
func (p *Pipeline) checkEncoders() error {
	// Not through run: this is a startup check, not bound by ProcessTimeout
	// (which may be tuned short) nor waiting for a process slot.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &limitedBuffer{max: 4 << 20}
	cmd := exec.CommandContext(ctx, p.ffmpeg, "-hide_banner", "-encoders")
	cmd.Env = []string{}
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg at %s does not run: %w", p.ffmpeg, err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			have[f[1]] = true
		}
	}
	var lack []string
	for _, e := range requiredEncoders {
		if !have[e] {
			lack = append(lack, e)
		}
	}
	if len(lack) > 0 {
		return fmt.Errorf("ffmpeg at %s lacks the encoders %s", p.ffmpeg, strings.Join(lack, ", "))
	}
	return nil
}

// Ready returns nil when media can be prepared, or an error that says in
// words what is missing (for /readyz).
func (p *Pipeline) Ready() error {
	if p.notReady != nil {
		return fmt.Errorf("media pipeline: %w", p.notReady)
	}
	return nil
}

// Close releases idle download connections. The pipeline stays usable.
func (p *Pipeline) Close() { p.client.CloseIdleConnections() }

// Prepare fetches req.URL and turns it into a file WhatsApp takes for
// req.Type. The result must be released with Cleanup; on error nothing is
// left on disk. Errors are *errcode.Error:
//
//   - media_download_failed, "Failed to download media from URL": a bad or
//     refused URL (scheme, private address), a network error, an HTTP error
//     status, too many redirects, a download slower than DownloadTimeout.
//   - media_validation_failed: too large, empty, undecodable, a declared
//     mimeType the bytes contradict, a file of another kind than req.Type.
//   - unsupported_media_type: the bytes are of a type req.Type does not take.
//   - audio_conversion_failed: FFmpeg could not convert the audio; the message
//     carries FFmpeg's reason.
func (p *Pipeline) Prepare(ctx context.Context, req Request) (pm *Prepared, err error) {
	switch req.Type {
	case "image", "video", "audio":
	default:
		return nil, errcode.Errorf(errcode.CodeInvalid, "Type must be one of: text, image, video, audio")
	}
	if p.notReady != nil {
		return nil, errcode.Wrap(errcode.CodeMediaValidationFailed,
			"media statuses are not available on this server: FFmpeg is not installed or incomplete", p.notReady)
	}
	upInst, upID, isUpload := ParseUploadURL(req.URL)
	isUpload = isUpload && p.cfg.Uploads != nil
	isData := strings.HasPrefix(strings.ToLower(req.URL), "data:")
	if !isUpload && !isData {
		if err := ssrf.CheckURL(req.URL); err != nil {
			return nil, downloadFailed(err)
		}
	}
	if isUpload && upInst != req.Instance {
		return nil, downloadFailed(ErrUploadOtherInstance)
	}
	dir, err := os.MkdirTemp(p.cfg.TempDir, "statusflow-media-")
	if err != nil {
		return nil, errcode.AsError(err) // internal_error, or insufficient_storage on a full disk
	}
	// Every way out of here except success removes the directory, a panic too.
	done := false
	defer func() {
		if !done {
			os.RemoveAll(dir)
		}
	}()
	ctx = withInstance(ctx, req.Instance)
	w := &work{p: p, dir: dir, in: filepath.Join(dir, "in"), req: req}
	fctx, endFetch := stage(ctx, "media.fetch")
	var header []byte
	switch {
	case isUpload:
		header, err = p.fromUpload(fctx, req.Instance, upID, w.in)
	case isData:
		header, err = p.fromDataURL(req.URL, w.in)
	default:
		header, err = p.download(fctx, req.URL, w.in)
	}
	endFetch(err)
	if err != nil {
		return nil, err
	}
	w.header = header
	detected, f := sniff(header)
	w.format = f
	if req.MimeType != "" && !declaredMatches(req.MimeType, detected, f) {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed,
			"the declared mimeType %s does not match the file, which is %s", req.MimeType, detected)
	}
	if f == nil {
		return nil, errcode.Errorf(errcode.CodeUnsupportedMediaType,
			"the file is %s; type %s accepts %s", detected, req.Type, accepted(req.Type))
	}
	if f.kind != req.Type && !(req.Type == "audio" && f.kind == "video" && w.audioOnly(ctx)) {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed,
			"the file is %s (%s), not %s; type %s accepts %s", an(f.kind), detected, an(req.Type), req.Type, accepted(req.Type))
	}
	cctx, endConvert := stage(ctx, "media.convert")
	switch req.Type {
	case "audio":
		pm, err = w.audio(cctx)
	case "video":
		pm, err = w.video(cctx)
	default:
		pm, err = w.image(cctx)
	}
	endConvert(err)
	if err != nil {
		return nil, err
	}
	os.Remove(w.in) // the upload only needs the output; free the disk now
	fi, err := os.Stat(pm.Path)
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	pm.Size = fi.Size()
	pm.Type = req.Type
	pm.Remove = func() { os.RemoveAll(dir) }
	if isUpload {
		// Removed after use: once WhatsApp holds the media, the upload has
		// served its purpose (a failed publish keeps it for a retry).
		pm.Used = func() { p.cfg.Uploads.Delete(upID) }
	}
	done = true
	return pm, nil
}

// stage starts the span and the latency timer of one step of Prepare.
func stage(ctx context.Context, name string) (context.Context, func(error)) {
	done := metrics.StageTimer(name)
	ctx, end := tracing.Start(ctx, name)
	return ctx, func(err error) { end(err); done(err) }
}

func an(kind string) string {
	switch kind {
	case "image":
		return "an image"
	case "audio":
		return "audio"
	}
	return "a " + kind
}

// toolNoise matches FFmpeg's log prefixes ("[mov,mp4,m4a @ 0x55f3daaa81c0] "),
// which mean nothing to a user and vary from run to run.
var toolNoise = regexp.MustCompile(`\[[^\]]* @ 0x[0-9a-f]+\] `)

func downloadFailed(err error) *errcode.Error {
	return errcode.Wrap(errcode.CodeMediaDownloadFailed, "Failed to download media from URL", err)
}

// download streams url into path, never holding the body in memory, and
// returns the first bytes for sniffing. The size cap is enforced on the bytes
// actually read (Content-Length is only an early refusal), so a server that
// lies about it, or sends a compressed bomb, stops at MaxBytes+1.
func (p *Pipeline) download(ctx context.Context, url, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, downloadFailed(err)
	}
	req.Header.Set("User-Agent", "statusflow-media/1")
	req.Header.Set("Accept", "image/*, video/*, audio/*, */*;q=0.5")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, downloadFailed(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, downloadFailed(fmt.Errorf("HTTP status %s", resp.Status))
	}
	if resp.ContentLength > p.cfg.MaxBytes {
		return nil, tooLarge(p.cfg.MaxBytes)
	}
	f, err := p.createFile(path)
	if err != nil {
		return nil, errcode.AsError(err)
	}
	defer f.Close()
	head := &headWriter{max: sniffLen}
	n, err := io.Copy(io.MultiWriter(f, head), io.LimitReader(resp.Body, p.cfg.MaxBytes+1))
	if n > p.cfg.MaxBytes {
		return nil, tooLarge(p.cfg.MaxBytes)
	}
	if errcode.IsDiskFull(err) {
		// Our disk, not the media's server: a server error of its own, not
		// media_download_failed.
		return nil, errcode.AsError(err)
	}
	if err != nil {
		return nil, downloadFailed(err)
	}
	if err := f.Close(); err != nil {
		return nil, errcode.AsError(err)
	}
	if n == 0 {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the media file is empty")
	}
	return head.buf, nil
}

// createFile creates a download's file; tests replace it to write to
// /dev/full (a real ENOSPC from the kernel).
func (p *Pipeline) createFile(path string) (*os.File, error) {
	if p.openFile != nil {
		return p.openFile(path)
	}
	return os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
}

func tooLarge(limit int64) *errcode.Error {
	return errcode.Errorf(errcode.CodeMediaValidationFailed, "the media file is larger than the limit of %d bytes", limit)
}

// headWriter keeps the first max bytes written to it.
type headWriter struct {
	max int
	buf []byte
}

func (h *headWriter) Write(b []byte) (int, error) {
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

// work is one Prepare call's state: its private temp directory and input.
type work struct {
	p      *Pipeline
	dir    string
	in     string
	header []byte
	format *format
	req    Request
}

func (w *work) path(name string) string { return filepath.Join(w.dir, name) }

// input returns the input arguments: local files only, demuxer forced, and
// FFmpeg's own decoder refusing any frame larger than the kind's pixel
// limit (-max_pixels), so the dimensions are checked on what FFmpeg
// decodes, not only on the header we read.
func (w *work) input(extra ...string) []string {
	args := append(append([]string{}, ffmpegPrelude...), inputGuard...)
	px := maxVideoPixels
	if w.format.kind == "image" {
		px = maxImagePixels
	}
	args = append(args, "-max_pixels", strconv.Itoa(px))
	args = append(args, extra...)
	return append(args, "-f", w.format.demuxer, "-i", "file:"+w.in)
}

// reason turns a tool error into a user-facing reason, with our temp paths
// replaced by what they are.
func (w *work) reason(err error) string {
	var re *runError
	msg := err.Error()
	if errors.As(err, &re) {
		msg = re.reason
	}
	msg = toolNoise.ReplaceAllString(msg, "")
	msg = strings.ReplaceAll(msg, "file:"+w.in, "input")
	msg = strings.ReplaceAll(msg, w.in, "input")
	msg = strings.ReplaceAll(msg, "file:"+w.dir+string(filepath.Separator), "")
	msg = strings.ReplaceAll(msg, w.dir+string(filepath.Separator), "")
	return msg
}

// fromUpload copies an uploaded file of instance into path (the pipeline
// converts its own copy, so the upload stays intact for a retry until used).
func (p *Pipeline) fromUpload(ctx context.Context, instance, id, path string) ([]byte, error) {
	_, src, err := p.cfg.Uploads.Open(ctx, instance, id)
	if err != nil {
		return nil, downloadFailed(err)
	}
	defer src.Close()
	return p.writeCapped(src, path, p.cfg.MaxBytes)
}

// fromDataURL decodes a data: URL (RFC 2397) into path. Its decoded size is
// capped at [MaxDataURLBytes] (and MaxBytes, if lower).
func (p *Pipeline) fromDataURL(raw, path string) ([]byte, error) {
	limit := min(int64(MaxDataURLBytes), p.cfg.MaxBytes)
	b, err := decodeDataURL(raw)
	if err != nil {
		return nil, downloadFailed(err)
	}
	if int64(len(b)) > limit {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed,
			"the data: URL carries %d bytes, more than its limit of %d; upload larger files with POST /api/media/:instance", len(b), limit)
	}
	return p.writeCapped(bytes.NewReader(b), path, limit)
}

// decodeDataURL returns the bytes of `data:[<type>][;base64],<data>`.
func decodeDataURL(raw string) ([]byte, error) {
	rest := raw[len("data:"):]
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, errors.New("invalid data: URL: no comma")
	}
	if strings.HasSuffix(strings.ToLower(meta), ";base64") {
		data = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, data)
		if d, err := url.PathUnescape(data); err == nil {
			data = d
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(data); err == nil {
				return b, nil
			}
		}
		return nil, errors.New("invalid data: URL: bad base64")
	}
	d, err := url.PathUnescape(data)
	if err != nil {
		return nil, fmt.Errorf("invalid data: URL: %w", err)
	}
	return []byte(d), nil
}

// writeCapped writes r into a new file at path, at most limit bytes, and
// returns the first bytes for sniffing.
func (p *Pipeline) writeCapped(r io.Reader, path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	defer f.Close()
	head := &headWriter{max: sniffLen}
	n, err := io.Copy(io.MultiWriter(f, head), io.LimitReader(r, limit+1))
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	if n > limit {
		return nil, tooLarge(limit)
	}
	if n == 0 {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the media file is empty")
	}
	if err := f.Close(); err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	return head.buf, nil
}
