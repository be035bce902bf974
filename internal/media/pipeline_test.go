package media_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"os"
	"os/exec"
	"testing"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/media"
	"github.com/statusflow/statusflow/internal/status"
)

func boolPtr(b bool) *bool { return &b }

// TestPipeline_Sandbox publishes each media type end to end through the real
// core on the sandbox engine and checks the recorded WhatsApp message.
func TestPipeline_Sandbox(t *testing.T) {
	t.Parallel()

	type bundle struct {
		srv  string
		core *core
		tmp  string
	}
	setup := func(t *testing.T) *bundle {
		srv := mediaServer(t)
		p, tmp := newPipeline(t, media.Config{AllowPrivate: true})
		t.Cleanup(func() { requireEmpty(t, tmp) })
		return &bundle{srv: srv.URL, core: newCore(t, p), tmp: tmp}
	}

	t.Run("VoiceNoteFromMP3", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		url := b.srv + "/f/tone.mp3"
		m := b.core.publish(t, status.PublishArgs{Type: "audio", MediaURL: url, BackgroundColor: "#FF0000"}).GetAudioMessage()
		if m == nil {
			t.Fatal("no audio message")
		}
		if m.GetMimetype() != "audio/ogg; codecs=opus" {
			t.Errorf("mimetype = %q", m.GetMimetype())
		}
		if !m.GetPTT() {
			t.Error("PTT = false, want a voice note")
		}
		if s := m.GetSeconds(); s != 5 {
			t.Errorf("seconds = %d, want 5", s)
		}
		if len(m.GetWaveform()) != 64 {
			t.Fatalf("waveform has %d values, want 64", len(m.GetWaveform()))
		}
		if m.GetBackgroundArgb() != 0xFFFF0000 {
			t.Errorf("background = %#x", m.GetBackgroundArgb())
		}
		checkUpload(t, b.core, url, m.GetFileLength(), m.GetFileSHA256(), m.GetMediaKey(), m.GetDirectPath())
	})

	t.Run("WaveformFollowsLoudness", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.core.publish(t, status.PublishArgs{Type: "audio", MediaURL: b.srv + "/f/ramp.wav"}).GetAudioMessage()
		wf := m.GetWaveform()
		if len(wf) != 64 {
			t.Fatalf("waveform has %d values", len(wf))
		}
		for i, v := range wf {
			if v > 100 {
				t.Fatalf("waveform[%d] = %d > 100", i, v)
			}
		}
		if wf[63] < 90 || wf[2] > 20 || wf[32] < 35 || wf[32] > 65 {
			t.Errorf("waveform does not rise with the loudness: %v", wf)
		}
		if m.GetSeconds() != 4 {
			t.Errorf("seconds = %d, want 4", m.GetSeconds())
		}
	})

	t.Run("GivenWaveformAndDuration", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		wf := make([]int, 64)
		for i := range wf {
			wf[i] = i % 101
		}
		d := 2.4 // mono.opus is 3 s long
		m := b.core.publish(t, status.PublishArgs{Type: "audio", MediaURL: b.srv + "/f/mono.opus", Waveform: wf, Duration: &d}).GetAudioMessage()
		if m.GetSeconds() != 2 {
			t.Errorf("seconds = %d, want the given 2", m.GetSeconds())
		}
		for i, v := range m.GetWaveform() {
			if int(v) != wf[i] {
				t.Fatalf("waveform[%d] = %d, want the given %d", i, v, wf[i])
			}
		}
	})

	t.Run("GivenDurationNeverExceedsMeasured", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := 12.4 // mono.opus is 3 s long: players would show 0:12 and stop at 0:03
		m := b.core.publish(t, status.PublishArgs{Type: "audio", MediaURL: b.srv + "/f/mono.opus", Duration: &d}).GetAudioMessage()
		if m.GetSeconds() != 3 {
			t.Errorf("seconds = %d, want the measured 3", m.GetSeconds())
		}
	})

	t.Run("NotVoiceSentAsVoice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// Phones play an audio status only as a voice status (README "Audio statuses").
		m := b.core.publish(t, status.PublishArgs{Type: "audio", MediaURL: b.srv + "/f/stereo.opus", IsVoice: boolPtr(false)}).GetAudioMessage()
		if !m.GetPTT() || len(m.GetWaveform()) != 64 {
			t.Errorf("PTT = %v, waveform %d values; want a voice note", m.GetPTT(), len(m.GetWaveform()))
		}
		if m.GetMimetype() != "audio/ogg; codecs=opus" || m.GetSeconds() != 3 {
			t.Errorf("mimetype %q, seconds %d", m.GetMimetype(), m.GetSeconds())
		}
	})

	t.Run("VideoCopied", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		url := b.srv + "/f/v10.mp4"
		m := b.core.publish(t, status.PublishArgs{Type: "video", MediaURL: url, Message: "caption"}).GetVideoMessage()
		checkVideo(t, m.GetMimetype(), m.GetWidth(), m.GetHeight(), m.GetSeconds(), m.GetJPEGThumbnail(), 160, 120, 10)
		if m.GetCaption() != "caption" {
			t.Errorf("caption = %q", m.GetCaption())
		}
		checkUpload(t, b.core, url, m.GetFileLength(), m.GetFileSHA256(), m.GetMediaKey(), m.GetDirectPath())
	})

	t.Run("VideoTrimmedTo30s", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		url := b.srv + "/f/v45.mp4"
		m := b.core.publish(t, status.PublishArgs{Type: "video", MediaURL: url}).GetVideoMessage()
		checkVideo(t, m.GetMimetype(), m.GetWidth(), m.GetHeight(), m.GetSeconds(), m.GetJPEGThumbnail(), 160, 120, 30)
		checkUpload(t, b.core, url, m.GetFileLength(), m.GetFileSHA256(), m.GetMediaKey(), m.GetDirectPath())
	})

	t.Run("PortraitVideoRotation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.core.publish(t, status.PublishArgs{Type: "video", MediaURL: b.srv + "/f/rot90.mp4"}).GetVideoMessage()
		checkVideo(t, m.GetMimetype(), m.GetWidth(), m.GetHeight(), m.GetSeconds(), m.GetJPEGThumbnail(), 120, 160, 3)
		if c, err := jpeg.DecodeConfig(bytes.NewReader(m.GetJPEGThumbnail())); err != nil || c.Width >= c.Height {
			t.Errorf("thumbnail %dx%d (%v), want it upright like the video", c.Width, c.Height, err)
		}
	})

	t.Run("VideoReencoded", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.core.publish(t, status.PublishArgs{Type: "video", MediaURL: b.srv + "/f/mpeg4.mkv"}).GetVideoMessage()
		checkVideo(t, m.GetMimetype(), m.GetWidth(), m.GetHeight(), m.GetSeconds(), m.GetJPEGThumbnail(), 160, 120, 4)
	})

	for _, name := range []string{"img.jpg", "img.png", "img.webp", "img.gif"} {
		t.Run("Image_"+name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			url := b.srv + "/f/" + name
			m := b.core.publish(t, status.PublishArgs{Type: "image", MediaURL: url}).GetImageMessage()
			if m.GetMimetype() != "image/jpeg" {
				t.Errorf("mimetype = %q", m.GetMimetype())
			}
			if m.GetWidth() != 160 || m.GetHeight() != 120 {
				t.Errorf("size = %dx%d, want 160x120", m.GetWidth(), m.GetHeight())
			}
			if !bytes.HasPrefix(m.GetJPEGThumbnail(), []byte{0xFF, 0xD8}) {
				t.Error("no JPEG thumbnail")
			}
			checkUpload(t, b.core, url, m.GetFileLength(), m.GetFileSHA256(), m.GetMediaKey(), m.GetDirectPath())
		})
	}

	t.Run("ImageOrientationApplied", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.core.publish(t, status.PublishArgs{Type: "image", MediaURL: b.srv + "/f/rot6.jpg"}).GetImageMessage()
		if m.GetWidth() != 120 || m.GetHeight() != 160 {
			t.Errorf("size = %dx%d, want 120x160 (EXIF orientation 6 turns it)", m.GetWidth(), m.GetHeight())
		}
	})
}

type probedStream struct {
	CodecType  string `json:"codec_type"`
	CodecName  string `json:"codec_name"`
	Profile    string `json:"profile"`
	PixFmt     string `json:"pix_fmt"`
	Channels   int    `json:"channels"`
	SampleRate string `json:"sample_rate"`
}

// probeStreams returns a prepared file's first stream of each type.
func probeStreams(t *testing.T, path string) map[string]probedStream {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var pr struct{ Streams []probedStream }
	if err := json.Unmarshal(out, &pr); err != nil {
		t.Fatal(err)
	}
	m := map[string]probedStream{}
	for _, s := range pr.Streams {
		if _, ok := m[s.CodecType]; !ok {
			m[s.CodecType] = s
		}
	}
	return m
}

// requireFaststart checks the moov box precedes mdat (playable while downloading).
func requireFaststart(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if moov, mdat := bytes.Index(b, []byte("moov")), bytes.Index(b, []byte("mdat")); moov < 0 || moov > mdat {
		t.Errorf("moov at %d, mdat at %d: not faststart", moov, mdat)
	}
}

func checkVideo(t *testing.T, mime string, w, h, secs uint32, thumb []byte, wantW, wantH, wantSecs uint32) {
	t.Helper()
	if mime != "video/mp4" {
		t.Errorf("mimetype = %q", mime)
	}
	if w != wantW || h != wantH {
		t.Errorf("size = %dx%d, want %dx%d", w, h, wantW, wantH)
	}
	if secs != wantSecs {
		t.Errorf("seconds = %d, want %d", secs, wantSecs)
	}
	if !bytes.HasPrefix(thumb, []byte{0xFF, 0xD8}) {
		t.Error("no JPEG thumbnail")
	}
}

func checkUpload(t *testing.T, c *core, url string, length uint64, sum, key []byte, directPath string) {
	t.Helper()
	c.spy.mu.Lock()
	size, want := c.spy.size[url], c.spy.sum[url]
	c.spy.mu.Unlock()
	if length == 0 || int64(length) != size {
		t.Errorf("fileLength = %d, prepared size %d", length, size)
	}
	if !bytes.Equal(sum, want) {
		t.Error("fileSha256 is not the SHA-256 of the prepared file")
	}
	if len(key) != 32 || directPath == "" {
		t.Errorf("mediaKey %d bytes, directPath %q", len(key), directPath)
	}
}

// TestPipeline_Prepare checks what Prepare hands the core and that Cleanup
// removes it.
func TestPipeline_Prepare(t *testing.T) {
	t.Parallel()
	srv := mediaServer(t)
	p, tmp := newPipeline(t, media.Config{AllowPrivate: true})
	ctx := context.Background()

	t.Run("MP4ContainerRemuxed", func(t *testing.T) {
		t.Parallel()
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "video", URL: srv.URL + "/f/noaudio.mp4", MimeType: "video/mp4", FileName: "-i /etc/passwd.mp4"})
		if err != nil {
			t.Fatal(err)
		}
		defer pm.Cleanup()
		fi, err := os.Stat(pm.Path)
		if err != nil || fi.Size() != pm.Size {
			t.Fatalf("prepared file: %v, size %d vs %d", err, fi.Size(), pm.Size)
		}
		if pm.Type != "video" || pm.Seconds != 3 || pm.Width != 160 {
			t.Errorf("prepared %+v", pm)
		}
		requireFaststart(t, pm.Path)
		// x264's ultrafast preset writes Constrained Baseline; a re-encode
		// would be High: the stream was copied.
		if v := probeStreams(t, pm.Path)["video"]; v.CodecName != "h264" || v.Profile != "Constrained Baseline" {
			t.Errorf("video stream %+v, want the H.264 stream copied", v)
		}
		pm.Cleanup()
		if _, err := os.Stat(pm.Path); !os.IsNotExist(err) {
			t.Errorf("file still there after Cleanup: %v", err)
		}
		pm.Cleanup() // harmless twice
	})

	t.Run("MKVReencoded", func(t *testing.T) {
		t.Parallel()
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "video", URL: srv.URL + "/f/mpeg4.mkv"})
		if err != nil {
			t.Fatal(err)
		}
		defer pm.Cleanup()
		requireFaststart(t, pm.Path)
		st := probeStreams(t, pm.Path)
		if v, a := st["video"], st["audio"]; v.CodecName != "h264" || v.Profile != "High" || v.PixFmt != "yuv420p" || a.CodecName != "aac" {
			t.Errorf("streams %+v, want H.264 High 4:2:0 and AAC", st)
		}
	})

	t.Run("StereoOpusDownmixed", func(t *testing.T) {
		t.Parallel()
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "audio", URL: srv.URL + "/f/stereo.opus", Voice: true})
		if err != nil {
			t.Fatal(err)
		}
		defer pm.Cleanup()
		if a := probeStreams(t, pm.Path)["audio"]; a.CodecName != "opus" || a.Channels != 1 || a.SampleRate != "48000" {
			t.Errorf("audio %+v, want mono Opus at 48 kHz", a)
		}
	})

	t.Run("AudioOnlyWebM", func(t *testing.T) {
		t.Parallel()
		// Browsers record voice as audio-only WebM, which sniffs as video/webm.
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "audio", URL: srv.URL + "/f/voice.webm", Voice: true})
		if err != nil {
			t.Fatal(err)
		}
		defer pm.Cleanup()
		if pm.Mimetype != "audio/ogg; codecs=opus" || pm.Seconds != 2 || len(pm.Waveform) != 64 {
			t.Errorf("prepared %+v", pm)
		}
	})

	t.Run("TransparencyOnWhite", func(t *testing.T) {
		t.Parallel()
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "image", URL: srv.URL + "/f/clear.png"})
		if err != nil {
			t.Fatal(err)
		}
		defer pm.Cleanup()
		f, err := pm.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := jpeg.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		if r, g, b, _ := img.At(80, 60).RGBA(); r>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
			t.Errorf("a fully transparent PNG became (%d,%d,%d), want white", r>>8, g>>8, b>>8)
		}
	})

	t.Run("SilentVoiceNote", func(t *testing.T) {
		t.Parallel()
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "audio", URL: srv.URL + "/f/silence.opus", Voice: true})
		if err != nil {
			t.Fatal(err)
		}
		defer pm.Cleanup()
		if len(pm.Waveform) != 64 || bytes.Count(pm.Waveform, []byte{0}) != 64 {
			t.Errorf("waveform of silence = %v", pm.Waveform)
		}
	})

	t.Cleanup(func() { requireEmpty(t, tmp) })
}

func TestNew_MissingFFmpeg(t *testing.T) {
	t.Parallel()
	p, err := media.New(media.Config{FFmpegPath: "/nonexistent/ffmpeg", FFprobePath: "/nonexistent/ffprobe", TempDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatalf("New must succeed without ffmpeg: %v", err)
	}
	defer p.Close()
	if err := p.Ready(); err == nil || !bytes.Contains([]byte(err.Error()), []byte("ffmpeg was not found")) {
		t.Errorf("Ready() = %v, want it to say ffmpeg is missing", err)
	}
	_, err = p.Prepare(context.Background(), status.MediaRequest{Type: "image", URL: "http://example.com/a.png"})
	requireCode(t, err, errcode.CodeMediaValidationFailed, "FFmpeg is not installed")
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		given media.Config
		want  string
	}{
		{"NegativeMaxBytes", media.Config{MaxBytes: -1}, "STATUSFLOW_MEDIA_MAX_BYTES"},
		{"NegativeProcesses", media.Config{MaxProcesses: -2}, "MaxProcesses"},
		{"MissingTempDir", media.Config{TempDir: "/nonexistent/dir"}, "TempDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.given.WithDefaults().Validate()
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("Validate() = %v, want it to name %s", err, tc.want)
			}
		})
	}
	if err := (media.Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if got := (media.Config{}).WithDefaults().MaxBytes; got != 16777216 {
		t.Errorf("default MaxBytes = %d", got)
	}
}
