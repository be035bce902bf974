package media_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/media"
	"github.com/statusflow/statusflow/internal/status"
)

func init() {
	// ~15 MB of H.264/AAC: noise defeats compression, so the bitrate holds.
	recipes["big15mb.mp4"] = []string{"-f", "lavfi", "-i", "testsrc=size=640x360:rate=30:duration=10", "-f", "lavfi", "-i", "sine=duration=10",
		"-vf", "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-b:v", "13000k", "-minrate", "13000k", "-maxrate", "13000k", "-bufsize", "2M", "-c:a", "aac", "-b:a", "128k", "-shortest", "-f", "mp4"}
}

// BenchmarkVoiceNote converts a 60 s MP3 into a voice note (Ogg Opus plus
// waveform) through the whole pipeline (HTTP fetch on loopback, sniffing,
// FFmpeg) and, in the same iterations, with the bare ffmpeg command doing the
// same conversion from a local file. It reports both and their ratio
// (target: at most 1.15).
func BenchmarkVoiceNote(b *testing.B) {
	src := fixture(b, "tone60.mp3")
	srv := mediaServer(b)
	p, _ := newPipeline(b, media.Config{AllowPrivate: true})
	ctx := context.Background()
	bareOut := filepath.Join(b.TempDir(), "bare.ogg")
	bare := func() {
		cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", src,
			"-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-vbr", "on", "-application", "voip", "-f", "ogg", bareOut)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("bare ffmpeg: %v %s", err, out)
		}
	}
	pipeline := func() {
		pm, err := p.Prepare(ctx, status.MediaRequest{Type: "audio", URL: srv.URL + "/f/tone60.mp3", Voice: true})
		if err != nil {
			b.Fatal(err)
		}
		if len(pm.Waveform) != 64 || pm.Seconds != 60 {
			b.Fatalf("waveform %d values, %d s", len(pm.Waveform), pm.Seconds)
		}
		pm.Cleanup()
	}
	bare() // warm the page cache and the binary
	var tBare, tPipe time.Duration
	for b.Loop() {
		// Alternate, so load from elsewhere on the machine hits both alike.
		t0 := time.Now()
		bare()
		t1 := time.Now()
		pipeline()
		tBare += t1.Sub(t0)
		tPipe += time.Since(t1)
	}
	b.ReportMetric(float64(tBare.Milliseconds())/float64(b.N), "bare-ms/op")
	b.ReportMetric(float64(tPipe.Milliseconds())/float64(b.N), "pipeline-ms/op")
	b.ReportMetric(float64(tPipe)/float64(tBare), "ratio")
}

// BenchmarkPublishVideos publishes 20 video statuses of about 15 MB at once
// through the real core on the sandbox engine and reports the peak Go heap
// seen while they run (target: under 64 MB). Bodies are streamed to disk and
// the sandbox upload streams the file, so the heap must not grow with the
// media size.
func BenchmarkPublishVideos(b *testing.B) {
	const parallel = 20
	big := fixture(b, "big15mb.mp4")
	fi, err := os.Stat(big)
	if err != nil {
		b.Fatal(err)
	}
	srv := mediaServer(b)
	p, _ := newPipeline(b, media.Config{AllowPrivate: true})
	c := newCore(b, p)
	ctx := context.Background()

	var peak uint64
	for b.Loop() {
		runtime.GC()
		stop := make(chan struct{})
		sampled := make(chan uint64)
		go func() { sampled <- sampleHeap(stop) }()
		var wg sync.WaitGroup
		errs := make(chan error, parallel)
		for range parallel {
			wg.Go(func() {
				_, err := c.svc.Execute(ctx, status.Command{Instance: "sales", Args: status.PublishArgs{Type: "video", MediaURL: srv.URL + "/f/big15mb.mp4"}})
				errs <- err
			})
		}
		wg.Wait()
		close(stop)
		peak = max(peak, <-sampled)
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(fi.Size())/1e6, "MB/video")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// sampleHeap returns the largest live heap (objects, live and not yet swept)
// seen every millisecond until stop closes.
func sampleHeap(stop <-chan struct{}) uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		peak = max(peak, s[0].Value.Uint64())
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}
