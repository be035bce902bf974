package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/statusflow/statusflow/internal/apptest"
)

// TestServer_SandboxMedia publishes an image and a video (made by FFmpeg)
// on a sandbox instance, then downloads what the sandbox kept: the bytes are
// the ones the recorded message's fileSHA256 names, with the recorded
// mimetype; another instance's token is refused, an unknown id is 404, and
// deleting the instance removes the files.
func TestServer_SandboxMedia(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pic.png"), testPNG(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x568:rate=15:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
		"-shortest", "-f", "mp4", filepath.Join(dir, "clip.mp4")).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	files := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(files.Close)

	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("shop", "sandbox")
	other := a.CreateInstance("other", "sandbox")
	ids := map[string]string{}
	for typ, name := range map[string]string{"image": "pic.png", "video": "clip.mp4"} {
		r := a.Do("POST", "/api/message/status/shop", tok, map[string]any{"type": typ, "mediaUrl": files.URL + "/" + name})
		if r.Code != 200 {
			t.Fatalf("publish %s: %d %s", typ, r.Code, r.Raw)
		}
		ids[typ], _ = r.Data()["messageId"].(string)
	}
	r := a.Do("GET", "/api/sandbox/shop/statuses", tok, nil)
	list, _ := r.Body["statuses"].([]any)
	if r.Code != 200 || len(list) != 2 {
		t.Fatalf("statuses: %d %s", r.Code, r.Raw)
	}
	for _, x := range list {
		st := x.(map[string]any)
		m, _ := st["media"].(map[string]any)
		id, _ := st["messageId"].(string)
		wantType := map[string]string{"image": "image/jpeg", "video": "video/mp4"}[st["type"].(string)]
		if m == nil || m["mimetype"] != wantType {
			t.Fatalf("status %s media %v", id, m)
		}
		for _, tk := range []string{tok, apptest.AccountToken} {
			got := a.Do("GET", "/api/sandbox/shop/media/"+id, tk, nil)
			if got.Code != 200 {
				t.Fatalf("media %s: %d %s", id, got.Code, got.Raw)
			}
			sum := sha256.Sum256(got.Raw)
			if hex.EncodeToString(sum[:]) != m["sha256"] || float64(len(got.Raw)) != m["bytes"] {
				t.Fatalf("media %s: %d bytes sha256 %x, recorded %v", id, len(got.Raw), sum, m)
			}
			if ct := got.Header.Get("Content-Type"); ct != wantType {
				t.Fatalf("media %s: Content-Type %q, want %q", id, ct, wantType)
			}
		}
		if got := a.Do("GET", "/api/sandbox/shop/media/"+id, other, nil); got.Code != 403 {
			t.Fatalf("other instance's token: %d %s", got.Code, got.Raw)
		}
		// The other instance's route knows nothing of shop's message.
		if got := a.Do("GET", "/api/sandbox/other/media/"+id, other, nil); got.Code != 404 || got.ErrorMessage() == "" {
			t.Fatalf("other instance, shop's id: %d %s", got.Code, got.Raw)
		}
	}
	for _, id := range []string{"3EB0NOSUCHID", "..", "%2e%2e%2f%2e%2e%2fsecret"} {
		if got := a.Do("GET", "/api/sandbox/shop/media/"+id, tok, nil); got.Code != 404 || got.ErrorMessage() == "" {
			t.Fatalf("unknown id %q: %d %s", id, got.Code, got.Raw)
		}
	}
	// A text status has no media.
	r = a.Do("POST", "/api/message/status/shop", tok, map[string]any{"type": "text", "message": "hi"})
	if got := a.Do("GET", "/api/sandbox/shop/media/"+r.Data()["messageId"].(string), tok, nil); got.Code != 404 {
		t.Fatalf("text status media: %d %s", got.Code, got.Raw)
	}

	kept := filepath.Join(a.DataDir, "sandbox", "shop")
	if ents, err := os.ReadDir(kept); err != nil || len(ents) != 2 {
		t.Fatalf("kept files: %v %v", ents, err)
	}
	if got := a.Do("DELETE", "/api/instance/delete/shop", apptest.AccountToken, nil); got.Code != 200 {
		t.Fatalf("delete: %d %s", got.Code, got.Raw)
	}
	if _, err := os.Stat(kept); !os.IsNotExist(err) {
		t.Fatalf("after delete, %s: %v", kept, err)
	}
}
