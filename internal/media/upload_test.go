package media_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/media"
)

// clock is a settable clock for upload expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestUploads(t *testing.T) {
	t.Parallel()
	type bundle struct {
		up    *media.Uploads
		dir   string
		clk   *clock
		tmp   string
		p     *media.Pipeline
		png   []byte
		ctx   context.Context
		url   func(inst, id string) string
		limit int64
	}
	setup := func(t *testing.T) *bundle {
		b := &bundle{dir: filepath.Join(t.TempDir(), "uploads"), clk: &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}, ctx: context.Background(), limit: 64 << 10}
		var err error
		b.up, err = media.NewUploads(media.UploadConfig{Dir: b.dir, MaxBytes: b.limit, Now: b.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		b.p, b.tmp = newPipeline(t, media.Config{Uploads: b.up, MaxBytes: b.limit})
		t.Cleanup(func() { requireEmpty(t, b.tmp) })
		b.png, err = os.ReadFile(fixture(t, "img.png"))
		if err != nil {
			t.Fatal(err)
		}
		b.url = func(inst, id string) string { return "http://127.0.0.1:1" + media.UploadPath(inst, id) }
		return b
	}
	files := func(t *testing.T, dir string) []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}

	t.Run("PutAndPrepareFromDisk", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u, err := b.up.Put(b.ctx, "sales", "image/png", "a.png", bytes.NewReader(b.png))
		if err != nil {
			t.Fatal(err)
		}
		if u.MimeType != "image/png" || u.Kind != "image" || u.Size != int64(len(b.png)) || !u.ExpiresAt.Equal(b.clk.Now().Add(time.Hour)) {
			t.Fatalf("upload = %+v", u)
		}
		// The URL points at a closed port: only a read from disk can succeed.
		pm, err := b.p.Prepare(b.ctx, media.Request{Instance: "sales", Type: "image", URL: b.url("sales", u.ID)})
		if err != nil {
			t.Fatal(err)
		}
		if pm.Mimetype != "image/jpeg" || pm.Width != 160 {
			t.Fatalf("prepared %+v", pm)
		}
		if len(files(t, b.dir)) != 2 {
			t.Fatalf("upload should stay until used: %v", files(t, b.dir))
		}
		pm.Used()
		pm.Cleanup()
		if got := files(t, b.dir); len(got) != 0 {
			t.Fatalf("upload not removed after use: %v", got)
		}
		_, err = b.p.Prepare(b.ctx, media.Request{Instance: "sales", Type: "image", URL: b.url("sales", u.ID)})
		requireCode(t, err, errcode.CodeMediaDownloadFailed, "Failed to download media from URL")
		if !errors.Is(err, media.ErrUploadNotFound) {
			t.Fatalf("err = %v, want ErrUploadNotFound", err)
		}
	})

	t.Run("SizeCap", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		big := append(append([]byte{}, b.png...), make([]byte, b.limit)...)
		_, err := b.up.Put(b.ctx, "sales", "", "", bytes.NewReader(big))
		requireCode(t, err, errcode.CodeMediaValidationFailed, "larger than the limit of 65536 bytes")
		if got := files(t, b.dir); len(got) != 0 {
			t.Fatalf("left behind: %v", got)
		}
		exact := append(append([]byte{}, b.png...), make([]byte, int(b.limit)-len(b.png))...)
		if _, err := b.up.Put(b.ctx, "sales", "", "", bytes.NewReader(exact)); err != nil {
			t.Fatalf("a file of exactly the limit: %v", err)
		}
	})

	t.Run("WrongType", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.up.Put(b.ctx, "sales", "text/plain", "", strings.NewReader("just some text, not media at all\n"))
		requireCode(t, err, errcode.CodeUnsupportedMediaType, "the file is text/plain")
		_, err = b.up.Put(b.ctx, "sales", "video/mp4", "", bytes.NewReader(b.png))
		requireCode(t, err, errcode.CodeMediaValidationFailed, "declared type video/mp4 does not match the file, which is image/png")
		_, err = b.up.Put(b.ctx, "sales", "", "", bytes.NewReader(nil))
		requireCode(t, err, errcode.CodeMediaValidationFailed, "empty")
		if got := files(t, b.dir); len(got) != 0 {
			t.Fatalf("left behind: %v", got)
		}
		// A raw body sent as application/octet-stream is judged by its bytes.
		if _, err := b.up.Put(b.ctx, "sales", "application/octet-stream", "", bytes.NewReader(b.png)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Expired", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u, err := b.up.Put(b.ctx, "sales", "", "", bytes.NewReader(b.png))
		if err != nil {
			t.Fatal(err)
		}
		b.clk.Add(time.Hour)
		_, err = b.p.Prepare(b.ctx, media.Request{Instance: "sales", Type: "image", URL: b.url("sales", u.ID)})
		requireCode(t, err, errcode.CodeMediaDownloadFailed, "Failed to download media from URL")
		if !errors.Is(err, media.ErrUploadNotFound) {
			t.Fatalf("err = %v", err)
		}
		if got := files(t, b.dir); len(got) != 0 {
			t.Fatalf("expired upload not removed: %v", got)
		}
	})

	t.Run("SweepRemovesExpired", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, err := b.up.Put(b.ctx, "sales", "", "", bytes.NewReader(b.png)); err != nil {
			t.Fatal(err)
		}
		b.clk.Add(59 * time.Minute)
		if n := b.up.Sweep(); n != 0 {
			t.Fatalf("swept %d live files", n)
		}
		b.clk.Add(time.Minute)
		if n := b.up.Sweep(); n != 2 {
			t.Fatalf("swept %d files, want 2", n)
		}
	})

	t.Run("OtherInstance", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u, err := b.up.Put(b.ctx, "support", "", "", bytes.NewReader(b.png))
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.p.Prepare(b.ctx, media.Request{Instance: "sales", Type: "image", URL: b.url("support", u.ID)})
		requireCode(t, err, errcode.CodeMediaDownloadFailed, "Failed to download media from URL")
		if !errors.Is(err, media.ErrUploadOtherInstance) {
			t.Fatalf("err = %v", err)
		}
		// Even with the path rewritten to name this instance.
		_, err = b.p.Prepare(b.ctx, media.Request{Instance: "sales", Type: "image", URL: b.url("sales", u.ID)})
		if !errors.Is(err, media.ErrUploadOtherInstance) {
			t.Fatalf("err = %v", err)
		}
		if got := files(t, b.dir); len(got) != 2 {
			t.Fatalf("the owner's upload must stay: %v", got)
		}
	})

	t.Run("RestartCleansCrashLeftovers", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		live, err := b.up.Put(b.ctx, "sales", "", "", bytes.NewReader(b.png))
		if err != nil {
			t.Fatal(err)
		}
		// What a crash can leave: a half-written file, a description whose
		// data never got renamed, data without a description.
		for name, body := range map[string]string{
			"up_aaaaaaaaaaaaaaaaaaaaaaaaaa.part": "half",
			"up_bbbbbbbbbbbbbbbbbbbbbbbbbb.json": `{"id":"up_bbbbbbbbbbbbbbbbbbbbbbbbbb","instance":"sales","expiresAt":"2030-01-01T00:00:00Z"}`,
			"up_cccccccccccccccccccccccccc":      "data",
		} {
			if err := os.WriteFile(filepath.Join(b.dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := media.NewUploads(media.UploadConfig{Dir: b.dir, Now: b.clk.Now}); err != nil {
			t.Fatal(err)
		}
		got := files(t, b.dir)
		if len(got) != 2 || got[0] != live.ID || got[1] != live.ID+".json" {
			t.Fatalf("after restart: %v, want only %s and its .json", got, live.ID)
		}
	})

	t.Run("DataURL", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.png)
		pm, err := b.p.Prepare(b.ctx, media.Request{Instance: "sales", Type: "image", URL: u})
		if err != nil {
			t.Fatal(err)
		}
		pm.Cleanup()
		// Above the data: URL limit (512 KiB, or MaxBytes when lower).
		big := "data:image/png;base64," + base64.StdEncoding.EncodeToString(append(append([]byte{}, b.png...), make([]byte, b.limit)...))
		_, err = b.p.Prepare(b.ctx, media.Request{Instance: "sales", Type: "image", URL: big})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "more than its limit of 65536")
		_, err = b.p.Prepare(b.ctx, media.Request{Instance: "sales", Type: "image", URL: "data:image/png;base64,@@@"})
		requireCode(t, err, errcode.CodeMediaDownloadFailed, "Failed to download media from URL")
	})

	t.Run("ParseUploadURL", func(t *testing.T) {
		t.Parallel()
		for raw, want := range map[string]bool{
			"http://x/api/media/sales/up_abcdefghijklmnopqrstuvwxyz":       true,
			"https://h:9/api/media/a%20b/up_abcdefghijklmnopqrstuvwxyz":    true,
			"http://x/api/media/sales/up_abc":                              false,
			"http://x/api/media/sales/other":                               false,
			"ftp://x/api/media/sales/up_abcdefghijklmnopqrstuvwxyz":        false,
			"http://x/files/api/media/sales/up_abcdefghijklmnopqrstuvwxyz": false,
		} {
			if _, _, ok := media.ParseUploadURL(raw); ok != want {
				t.Errorf("ParseUploadURL(%q) = %v, want %v", raw, ok, want)
			}
		}
		inst, _, _ := media.ParseUploadURL("https://h:9/api/media/a%20b/up_abcdefghijklmnopqrstuvwxyz")
		if inst != "a b" {
			t.Errorf("instance = %q", inst)
		}
	})
}
