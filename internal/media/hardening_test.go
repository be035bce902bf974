package media_test

import (
	"bytes"
	"context"
	stdimage "image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/media"
	"github.com/statusflow/statusflow/internal/status"
)

// brokenCRCPNG is a w×h PNG whose IHDR checksum is broken.
func brokenCRCPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, stdimage.NewGray(stdimage.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	b[29] ^= 0xFF // IHDR's CRC: 8 signature + 4 length + 4 type + 13 data
	return b
}

func serveBytes(t *testing.T, b []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(b) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPipeline_ImageDimensions: an image past the pixel limit is refused
// even when its header checksum is broken (Go's decoder then cannot read
// it, FFmpeg decodes it anyway); an image whose size cannot be read at all
// is refused rather than handed to FFmpeg.
func TestPipeline_ImageDimensions(t *testing.T) {
	t.Parallel()
	p, tmp := newPipeline(t, media.Config{AllowPrivate: true})
	t.Run("BrokenCRCTooWide", func(t *testing.T) {
		url := serveBytes(t, brokenCRCPNG(t, 9000, 8))
		_, err := p.Prepare(context.Background(), status.MediaRequest{Type: "image", URL: url + "/a.png"})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "9000x8 pixels, more than the limit of 8192 pixels a side")
	})
	t.Run("BrokenCRCWithinLimit", func(t *testing.T) {
		url := serveBytes(t, brokenCRCPNG(t, 64, 48))
		pm, err := p.Prepare(context.Background(), status.MediaRequest{Type: "image", URL: url + "/a.png"})
		if err != nil {
			t.Fatalf("a small PNG with a bad checksum (FFmpeg decodes it): %v", err)
		}
		if pm.Width != 64 || pm.Height != 48 {
			t.Fatalf("size %dx%d", pm.Width, pm.Height)
		}
		pm.Cleanup()
	})
	t.Run("UnreadableHeader", func(t *testing.T) {
		// A GIF signature and nothing after it: no logical screen size.
		url := serveBytes(t, []byte("GIF89a"))
		_, err := p.Prepare(context.Background(), status.MediaRequest{Type: "image", URL: url + "/a.gif"})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "")
	})
	requireEmpty(t, tmp)
}

// TestPipeline_ProcessLimits: every FFmpeg process runs under the memory
// limit: one too small to decode a picture makes it fail, and the media is
// refused with what happened.
func TestPipeline_ProcessLimits(t *testing.T) {
	t.Parallel()
	srv := mediaServer(t)
	fixture(t, "img.png")
	p, tmp := newPipeline(t, media.Config{AllowPrivate: true, ProcessMemory: 64 << 20})
	_, err := p.Prepare(context.Background(), status.MediaRequest{Type: "image", URL: srv.URL + "/f/img.png"})
	requireCode(t, err, errcode.CodeMediaValidationFailed, "the image could not be decoded")
	requireEmpty(t, tmp)
}

// TestPipeline_DiskFull: a download our disk cannot hold is the server's
// own error (insufficient_storage, HTTP 507), not media_download_failed.
func TestPipeline_DiskFull(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	srv := mediaServer(t)
	fixture(t, "img.png")
	p, _ := newPipeline(t, media.Config{AllowPrivate: true})
	media.SetOpenFile(p, func(string) (*os.File, error) { return os.OpenFile("/dev/full", os.O_WRONLY, 0) })
	_, err := p.Prepare(context.Background(), status.MediaRequest{Type: "image", URL: srv.URL + "/f/img.png"})
	requireCode(t, err, errcode.CodeInsufficientStorage, "out of disk space")
}

// TestPipeline_TruncatedAudio: an audio download cut short (here a WAV cut
// inside its header) is the caller's bad media, a 400
// media_validation_failed, not audio_conversion_failed (a 500).
func TestPipeline_TruncatedAudio(t *testing.T) {
	t.Parallel()
	fixture(t, "ramp.wav")
	full, err := os.ReadFile(fixtureFile("ramp.wav"))
	if err != nil {
		t.Fatal(err)
	}
	p, tmp := newPipeline(t, media.Config{AllowPrivate: true})
	for _, cut := range []int{16, 30, 40} {
		url := serveBytes(t, full[:cut])
		_, err := p.Prepare(context.Background(), status.MediaRequest{Type: "audio", URL: url + "/a.wav", Voice: true})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "")
	}
	requireEmpty(t, tmp)
}
