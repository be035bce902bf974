package media_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/media"
	"github.com/statusflow/statusflow/internal/status"
)

// wrapper writes a shell script standing in for ffmpeg. The pipeline runs
// tools with an empty environment, so the script names everything by path.
func wrapper(t *testing.T, body string) string {
	t.Helper()
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not installed")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	path := filepath.Join(t.TempDir(), "ffmpeg")
	script := fmt.Sprintf("#!%s\nFFMPEG=%s\ncase \"$*\" in *-encoders*) exec $FFMPEG \"$@\";; esac\n%s\n", sh, real, body)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPipeline_MaxProcesses: with MaxProcesses 1, FFmpeg runs never overlap,
// however many requests arrive at once.
func TestPipeline_MaxProcesses(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "runs.log")
	ff := wrapper(t, fmt.Sprintf("echo + >> %[1]s\n$FFMPEG \"$@\"\nrc=$?\necho - >> %[1]s\nexit $rc", log))
	srv := mediaServer(t)
	p, tmp := newPipeline(t, media.Config{AllowPrivate: true, FFmpegPath: ff, MaxProcesses: 1})

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, name := range []string{"img.png", "img.gif", "img.webp", "img.jpg"} {
		wg.Go(func() {
			pm, err := p.Prepare(context.Background(), status.MediaRequest{Type: "image", URL: srv.URL + "/f/" + name})
			if err == nil {
				pm.Cleanup()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	running, runs := 0, 0
	for _, l := range strings.Fields(string(b)) {
		if l == "+" {
			running++
			runs++
		} else {
			running--
		}
		if running > 1 {
			t.Fatalf("%d ffmpeg processes at once with MaxProcesses 1: %q", running, b)
		}
	}
	if runs != 4 {
		t.Errorf("%d ffmpeg runs, want 4", runs)
	}
	requireEmpty(t, tmp)
}

// TestPipeline_ProcessTimeout: an FFmpeg run that hangs is killed after
// ProcessTimeout and reported with the documented code.
func TestPipeline_ProcessTimeout(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	ff := wrapper(t, "exec "+sleep+" 30")
	srv := mediaServer(t)
	p, tmp := newPipeline(t, media.Config{AllowPrivate: true, FFmpegPath: ff, ProcessTimeout: 300 * time.Millisecond})

	for _, tc := range []struct {
		typ, file string
		code      errcode.Code
	}{
		{"audio", "tone.mp3", errcode.CodeAudioConversionFailed},
		{"image", "img.png", errcode.CodeMediaValidationFailed},
	} {
		start := time.Now()
		_, err := p.Prepare(context.Background(), status.MediaRequest{Type: tc.typ, URL: srv.URL + "/f/" + tc.file, Voice: true})
		requireCode(t, err, tc.code, "took longer than 300ms and was stopped")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: returned after %s", tc.typ, d)
		}
	}
	requireEmpty(t, tmp)
}

// TestPipeline_Cancelled: a cancelled request stops its FFmpeg run and
// leaves nothing behind.
func TestPipeline_Cancelled(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	started := filepath.Join(t.TempDir(), "started")
	ff := wrapper(t, "echo > "+started+"\nexec "+sleep+" 30")
	srv := mediaServer(t)
	fixture(t, "img.png")
	p, tmp := newPipeline(t, media.Config{AllowPrivate: true, FFmpegPath: ff})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once FFmpeg runs (the wrapper leaves a mark), not before.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if _, err := os.Stat(started); err == nil || ctx.Err() != nil {
				cancel()
				return
			}
		}
	}()
	_, err = p.Prepare(ctx, status.MediaRequest{Type: "image", URL: srv.URL + "/f/img.png"})
	requireCode(t, err, errcode.CodeMediaValidationFailed, "cancelled")
	requireEmpty(t, tmp)
}
