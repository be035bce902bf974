package media

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSniff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		given          []byte
		expectedMIME   string
		expectedFormat bool
	}{
		{"PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), "image/png", true},
		{"JPEG", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), "image/jpeg", true},
		{"GIF", []byte("GIF89a\x01\x00\x01\x00"), "image/gif", true},
		{"Text", []byte("hello there\n"), "text/plain", false},
		{"HLSPlaylist", []byte("#EXTM3U\n#EXT-X-VERSION:3\nfile:///etc/passwd\n"), "application/vnd.apple.mpegurl", false},
		{"Empty", nil, "text/plain", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mime, f := sniff(tc.given)
			if mime != tc.expectedMIME || (f != nil) != tc.expectedFormat {
				t.Errorf("sniff = %q, %v; want %q, format %v", mime, f, tc.expectedMIME, tc.expectedFormat)
			}
		})
	}
}

func TestDeclaredMatches(t *testing.T) {
	t.Parallel()
	jpeg := &formats[0]
	mp3 := func() *format {
		for i := range formats {
			if formats[i].mime == "audio/mpeg" {
				return &formats[i]
			}
		}
		return nil
	}()
	for _, tc := range []struct {
		declared, detected string
		f                  *format
		expected           bool
	}{
		{"image/jpeg", "image/jpeg", jpeg, true},
		{"image/png", "image/jpeg", jpeg, true}, // same kind: harmless, we convert
		{"image/jpeg; charset=binary", "image/jpeg", jpeg, true},
		{"audio/mp3", "audio/mpeg", mp3, true}, // alias
		{"video/mp4", "image/jpeg", jpeg, false},
		{"image/jpeg", "text/plain", nil, false},
		{"not a mime", "image/jpeg", jpeg, false},
	} {
		if got := declaredMatches(tc.declared, tc.detected, tc.f); got != tc.expected {
			t.Errorf("declaredMatches(%q, %q) = %v, want %v", tc.declared, tc.detected, got, tc.expected)
		}
	}
}

func TestOpusChannels(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	for _, ch := range []int{1, 2} {
		path := filepath.Join(t.TempDir(), "a.ogg")
		out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=0.2",
			"-ac", string(rune('0'+ch)), "-c:a", "libopus", "-f", "ogg", path).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg: %v %s", err, out)
		}
		b, _ := os.ReadFile(path)
		if got := opusChannels(b); got != ch {
			t.Errorf("opusChannels = %d, want %d", got, ch)
		}
	}
	if got := opusChannels([]byte("OggS")); got != 0 {
		t.Errorf("short page: %d", got)
	}
}

func TestWebPSize(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	for _, lossless := range []string{"0", "1"} {
		path := filepath.Join(t.TempDir(), "a.webp")
		out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=161x121",
			"-frames:v", "1", "-c:v", "libwebp", "-lossless", lossless, "-f", "image2", path).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg: %v %s", err, out)
		}
		b, _ := os.ReadFile(path)
		if w, h, ok := webpSize(b); !ok || w != 161 || h != 121 {
			t.Errorf("lossless=%s: webpSize = %d, %d, %v; want 161x121", lossless, w, h, ok)
		}
	}
	vp8x := []byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\x1f\x4e\x00\x1f\x4e\x00")
	if w, h, ok := webpSize(vp8x); !ok || w != 20000 || h != 20000 {
		t.Errorf("VP8X: %d, %d, %v", w, h, ok)
	}
}

func TestJPEGOrientation(t *testing.T) {
	t.Parallel()
	exif := func(order string, o uint16) []byte {
		var bo binary.AppendByteOrder = binary.BigEndian
		if order == "II" {
			bo = binary.LittleEndian
		}
		tiff := []byte(order)
		tiff = bo.AppendUint16(tiff, 42)
		tiff = bo.AppendUint32(tiff, 8)
		tiff = bo.AppendUint16(tiff, 2)
		tiff = append(bo.AppendUint16(tiff, 0x010F), 0, 2, 0, 0, 0, 1, 0, 0, 0, 0) // Make, ASCII
		tiff = bo.AppendUint16(tiff, 0x0112)
		tiff = bo.AppendUint16(tiff, 3)
		tiff = bo.AppendUint32(tiff, 1)
		tiff = bo.AppendUint16(tiff, o)
		tiff = append(tiff, 0, 0, 0, 0, 0, 0)
		seg := append([]byte("Exif\x00\x00"), tiff...)
		b := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 'J', 'F', 0xFF, 0xE1}
		b = binary.BigEndian.AppendUint16(b, uint16(len(seg)+2))
		return append(append(b, seg...), 0xFF, 0xDA, 0, 2)
	}
	for o := uint16(1); o <= 8; o++ {
		for _, order := range []string{"II", "MM"} {
			if got := jpegOrientation(exif(order, o)); got != int(o) {
				t.Errorf("%s orientation %d: got %d", order, o, got)
			}
		}
	}
	if got := jpegOrientation(exif("MM", 9)); got != 1 {
		t.Errorf("invalid orientation 9: got %d, want 1", got)
	}
	if got := jpegOrientation([]byte{0xFF, 0xD8, 0xFF, 0xDA}); got != 1 {
		t.Errorf("no EXIF: got %d", got)
	}
}

func TestWaveformWriter(t *testing.T) {
	t.Parallel()
	// One second at 8 kHz whose loudness rises linearly, written in
	// odd-sized pieces so samples straddle writes.
	var pcm bytes.Buffer
	for i := 0; i < waveformRate; i++ {
		v := int16(i * 32767 / waveformRate)
		if i%2 == 1 {
			v = -v
		}
		binary.Write(&pcm, binary.LittleEndian, v)
	}
	w := newWaveformWriter(waveformRate)
	b := pcm.Bytes()
	for len(b) > 0 {
		n := min(len(b), 333)
		w.Write(b[:n])
		b = b[n:]
	}
	if w.samples != waveformRate || w.seconds(waveformRate) != 1 {
		t.Fatalf("samples = %d", w.samples)
	}
	wf := w.waveform()
	if len(wf) != WaveformLen || wf[63] != 100 {
		t.Fatalf("waveform = %v", wf)
	}
	for i := 1; i < len(wf); i++ {
		if wf[i] < wf[i-1] {
			t.Fatalf("waveform does not rise at %d: %v", i, wf)
		}
	}
	if got := reducePeaks([]uint16{10, 20}); got[0] != 50 || got[63] != 100 {
		t.Errorf("fewer peaks than values: %v", got)
	}
	if got := reducePeaks(nil); len(got) != WaveformLen || got[0] != 0 {
		t.Errorf("no audio: %v", got)
	}
}

// FuzzSniff feeds untrusted leading bytes to every parser that sees them
// before FFmpeg does: the sniffer, the Ogg/Opus header reader and the EXIF
// orientation reader. None may panic, and their answers stay in range.
func FuzzSniff(f *testing.F) {
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte("\xff\xd8\xff\xe1\x00\x20Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06"))
	f.Add([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead\x01\x01"))
	f.Add([]byte("ID3\x03\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x00\x00\x00\x18ftypmp42"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mime, fm := sniff(b)
		if fm != nil && fm.mime != mime {
			t.Fatalf("format %q for detected %q", fm.mime, mime)
		}
		if fm != nil && fm.demuxer == "" {
			t.Fatal("format without a forced demuxer")
		}
		if o := jpegOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		if w, h, ok := webpSize(b); ok && (w < 0 || h < 0 || w > 1<<24 || h > 1<<24) {
			t.Fatalf("webp size %dx%d", w, h)
		}
		if c := opusChannels(b); c < 0 || c > 255 {
			t.Fatalf("channels %d", c)
		}
		w := newWaveformWriter(waveformRate)
		w.Write(b)
		for _, v := range w.waveform() {
			if v > 100 {
				t.Fatalf("waveform value %d", v)
			}
		}
	})
}
