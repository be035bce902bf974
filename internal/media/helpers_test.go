package media_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/media"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// recipes generate the test media with FFmpeg: small and low-resolution so
// the suite stays fast. Each is built once per test binary, on first use.
var recipes = map[string][]string{
	"tone.mp3": {"-f", "lavfi", "-i", "sine=frequency=440:duration=5", "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"},
	// Rising loudness, so the waveform has a known shape.
	"ramp.wav":     {"-f", "lavfi", "-i", "aevalsrc=sin(2*PI*440*t)*t/4:d=4:s=16000", "-c:a", "pcm_s16le", "-f", "wav"},
	"mono.opus":    {"-f", "lavfi", "-i", "sine=frequency=330:duration=3", "-ac", "1", "-c:a", "libopus", "-b:a", "24k", "-f", "ogg"},
	"stereo.opus":  {"-f", "lavfi", "-i", "sine=frequency=330:duration=3", "-ac", "2", "-c:a", "libopus", "-b:a", "48k", "-f", "ogg"},
	"tone60.mp3":   {"-f", "lavfi", "-i", "sine=frequency=440:duration=60", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"},
	"tone65.opus":  {"-f", "lavfi", "-i", "sine=frequency=440:duration=65", "-ac", "1", "-c:a", "libopus", "-b:a", "16k", "-f", "ogg"},
	"v10.mp4":      video(10, "libx264", "mp4"),
	"v45.mp4":      video(45, "libx264", "mp4"),
	"mpeg4.mkv":    {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=15:duration=4", "-f", "lavfi", "-i", "sine=duration=4", "-c:v", "mpeg4", "-c:a", "libmp3lame", "-shortest", "-f", "matroska"},
	"img.png":      image("png"),
	"img.webp":     image("libwebp"),
	"img.jpg":      image("mjpeg"),
	"clear.png":    {"-f", "lavfi", "-i", "color=c=black@0.0:s=160x120,format=rgba", "-frames:v", "1", "-c:v", "png", "-f", "image2", "-update", "1"},
	"img.gif":      {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=5:duration=1", "-c:v", "gif", "-f", "gif"},
	"noaudio.mp4":  {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=15:duration=3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mp4"},
	"voice.webm":   {"-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-ac", "1", "-c:a", "libopus", "-f", "webm"},
	"silence.opus": {"-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono:d=2", "-c:a", "libopus", "-f", "ogg"},
}

func video(seconds int, codec, container string) []string {
	d := fmt.Sprint(seconds)
	return []string{"-f", "lavfi", "-i", "testsrc=size=160x120:rate=15:duration=" + d, "-f", "lavfi", "-i", "sine=frequency=440:duration=" + d,
		"-c:v", codec, "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-shortest", "-f", container}
}

func image(codec string) []string {
	return []string{"-f", "lavfi", "-i", "testsrc=size=160x120:rate=1:duration=1", "-frames:v", "1", "-c:v", codec, "-f", "image2", "-update", "1"}
}

var fixtures sync.Map // name → func() (string, error)

// fixture returns the path of a generated test file.
func fixture(t testing.TB, name string) string {
	t.Helper()
	fn, _ := fixtures.LoadOrStore(name, sync.OnceValues(func() (string, error) { return makeFixture(name) }))
	path, err := fn.(func() (string, error))()
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return path
}

func makeFixture(name string) (string, error) {
	path := filepath.Join(fixtureDir, name)
	switch name {
	case "truncated.mp4": // moov is at the end of a non-faststart MP4: half the file is undecodable
		b, err := os.ReadFile(fixtureFile("v10.mp4"))
		if err != nil {
			return "", err
		}
		return path, os.WriteFile(path, b[:len(b)/2], 0o600)
	case "text.txt":
		return path, os.WriteFile(path, bytes.Repeat([]byte("this is not a picture but just some text.\n"), 40), 0o600)
	case "rot90.mp4": // a phone's portrait video: landscape frames plus a 90° display matrix
		b, err := os.ReadFile(fixtureFile("noaudio.mp4"))
		if err != nil {
			return "", err
		}
		i := bytes.Index(b, []byte("tkhd"))
		if i < 0 || b[i+4] != 0 {
			return "", fmt.Errorf("no version-0 tkhd box")
		}
		m := b[i+44 : i+44+36]
		for k, v := range []int32{0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000} {
			binary.BigEndian.PutUint32(m[4*k:], uint32(v))
		}
		return path, os.WriteFile(path, b, 0o600)
	case "rot6.jpg": // img.jpg with an EXIF orientation of 6 (rotate 90° clockwise)
		b, err := os.ReadFile(fixtureFile("img.jpg"))
		if err != nil {
			return "", err
		}
		return path, os.WriteFile(path, withOrientation(b, 6), 0o600)
	}
	args, ok := recipes[name]
	if !ok {
		return "", fmt.Errorf("no recipe")
	}
	args = append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...), path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	return path, nil
}

// fixtureFile builds a dependency of another fixture (no testing.TB there).
func fixtureFile(name string) string {
	fn, _ := fixtures.LoadOrStore(name, sync.OnceValues(func() (string, error) { return makeFixture(name) }))
	path, _ := fn.(func() (string, error))()
	return path
}

// withOrientation inserts an APP1 Exif segment carrying one orientation tag
// right after the JPEG's SOI marker.
func withOrientation(jpeg []byte, o uint16) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("MM")
	binary.Write(&tiff, binary.BigEndian, uint16(42))
	binary.Write(&tiff, binary.BigEndian, uint32(8))
	binary.Write(&tiff, binary.BigEndian, uint16(1))      // one entry
	binary.Write(&tiff, binary.BigEndian, uint16(0x0112)) // Orientation
	binary.Write(&tiff, binary.BigEndian, uint16(3))      // SHORT
	binary.Write(&tiff, binary.BigEndian, uint32(1))
	binary.Write(&tiff, binary.BigEndian, o)
	binary.Write(&tiff, binary.BigEndian, uint16(0))
	binary.Write(&tiff, binary.BigEndian, uint32(0)) // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(jpeg[:2])
	out.Write([]byte{0xFF, 0xE1})
	binary.Write(&out, binary.BigEndian, uint16(len(seg)+2))
	out.Write(seg)
	out.Write(jpeg[2:])
	return out.Bytes()
}

// mediaServer serves fixtures on loopback: /f/<name>[?ct=<content type>].
func mediaServer(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/f/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		path := fixtureFile(name)
		f, err := os.Open(path)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		if ct := r.URL.Query().Get("ct"); ct != "" {
			w.Header().Set("Content-Type", ct)
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		if r.URL.Query().Get("chunked") == "" {
			fi, _ := f.Stat()
			w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
		}
		io.Copy(w, f)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// newPipeline returns a pipeline writing to its own temp dir, which the test
// can check is empty afterwards.
func newPipeline(t testing.TB, cfg media.Config) (*media.Pipeline, string) {
	t.Helper()
	if cfg.TempDir == "" {
		cfg.TempDir = t.TempDir()
	}
	p, err := media.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("media.New: %v", err)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("pipeline not ready: %v", err)
	}
	t.Cleanup(p.Close)
	return p, cfg.TempDir
}

// requireEmpty fails when a temporary file was left behind.
func requireEmpty(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("temporary file left behind: %s", e.Name())
	}
}

// requireCode checks err is a *errcode.Error with code and a message containing want.
func requireCode(t testing.TB, err error, code errcode.Code, want string) *errcode.Error {
	t.Helper()
	var se *errcode.Error
	if !errors.As(err, &se) {
		t.Fatalf("error = %v (%T), want *errcode.Error %s", err, err, code)
	}
	if se.Code != code {
		t.Fatalf("code = %s (%v), want %s", se.Code, err, code)
	}
	t.Logf("%s: %s", se.Code, se.Message)
	if !strings.Contains(se.Message, want) {
		t.Fatalf("message = %q, want it to contain %q", se.Message, want)
	}
	return se
}

// spy wraps the pipeline to remember what was prepared (size and SHA-256 of
// the file the core uploads).
type spy struct {
	p  *media.Pipeline
	mu sync.Mutex
	// by URL
	size map[string]int64
	sum  map[string][]byte
}

func (s *spy) Prepare(ctx context.Context, req status.MediaRequest) (*status.PreparedMedia, error) {
	pm, err := s.p.Prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	f, err := pm.Open()
	if err != nil {
		pm.Cleanup()
		return nil, err
	}
	defer f.Close()
	h := sha256.New() // streamed: the memory benchmark runs through this spy too
	n, err := io.Copy(h, f)
	if err != nil || n != pm.Size {
		pm.Cleanup()
		return nil, fmt.Errorf("prepared size %d, file has %d bytes (%v)", pm.Size, n, err)
	}
	s.mu.Lock()
	s.size[req.URL], s.sum[req.URL] = pm.Size, h.Sum(nil)
	s.mu.Unlock()
	return pm, nil
}

// core is the real publishing core on the sandbox engine, as main wires it.
type core struct {
	svc *status.Service
	st  *store.Store
	spy *spy
	mgr *whatsapp.Manager
}

func newCore(t testing.TB, p *media.Pipeline) *core {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st := storetest.New(t, store.SQLite)
	mgr := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
	t.Cleanup(func() { mgr.Stop(context.Background()) })
	sp := &spy{p: p, size: map[string]int64{}, sum: map[string][]byte{}}
	svc := status.NewService(mgr, st, sp, events.NewRecorder(st, log), nil, log)
	if _, _, err := mgr.Create(context.Background(), "sales", "sandbox", "tokenhash"); err != nil {
		t.Fatalf("create instance: %v", err)
	}
	return &core{svc: svc, st: st, spy: sp, mgr: mgr}
}

// publish runs one publish command and returns the recorded message.
func (c *core) publish(t testing.TB, args status.PublishArgs) *waE2E.Message {
	t.Helper()
	ctx := context.Background()
	res, err := c.svc.Execute(ctx, status.Command{Instance: "sales", Args: args})
	if err != nil {
		t.Fatalf("publish %s: %v", args.Type, err)
	}
	list, err := c.st.SandboxStatusList(ctx, "sales", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range list {
		if rec.MessageID == res.MessageID {
			m, err := whatsapp.RecordedMessage(rec)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("message %s not recorded", res.MessageID)
	return nil
}
