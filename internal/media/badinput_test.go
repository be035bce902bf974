package media_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/media"
	"github.com/statusflow/statusflow/internal/ssrf"
	"github.com/statusflow/statusflow/internal/status"
)

// TestPipeline_BadInput: every bad input gets its documented code and leaves
// no temporary file behind.
func TestPipeline_BadInput(t *testing.T) {
	t.Parallel()
	srv := mediaServer(t)
	ctx := context.Background()

	// prepare runs one request on a fresh pipeline and checks the temp dir
	// is empty afterwards, whatever happened.
	prepare := func(t *testing.T, cfg media.Config, req status.MediaRequest) error {
		t.Helper()
		p, tmp := newPipeline(t, cfg)
		pm, err := p.Prepare(ctx, req)
		if err == nil {
			pm.Cleanup()
			t.Fatalf("Prepare(%s) succeeded, want an error", req.URL)
		}
		requireEmpty(t, tmp)
		return err
	}
	loopback := media.Config{AllowPrivate: true}

	t.Run("TextServedAsJPEG", func(t *testing.T) {
		t.Parallel()
		err := prepare(t, loopback, status.MediaRequest{Type: "image", URL: srv.URL + "/f/text.txt?ct=image/jpeg"})
		se := requireCode(t, err, errcode.CodeUnsupportedMediaType, "text/plain")
		if !strings.Contains(se.Message, "image/jpeg, image/png, image/webp, image/gif") {
			t.Errorf("message %q does not say what type image accepts", se.Message)
		}
	})

	t.Run("DeclaredMimeTypeLies", func(t *testing.T) {
		t.Parallel()
		err := prepare(t, loopback, status.MediaRequest{Type: "image", URL: srv.URL + "/f/text.txt", MimeType: "image/jpeg"})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "declared mimeType image/jpeg does not match the file, which is text/plain")
	})

	t.Run("WrongKindForType", func(t *testing.T) {
		t.Parallel()
		err := prepare(t, loopback, status.MediaRequest{Type: "image", URL: srv.URL + "/f/v10.mp4"})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "the file is a video (video/mp4), not an image")
	})

	t.Run("VoiceTooLong", func(t *testing.T) {
		t.Parallel()
		// 65 s measured; WhatsApp's voice status takes 60 s. A caller's
		// shorter duration does not get it through: the audio is what plays.
		d := 10.0
		err := prepare(t, loopback, status.MediaRequest{Type: "audio", URL: srv.URL + "/f/tone65.opus", Voice: true, Duration: &d})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "the audio is 65 s long; a voice status is at most 60 s (WhatsApp's limit): shorten it")
	})

	t.Run("VideoAsAudio", func(t *testing.T) {
		t.Parallel()
		err := prepare(t, loopback, status.MediaRequest{Type: "audio", URL: srv.URL + "/f/v10.mp4"})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "the file is a video (video/mp4), not audio")
	})

	t.Run("DecompressionBomb", func(t *testing.T) {
		t.Parallel()
		// A PNG header announcing 20000x20000 pixels: refused from the header.
		bomb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ihdr := []byte("IHDR\x00\x00\x4e\x20\x00\x00\x4e\x20\x08\x02\x00\x00\x00")
			b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d")
			b = append(b, ihdr...)
			b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
			w.Write(append(b, make([]byte, 1000)...))
		}))
		t.Cleanup(bomb.Close)
		err := prepare(t, loopback, status.MediaRequest{Type: "image", URL: bomb.URL + "/a.png"})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "the image is 20000x20000 pixels")
	})

	t.Run("TruncatedPNG", func(t *testing.T) {
		t.Parallel()
		b, err := os.ReadFile(fixture(t, "img.png"))
		if err != nil {
			t.Fatal(err)
		}
		half := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(b[:len(b)/2]) }))
		t.Cleanup(half.Close)
		err = prepare(t, loopback, status.MediaRequest{Type: "image", URL: half.URL + "/a.png"})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "the image could not be decoded: ")
	})

	t.Run("TruncatedMP4", func(t *testing.T) {
		t.Parallel()
		err := prepare(t, loopback, status.MediaRequest{Type: "video", URL: srv.URL + "/f/truncated.mp4"})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "the video could not be read: ")
	})

	t.Run("TextAsAudio", func(t *testing.T) {
		t.Parallel()
		err := prepare(t, loopback, status.MediaRequest{Type: "audio", URL: srv.URL + "/f/text.txt?ct=audio/mpeg"})
		requireCode(t, err, errcode.CodeUnsupportedMediaType, "type audio accepts audio/mpeg")
	})

	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("OneByteOverCap/chunked=%v", chunked), func(t *testing.T) {
			t.Parallel()
			fi, err := os.Stat(fixture(t, "img.png"))
			if err != nil {
				t.Fatal(err)
			}
			url := srv.URL + "/f/img.png"
			if chunked { // no Content-Length: the cap must hold while streaming
				url += "?chunked=1"
			}
			cfg := loopback
			cfg.MaxBytes = fi.Size() - 1
			err = prepare(t, cfg, status.MediaRequest{Type: "image", URL: url})
			requireCode(t, err, errcode.CodeMediaValidationFailed, fmt.Sprintf("larger than the limit of %d bytes", cfg.MaxBytes))
		})
	}

	t.Run("ExactlyAtCap", func(t *testing.T) {
		t.Parallel()
		fi, err := os.Stat(fixture(t, "img.png"))
		if err != nil {
			t.Fatal(err)
		}
		p, tmp := newPipeline(t, media.Config{AllowPrivate: true, MaxBytes: fi.Size()})
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "image", URL: srv.URL + "/f/img.png?chunked=1"})
		if err != nil {
			t.Fatalf("a file of exactly MaxBytes must pass: %v", err)
		}
		pm.Cleanup()
		requireEmpty(t, tmp)
	})

	t.Run("SlowBody", func(t *testing.T) {
		t.Parallel()
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			w.Header().Set("Content-Length", "100000")
			for i := 0; i < 1200; i++ { // drips for two minutes unless cut off
				w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}))
		t.Cleanup(slow.Close)
		start := time.Now()
		err := prepare(t, media.Config{AllowPrivate: true, DownloadTimeout: time.Second}, status.MediaRequest{Type: "image", URL: slow.URL + "/a.png"})
		requireCode(t, err, errcode.CodeMediaDownloadFailed, "Failed to download media from URL")
		// Not a timing test: the body drips for two minutes, so giving up
		// well before that shows the 1 s download timeout cut it off (a
		// 3 s bound failed at load 34 with 3.6 s).
		if d := time.Since(start); d > time.Minute {
			t.Errorf("gave up after %s: the 1 s download timeout did not cut off a body that drips for two minutes", d)
		}
	})

	t.Run("SlowHeaders", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(slow.Close)
		t.Cleanup(func() { close(release) })
		err := prepare(t, media.Config{AllowPrivate: true, HeaderTimeout: 300 * time.Millisecond}, status.MediaRequest{Type: "image", URL: slow.URL + "/a.png"})
		requireCode(t, err, errcode.CodeMediaDownloadFailed, "Failed to download media from URL")
	})

	t.Run("HTTPError", func(t *testing.T) {
		t.Parallel()
		err := prepare(t, loopback, status.MediaRequest{Type: "image", URL: srv.URL + "/missing"})
		requireCode(t, err, errcode.CodeMediaDownloadFailed, "Failed to download media from URL")
	})

	t.Run("EmptyFile", func(t *testing.T) {
		t.Parallel()
		empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(empty.Close)
		err := prepare(t, loopback, status.MediaRequest{Type: "image", URL: empty.URL})
		requireCode(t, err, errcode.CodeMediaValidationFailed, "empty")
	})

	t.Run("UndecodableAudio", func(t *testing.T) {
		t.Parallel()
		// A valid Ogg Opus start with the rest cut off mid-stream still
		// decodes a little; a WAV header with garbage does not.
		bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x07\x00\x09\x00\x00\x00\x00\x00"))
		}))
		t.Cleanup(bad.Close)
		err := prepare(t, loopback, status.MediaRequest{Type: "audio", URL: bad.URL + "/a.wav", Voice: true})
		// The caller's file is broken, not our conversion: a 400 (issue 13).
		requireCode(t, err, errcode.CodeMediaValidationFailed, "the audio could not be read")
	})

	for _, u := range []string{"ftp://example.com/a.mp3", "file:///etc/passwd", "gopher://example.com/", "/relative/a.png"} {
		t.Run("UnsupportedScheme/"+u, func(t *testing.T) {
			t.Parallel()
			err := prepare(t, media.Config{}, status.MediaRequest{Type: "audio", URL: u})
			requireCode(t, err, errcode.CodeMediaDownloadFailed, "Failed to download media from URL")
			if strings.Contains(u, "://") && !errors.Is(err, ssrf.ErrUnsupportedScheme) {
				t.Errorf("err = %v, want ssrf.ErrUnsupportedScheme", err)
			}
		})
	}
}

// TestPipeline_PrivateAddresses: with AllowPrivate false, nothing reaches a
// private address, whether named directly, via DNS or via a redirect.
func TestPipeline_PrivateAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// target counts the requests that got through.
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeFile(w, r, fixture(t, "img.png"))
	}))
	t.Cleanup(target.Close)
	_, targetPort, _ := net.SplitHostPort(target.Listener.Addr().String())

	// front is the one server the test lets through (AllowAddrs); it
	// redirects wherever ?to= says.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		http.ServeFile(w, r, fixture(t, "img.png"))
	}))
	t.Cleanup(front.Close)
	frontAddr := netip.MustParseAddrPort(front.Listener.Addr().String())

	lookup := func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		switch host {
		case "metadata.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
		case "mapped.test":
			return []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}, nil
		case "localhost":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	cfg := media.Config{AllowAddrs: []netip.AddrPort{frontAddr}, LookupIP: lookup}

	refused := func(t *testing.T, url string, want error) {
		t.Helper()
		p, tmp := newPipeline(t, cfg)
		_, err := p.Prepare(ctx, status.MediaRequest{Type: "image", URL: url})
		requireCode(t, err, errcode.CodeMediaDownloadFailed, "Failed to download media from URL")
		if !errors.Is(err, want) {
			t.Errorf("err = %v, want %v", err, want)
		}
		requireEmpty(t, tmp)
	}

	t.Run("AllowedAddressWorks", func(t *testing.T) {
		t.Parallel()
		p, tmp := newPipeline(t, cfg)
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "image", URL: front.URL + "/a.png"})
		if err != nil {
			t.Fatalf("the allow-listed server must be reachable: %v", err)
		}
		pm.Cleanup()
		requireEmpty(t, tmp)
	})
	t.Run("Loopback", func(t *testing.T) {
		t.Parallel()
		refused(t, target.URL+"/a.png", ssrf.ErrForbiddenAddress)
	})
	t.Run("RedirectTo127", func(t *testing.T) {
		t.Parallel()
		refused(t, front.URL+"/?to=http://127.0.0.1:"+targetPort+"/a.png", ssrf.ErrForbiddenAddress)
	})
	t.Run("RedirectToLocalhostName", func(t *testing.T) {
		t.Parallel()
		refused(t, front.URL+"/?to=http://localhost:"+targetPort+"/a.png", ssrf.ErrForbiddenAddress)
	})
	t.Run("RedirectToFileScheme", func(t *testing.T) {
		t.Parallel()
		refused(t, front.URL+"/?to=file:///etc/passwd", ssrf.ErrUnsupportedScheme)
	})
	t.Run("NameResolvingToMetadata", func(t *testing.T) {
		t.Parallel()
		refused(t, "http://metadata.test/latest/meta-data/", ssrf.ErrForbiddenAddress)
	})
	t.Run("RedirectToMetadataName", func(t *testing.T) {
		t.Parallel()
		refused(t, front.URL+"/?to=http://metadata.test/latest/meta-data/", ssrf.ErrForbiddenAddress)
	})
	t.Run("NameResolvingToMappedLoopback", func(t *testing.T) {
		t.Parallel()
		refused(t, "http://mapped.test:"+targetPort+"/a.png", ssrf.ErrForbiddenAddress)
	})
	t.Run("IPv6Loopback", func(t *testing.T) {
		t.Parallel()
		refused(t, "http://[::1]:"+targetPort+"/a.png", ssrf.ErrForbiddenAddress)
	})
	t.Run("TooManyRedirects", func(t *testing.T) {
		t.Parallel()
		refused(t, nestRedirects(front.URL, 6), ssrf.ErrTooManyRedirects)
	})
	t.Run("FiveRedirectsAllowed", func(t *testing.T) {
		t.Parallel()
		p, tmp := newPipeline(t, cfg)
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "image", URL: nestRedirects(front.URL, 5)})
		if err != nil {
			t.Fatalf("5 redirects must be followed: %v", err)
		}
		pm.Cleanup()
		requireEmpty(t, tmp)
	})

	t.Cleanup(func() {
		if n := hits.Load(); n != 0 {
			t.Errorf("the private target was reached %d times", n)
		}
	})
}

// nestRedirects builds a URL on base that redirects n times before serving.
func nestRedirects(base string, n int) string {
	u := base + "/a.png"
	for i := 0; i < n; i++ {
		u = base + "/?to=" + url.QueryEscape(u)
	}
	return u
}
