package media

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
)

// Defaults of [UploadConfig].
const (
	// DefaultUploadTTL is how long an uploaded file may be published.
	DefaultUploadTTL = time.Hour
	// MaxDataURLBytes is the largest file a `data:` URL in mediaUrl may
	// carry, decoded: 512 KiB. Its base64 form (about 700 KB) still fits the
	// 1 MiB JSON body limit and NATS's default 1 MB payload, so a data: URL
	// works from every front door. Larger files go through POST /api/media.
	MaxDataURLBytes = 512 << 10
)

// UploadIDPrefix starts every upload id; with the path shape it marks a
// mediaUrl as one of ours (see [ParseUploadURL]).
const UploadIDPrefix = "up_"

// Errors of [Uploads]. Prepare turns them into media_download_failed.
var (
	// ErrUploadNotFound: no such upload, or it expired, or it was already
	// published (an upload is removed after use).
	ErrUploadNotFound = errors.New("the uploaded media does not exist: it expired (uploads last an hour), was already published, or never existed; upload it again")
	// ErrUploadOtherInstance: the upload belongs to another instance.
	ErrUploadOtherInstance = errors.New("the uploaded media belongs to another instance; upload it to this instance")
)

// UploadConfig configures [NewUploads].
type UploadConfig struct {
	// Dir holds the uploads; it is created if missing. Required.
	Dir string
	// MaxBytes is the largest upload (STATUSFLOW_MEDIA_MAX_BYTES). Defaults
	// to [DefaultMaxBytes].
	MaxBytes int64
	// TTL is how long an upload stays publishable. Defaults to
	// [DefaultUploadTTL].
	TTL time.Duration
	// Now is the clock; tests move it. Defaults to time.Now.
	Now func() time.Time
}

// Uploads keeps uploaded media files until they are published or expire.
//
// Each upload is two files in Dir: `<id>` (the bytes) and `<id>.json` (who
// owns it, its type, when it expires). A file is written as `<id>.part` and
// renamed only when complete, after its `.json`, so a crash leaves either a
// `.part` or a `.json` without data; [NewUploads] removes both at start, and
// [Uploads.Sweep] (run every minute by the app) removes expired uploads.
// Nothing is held in memory, so a restart loses no live upload.
//
// With [Uploads.SetShared] (clustering on) an upload is checked here, then
// kept in a store every replica reads instead of this disk.
type Uploads struct {
	cfg    UploadConfig
	mu     sync.Mutex // serialises Sweep against itself; files are independent otherwise
	shared UploadBlobs
}

// UploadBlobs keeps uploads where every replica reads them
// (internal/cluster's JetStream object store is one).
type UploadBlobs interface {
	// PutUpload stores an upload's bytes with its description.
	PutUpload(ctx context.Context, up *Upload, r io.Reader) error
	// GetUpload returns an upload and its bytes; [ErrUploadNotFound] when none.
	GetUpload(ctx context.Context, id string) (*Upload, io.ReadCloser, error)
	// InfoUpload describes an upload; [ErrUploadNotFound] when none.
	InfoUpload(ctx context.Context, id string) (*Upload, error)
	// DeleteUpload removes an upload; a missing one is not an error.
	DeleteUpload(ctx context.Context, id string) error
}

// SetShared keeps the uploads in b from now on (clustering on: every
// replica reads them). Call before serving.
func (u *Uploads) SetShared(b UploadBlobs) { u.shared = b }

// Upload describes a stored upload.
type Upload struct {
	ID        string    `json:"id"`
	Instance  string    `json:"instance"`
	MimeType  string    `json:"mimeType"`
	Kind      string    `json:"kind"` // image, video or audio
	FileName  string    `json:"fileName,omitempty"`
	Size      int64     `json:"size"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// NewUploads opens (creating) the upload directory and removes what a crash
// or an earlier run left: partial files, orphans and expired uploads.
func NewUploads(cfg UploadConfig) (*Uploads, error) {
	if cfg.Dir == "" {
		return nil, errors.New("uploads: Dir is required")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultUploadTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	u := &Uploads{cfg: cfg}
	u.sweep(true)
	return u, nil
}

// MaxBytes is the largest upload accepted.
func (u *Uploads) MaxBytes() int64 { return u.cfg.MaxBytes }

// TTL is how long an upload stays publishable.
func (u *Uploads) TTL() time.Duration { return u.cfg.TTL }

var uploadEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var uploadIDRe = regexp.MustCompile(`^up_[a-z2-7]{26}$`)

func newUploadID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return UploadIDPrefix + uploadEnc.EncodeToString(b[:])
}

// Put stores r (at most MaxBytes) for instance. The bytes decide the type:
// declared is only checked against them. Errors are *errcode.Error:
// media_validation_failed (empty, too large, declared type contradicted),
// unsupported_media_type (not an image, video or audio the pipeline takes).
// Nothing is left on disk on error.
func (u *Uploads) Put(ctx context.Context, instance, declared, fileName string, r io.Reader) (up *Upload, err error) {
	id := newUploadID()
	part := filepath.Join(u.cfg.Dir, id+".part")
	f, err := os.OpenFile(part, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(part)
			os.Remove(u.metaPath(id))
		}
	}()
	head := &headWriter{max: sniffLen}
	n, err := io.Copy(io.MultiWriter(f, head), io.LimitReader(ctxReader{ctx, r}, u.cfg.MaxBytes+1))
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInvalid, "Invalid request body: "+err.Error(), err)
	}
	if n > u.cfg.MaxBytes {
		return nil, tooLarge(u.cfg.MaxBytes)
	}
	if n == 0 {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the media file is empty")
	}
	detected, fm := sniff(head.buf)
	if fm == nil {
		return nil, errcode.Errorf(errcode.CodeUnsupportedMediaType,
			"the file is %s; statusflow accepts images (%s), videos (%s) and audio (%s)", detected, accepted("image"), accepted("video"), accepted("audio"))
	}
	if declared != "" && !isGeneric(declared) && !declaredMatches(declared, detected, fm) {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed,
			"the declared type %s does not match the file, which is %s", declared, detected)
	}
	if err := f.Close(); err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	up = &Upload{ID: id, Instance: instance, MimeType: detected, Kind: fm.kind, FileName: fileName, Size: n,
		ExpiresAt: u.cfg.Now().Add(u.cfg.TTL).UTC().Truncate(time.Second)}
	if u.shared != nil {
		// Checked here; kept where every replica reads it. The part file is
		// removed on the way out.
		defer os.Remove(part)
		pf, err := os.Open(part)
		if err != nil {
			return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
		}
		defer pf.Close()
		if err := u.shared.PutUpload(ctx, up, pf); err != nil {
			return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", fmt.Errorf("uploads: shared store: %w", err))
		}
		return up, nil
	}
	meta, _ := json.Marshal(up)
	if err := os.WriteFile(u.metaPath(id), meta, 0o600); err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	if err := os.Rename(part, u.dataPath(id)); err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	return up, nil
}

// isGeneric reports a declared type that says nothing (raw bodies sent by
// tools that do not know better).
func isGeneric(mt string) bool {
	mt = strings.ToLower(strings.TrimSpace(strings.SplitN(mt, ";", 2)[0]))
	return mt == "application/octet-stream" || mt == "binary/octet-stream" || mt == "*/*"
}

// Open returns an upload of instance and its bytes (close them). It fails
// with [ErrUploadNotFound] (also once expired) or [ErrUploadOtherInstance].
func (u *Uploads) Open(ctx context.Context, instance, id string) (*Upload, io.ReadCloser, error) {
	if u.shared != nil {
		if !uploadIDRe.MatchString(id) {
			return nil, nil, ErrUploadNotFound
		}
		up, rc, err := u.shared.GetUpload(ctx, id)
		if err != nil {
			return nil, nil, sharedErr(err)
		}
		if err := u.check(up, instance); err != nil {
			rc.Close()
			return nil, nil, err
		}
		return up, rc, nil
	}
	up, err := u.Stat(ctx, instance, id)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(u.dataPath(id))
	if err != nil {
		return nil, nil, ErrUploadNotFound
	}
	return up, f, nil
}

// sharedErr is an error of the shared store as the pipeline reports it.
func sharedErr(err error) error {
	if errors.Is(err, ErrUploadNotFound) {
		return ErrUploadNotFound
	}
	return fmt.Errorf("the uploaded media could not be read from the cluster's store: %w", err)
}

// check refuses an expired upload or one of another instance.
func (u *Uploads) check(up *Upload, instance string) error {
	if !u.cfg.Now().Before(up.ExpiresAt) {
		return ErrUploadNotFound
	}
	if up.Instance != instance {
		return ErrUploadOtherInstance
	}
	return nil
}

// Stat is [Uploads.Open] without the bytes.
func (u *Uploads) Stat(ctx context.Context, instance, id string) (*Upload, error) {
	if !uploadIDRe.MatchString(id) {
		return nil, ErrUploadNotFound
	}
	if u.shared != nil {
		up, err := u.shared.InfoUpload(ctx, id)
		if err != nil {
			return nil, sharedErr(err)
		}
		return up, u.check(up, instance)
	}
	b, err := os.ReadFile(u.metaPath(id))
	if err != nil {
		return nil, ErrUploadNotFound
	}
	var up Upload
	if err := json.Unmarshal(b, &up); err != nil {
		return nil, ErrUploadNotFound
	}
	if !u.cfg.Now().Before(up.ExpiresAt) {
		u.Delete(id)
		return nil, ErrUploadNotFound
	}
	if up.Instance != instance {
		return nil, ErrUploadOtherInstance
	}
	if _, err := os.Stat(u.dataPath(id)); err != nil {
		return nil, ErrUploadNotFound
	}
	return &up, nil
}

// Delete removes an upload; a missing one is not an error.
func (u *Uploads) Delete(id string) {
	if !uploadIDRe.MatchString(id) {
		return
	}
	if u.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u.shared.DeleteUpload(ctx, id) // else it expires with the bucket's TTL
		return
	}
	os.Remove(u.dataPath(id))
	os.Remove(u.metaPath(id))
}

// Sweep removes expired uploads and what failed writes left. It returns how
// many files it removed.
func (u *Uploads) Sweep() int { return u.sweep(false) }

// partGrace is how old a `.part` or a lone `.json` must be before a sweep
// during the run removes it: younger ones may be an upload in progress.
const partGrace = 10 * time.Minute

func (u *Uploads) sweep(atStart bool) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	entries, err := os.ReadDir(u.cfg.Dir)
	if err != nil {
		return 0
	}
	now := u.cfg.Now()
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = true
	}
	removed := 0
	rm := func(name string) {
		if os.Remove(filepath.Join(u.cfg.Dir, name)) == nil {
			removed++
		}
	}
	old := func(e os.DirEntry) bool {
		if atStart {
			return true // nothing is in progress before the server starts
		}
		fi, err := e.Info()
		return err == nil && now.Sub(fi.ModTime()) > partGrace
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".part"):
			if old(e) {
				rm(name)
			}
		case strings.HasSuffix(name, ".json"):
			id := strings.TrimSuffix(name, ".json")
			b, err := os.ReadFile(filepath.Join(u.cfg.Dir, name))
			var up Upload
			if err != nil || json.Unmarshal(b, &up) != nil || !now.Before(up.ExpiresAt) {
				rm(name)
				if have[id] {
					rm(id)
				}
				continue
			}
			if !have[id] && old(e) {
				rm(name)
			}
		default:
			if !have[name+".json"] && !have[name+".part"] {
				rm(name) // data without its description: unusable
			}
		}
	}
	return removed
}

func (u *Uploads) dataPath(id string) string { return filepath.Join(u.cfg.Dir, id) }
func (u *Uploads) metaPath(id string) string { return filepath.Join(u.cfg.Dir, id+".json") }

// UploadPath is the path of an upload's URL: /api/media/<instance>/<id>.
func UploadPath(instance, id string) string {
	return "/api/media/" + url.PathEscape(instance) + "/" + id
}

// ParseUploadURL recognises a mediaUrl that points at an upload: any http(s)
// URL whose path is /api/media/<instance>/up_<26 base32 chars>, whatever its
// host (the server cannot know every name it is reached by). Such a URL is
// read from disk, never fetched, so no SSRF exception is needed.
func ParseUploadURL(raw string) (instance, id string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", false
	}
	rest, found := strings.CutPrefix(u.EscapedPath(), "/api/media/")
	if !found {
		return "", "", false
	}
	inst, id, found := strings.Cut(rest, "/")
	if !found || !uploadIDRe.MatchString(id) {
		return "", "", false
	}
	inst, err = url.PathUnescape(inst)
	if err != nil || inst == "" {
		return "", "", false
	}
	return inst, id, true
}

// ctxReader stops a copy when ctx is done (a client that went away).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
