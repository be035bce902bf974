package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Every ffmpeg and ffprobe argument list starts with these. They keep the
// tools quiet except for errors (which become user-facing reasons), stop
// ffmpeg from reading our stdin, and restrict inputs to local files: the
// demuxer is always forced from the sniffed format (see format.demuxer), so a
// downloaded playlist or concat script can never make FFmpeg open URLs or
// other local paths.
var (
	ffmpegPrelude  = []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}
	ffprobePrelude = []string{"-hide_banner", "-loglevel", "error"}
	inputGuard     = []string{"-protocol_whitelist", "file"}
)

// runError is a failed ffmpeg or ffprobe run with what the tool said.
type runError struct {
	tool   string
	reason string // last lines of stderr, or why the run was stopped
	err    error
	// stopped: we ended the run (timeout, cancellation), so it says nothing
	// about the input.
	stopped bool
}

func (e *runError) Error() string { return e.tool + ": " + e.reason }
func (e *runError) Unwrap() error { return e.err }

// run runs one ffmpeg or ffprobe process: it waits for a process slot (at most
// MaxProcesses at once), kills the process after ProcessTimeout or when ctx
// ends, writes its stdout to stdout (nil discards) and keeps the tail of
// stderr for the error. args must be built from constants and our own
// temp-file paths only.
func (p *Pipeline) run(ctx context.Context, bin string, args []string, stdout io.Writer) error {
	tool := "ffmpeg"
	if bin == p.ffprobe {
		tool = "ffprobe"
	}
	release, err := p.slots.acquire(ctx, instanceOf(ctx))
	if err != nil {
		return &runError{tool: tool, reason: "cancelled while waiting for a free process slot", err: err}
	}
	defer release()

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ProcessTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if p.prlimit != "" {
		// prlimit sets the limits on itself, then execs the tool: they hold
		// from the tool's first instruction (setting them on a started
		// process would leave a window).
		cmd = exec.CommandContext(ctx, p.prlimit,
			"--as="+strconv.FormatInt(p.cfg.ProcessMemory, 10),
			"--cpu="+strconv.Itoa(int(max(1, p.cfg.ProcessCPU.Seconds()))),
			"--core=0", "--", bin)
		cmd.Args = append(cmd.Args, args...)
	}
	// Nothing from our environment (proxies, credentials) reaches the tools;
	// glibc keeps two malloc arenas instead of eight per core, so the address
	// space limit measures what the tool uses, not what it reserved.
	cmd.Env = []string{"MALLOC_ARENA_MAX=2"}
	cmd.Stdout = stdout
	tail := &tailBuffer{max: 2048}
	cmd.Stderr = tail
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err == nil {
		return nil
	}
	reason := tail.lastLines(3)
	stopped := parent.Err() != nil || ctx.Err() != nil
	switch {
	case parent.Err() != nil:
		reason = "cancelled: the request ended before " + tool + " finished"
	case ctx.Err() != nil:
		reason = fmt.Sprintf("took longer than %s and was stopped", p.cfg.ProcessTimeout)
	case killedBy(err, syscall.SIGXCPU) || killedBy(err, syscall.SIGKILL):
		reason = fmt.Sprintf("used more than its %s of CPU time and was stopped", p.cfg.ProcessCPU)
	case strings.Contains(reason, "Cannot allocate memory") || strings.Contains(reason, "out of memory") || killedBy(err, syscall.SIGABRT) || killedBy(err, syscall.SIGSEGV):
		reason = fmt.Sprintf("needed more than its %d MiB of memory and was stopped", p.cfg.ProcessMemory>>20)
	case reason == "":
		reason = err.Error()
	}
	return &runError{tool: tool, reason: reason, err: err, stopped: stopped}
}

// killedBy reports whether a run ended by signal sig.
func killedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

type instanceKey struct{}

// withInstance marks ctx with the instance whose media is being prepared.
func withInstance(ctx context.Context, instance string) context.Context {
	return context.WithValue(ctx, instanceKey{}, instance)
}

func instanceOf(ctx context.Context) string {
	s, _ := ctx.Value(instanceKey{}).(string)
	return s
}

// slots hands out the FFmpeg process slots: at most total at once, and at
// most perInstance to one instance, so one instance's queue of heavy media
// waits on its own share while other instances' media keep moving.
type slots struct {
	total chan struct{}
	per   int

	mu    sync.Mutex
	byKey map[string]*instanceSlots
}

type instanceSlots struct {
	ch    chan struct{}
	users int // callers holding or waiting for ch; the entry goes at 0
}

func newSlots(total, perInstance int) *slots {
	return &slots{total: make(chan struct{}, total), per: perInstance, byKey: map[string]*instanceSlots{}}
}

// acquire waits for one of the instance's slots, then one of the shared
// ones, and returns the function that gives both back.
func (s *slots) acquire(ctx context.Context, instance string) (release func(), err error) {
	s.mu.Lock()
	is := s.byKey[instance]
	if is == nil {
		is = &instanceSlots{ch: make(chan struct{}, s.per)}
		s.byKey[instance] = is
	}
	is.users++
	s.mu.Unlock()
	done := func() {
		s.mu.Lock()
		if is.users--; is.users == 0 {
			delete(s.byKey, instance)
		}
		s.mu.Unlock()
	}
	select {
	case is.ch <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
	select {
	case s.total <- struct{}{}:
	case <-ctx.Done():
		<-is.ch
		done()
		return nil, ctx.Err()
	}
	return func() { <-s.total; <-is.ch; done() }, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) lastLines(n int) string {
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			keep = append([]string{l}, keep...)
		}
	}
	return strings.Join(keep, "; ")
}

// limitedBuffer is a bytes.Buffer that refuses to grow past max, so a
// misbehaving tool cannot make us hold unbounded output.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(b []byte) (int, error) {
	if l.Len()+len(b) > l.max {
		return 0, errors.New("output too large")
	}
	return l.Buffer.Write(b)
}

// probe is the part of ffprobe's JSON we use.
type probe struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

type probeStream struct {
	CodecType    string `json:"codec_type"`
	CodecName    string `json:"codec_name"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	PixFmt       string `json:"pix_fmt"`
	Duration     string `json:"duration"`
	Channels     int    `json:"channels"`
	SideDataList []struct {
		Rotation float64 `json:"rotation"`
	} `json:"side_data_list"`
	Tags        map[string]string `json:"tags"`
	Disposition map[string]int    `json:"disposition"`
}

// stream returns the first stream of a kind ("video", "audio"), or nil.
func (pr *probe) stream(kind string) *probeStream {
	for i := range pr.Streams {
		if pr.Streams[i].CodecType == kind {
			return &pr.Streams[i]
		}
	}
	return nil
}

// duration is the container's duration, or the longest stream's.
func (pr *probe) duration() float64 {
	if d, err := strconv.ParseFloat(pr.Format.Duration, 64); err == nil && d > 0 {
		return d
	}
	var best float64
	for _, s := range pr.Streams {
		if d, err := strconv.ParseFloat(s.Duration, 64); err == nil && d > best {
			best = d
		}
	}
	return best
}

// displaySize is the size a player shows: coded size, swapped when the
// stream carries a quarter-turn rotation.
func (s *probeStream) displaySize() (w, h int) {
	rot := 0.0
	for _, sd := range s.SideDataList {
		if sd.Rotation != 0 {
			rot = sd.Rotation
		}
	}
	if r, err := strconv.ParseFloat(s.Tags["rotate"], 64); err == nil && rot == 0 {
		rot = r
	}
	if q := int(rot) % 180; q == 90 || q == -90 {
		return s.Height, s.Width
	}
	return s.Width, s.Height
}

// probeFile runs ffprobe on one of our files with a forced demuxer.
func (p *Pipeline) probeFile(ctx context.Context, demuxer, path string) (*probe, error) {
	args := append(append([]string{}, ffprobePrelude...), inputGuard...)
	args = append(args, "-f", demuxer, "-show_format", "-show_streams", "-of", "json", "file:"+path)
	out := &limitedBuffer{max: 1 << 20}
	if err := p.run(ctx, p.ffprobe, args, out); err != nil {
		return nil, err
	}
	var pr probe
	if err := json.Unmarshal(out.Bytes(), &pr); err != nil {
		return nil, &runError{tool: "ffprobe", reason: "unreadable output", err: err}
	}
	return &pr, nil
}
