package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/statusflow/statusflow/internal/benchkit"
)

// mediaKind is one kind of media status part 5 publishes: a file generated
// once with FFmpeg, served by the benchmark's own loopback HTTP server.
type mediaKind struct {
	name string
	// what describes the input, and which path of internal/media
	// (convert.go) it takes.
	what string
	file string
	// recipe is the ffmpeg arguments that generate file (the output path
	// is appended).
	recipe []string
	// body is the Send Status body; %s is the mediaUrl.
	body string
}

// mediaKinds are realistic inputs of marketing automation: a story-sized
// photo, a phone video in each of the two codecs phones record (HEVC needs
// the re-encode, H.264 takes the pipeline's copy path), and a voice note as
// an MP3 (converted to Opus) and as WhatsApp's own Ogg Opus (copied).
var mediaKinds = []mediaKind{
	{name: "image", what: "1080×1920 JPEG photo (fractal + sensor noise, q 2): re-encoded to JPEG q 3 + 96 px thumbnail, one ffmpeg run",
		file: "photo.jpg", recipe: []string{"-f", "lavfi", "-i", "mandelbrot=size=1080x1920:rate=1:maxiter=400", "-vf", "noise=alls=14:allf=u",
			"-frames:v", "1", "-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj420p", "-f", "image2", "-update", "1"},
		body: `{"type":"image","mediaUrl":"%s","message":"New collection, 20%% off this week","source":"bench"}`},
	{name: "video-hevc", what: "20 s 1080×1920 30 fps HEVC 4.5 Mb/s + AAC (an iPhone's default codec): ffprobe, re-encode to H.264 720×1280 veryfast + thumbnail, ffprobe",
		file: "phone-hevc.mp4", recipe: append([]string{"-f", "lavfi", "-i", "testsrc2=size=1080x1920:rate=30:duration=20", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20",
			"-vf", "noise=alls=10:allf=t", "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params", "log-level=error"}, phoneVideoTail...),
		body: `{"type":"video","mediaUrl":"%s","message":"Behind the scenes","source":"bench"}`},
	{name: "video-h264", what: "the same video in H.264 High (an Android phone's default): ffprobe, stream copy + thumbnail, ffprobe",
		file: "phone-h264.mp4", recipe: append([]string{"-f", "lavfi", "-i", "testsrc2=size=1080x1920:rate=30:duration=20", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20",
			"-vf", "noise=alls=10:allf=t", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high"}, phoneVideoTail...),
		body: `{"type":"video","mediaUrl":"%s","message":"Behind the scenes","source":"bench"}`},
	{name: "voice-mp3", what: "30 s voice note, MP3 44.1 kHz mono 128 kb/s (a recorder's or TTS tool's): to Ogg Opus 32 kb/s + waveform, one ffmpeg run",
		file: "voice.mp3", recipe: []string{"-f", "lavfi", "-i", voiceSource, "-ac", "1", "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"},
		body: `{"type":"audio","mediaUrl":"%s","isVoice":true,"backgroundColor":"#128C7E","source":"bench"}`},
	{name: "voice-opus", what: "the same voice note as WhatsApp's own Ogg Opus (mono 48 kHz 32 kb/s): stream copy + waveform from the decode, one ffmpeg run",
		file: "voice.ogg", recipe: []string{"-f", "lavfi", "-i", voiceSource, "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-application", "voip", "-f", "ogg"},
		body: `{"type":"audio","mediaUrl":"%s","isVoice":true,"backgroundColor":"#128C7E","source":"bench"}`},
}

// phoneVideoTail holds a phone video's bitrate (noise defeats compression,
// so the rate cap decides the size: ~11.6 MB, under WhatsApp's 16 MiB) and
// its AAC audio.
var phoneVideoTail = []string{"-pix_fmt", "yuv420p", "-b:v", "4500k", "-maxrate", "4500k", "-bufsize", "9M",
	"-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest", "-movflags", "+faststart", "-f", "mp4"}

// voiceSource is speech-like: a 180 Hz voice whose loudness moves at 3 Hz
// (syllables), over a little noise.
const voiceSource = "aevalsrc=0.5*sin(2*PI*180*t)*(0.6+0.4*sin(2*PI*3*t))+0.05*(random(0)-0.5):s=44100:d=30"

// mediaResult is one kind's load run.
type mediaResult struct {
	kind  mediaKind
	alone time.Duration // one status with nothing else running (the warm-up)
	bare  bareCPU
	wrk   benchkit.WrkResult
	cpu   benchkit.CPUSplit
	ok    int // 2xx answers
	wall  time.Duration
}

// msPer is the CPU of classes in ms per published status.
func (r mediaResult) msPer(classes ...string) float64 {
	sum := 0.0
	for _, c := range classes {
		sum += r.cpu.By[c]
	}
	return sum / float64(r.ok) * 1000
}

// replica is the CPU one status costs its replica: statusflow's Go
// process and its ffmpeg/ffprobe children, in ms.
func (r mediaResult) replica() float64 { return r.msPer("statusflow", "ffmpeg") }

// media is part 5: media statuses (image, video, voice) through one replica
// with clustering on, on the sandbox engine, the media served from a
// loopback HTTP server in this process (STATUSFLOW_MEDIA_ALLOW_PRIVATE, the
// documented setting for local file servers).
//
// The sandbox takes the media path whatsmeow takes up to the upload:
// status.Service.buildMedia is engine-independent (media.Pipeline.Prepare:
// download, sniff, ffprobe/ffmpeg), then Session.Upload, where the sandbox
// runs whatsmeow's own media encryption (EncryptMedia: HKDF, AES-CBC,
// HMAC, both SHA-256s, what Client.UploadReader computes) and keeps the
// plaintext for the console's preview instead of POSTing the ciphertext
// to WhatsApp's media host; the message built, recorded and its events are
// the same as a real send's.
//
// Each kind: one status alone (the warm-up) while the pipeline's tool
// command lines are read from /proc; those command lines run directly on
// the same input (-media-bare times, the median kept: the bare baseline);
// then wrk with -media-conns connections (one thread and one instance
// each, so no instance's half share of the process slots binds) until
// -media-duration has passed and each connection has had -media-min
// answers, each connection then finishing its request and stopping, so no
// conversion is cut off and every CPU second measured belongs to a status
// counted. ffmpeg and ffprobe are children of
// statusflow: the CPU meter counts them as its descendants (benchkit.Tree:
// the cutime/cstime of children waited for, plus the live ones, at start
// and end), so runs shorter than the meter's 200 ms sampling count whole.
func media(dir string) {
	kinds := selectMediaKinds(*mediaKindsFlag)
	procs := *mediaProcs
	fmt.Printf("\n== 5. media statuses: one replica (clustering on, sandbox engine), STATUSFLOW_MEDIA_PROCESSES=%d, media served on loopback, wrk %d connections (one instance each) for %s per kind\n",
		procs, *mediaConns, *mediaDur)
	files := genMedia(kinds)
	origin := serveMedia(filepath.Dir(files[kinds[0].name]))
	defer origin.Close()

	nats := startNATS(*natsBin, dir)
	defer nats.Stop()
	db, url := newDB()
	sf := startStatusflow(*sfBin, dir, "statusflow", map[string]string{"STATUSFLOW_DATABASE_URL": url,
		"STATUSFLOW_NATS_URL": nats.URL, "STATUSFLOW_CLUSTER_REPLICA": "r1", "STATUSFLOW_CLUSTER_LEASE_TTL": leaseTTL.String(),
		"STATUSFLOW_MEDIA_ALLOW_PRIVATE": "true", "STATUSFLOW_MEDIA_PROCESSES": strconv.Itoa(procs)})
	defer sf.Stop()
	for i := range *mediaConns {
		name := fmt.Sprintf("media%d", i+1)
		createInstance(sf, name)
		waitOwner(sf, name, "r1")
	}
	self := os.Getpid()
	base := classifier(db, []*natsServer{nats}, sf)
	// "origin" is this process: the media's HTTP server (what a CDN does
	// for a real deployment) and the meter itself.
	classify := func(p benchkit.Proc) string {
		if p.PID == self {
			return "origin"
		}
		return base(p)
	}
	var res []mediaResult
	for round := range *mediaRounds {
		for _, k := range kinds {
			u := origin.URL + "/" + filepath.Base(files[k.name])
			body := fmt.Sprintf(k.body, u)
			r := mediaResult{kind: k}
			var argvs [][]string
			r.alone, argvs = publishCapturing(sf, "media1", body)
			r.bare = runBare(argvs, files[k.name], *mediaBare)
			fmt.Printf("%s (round %d): %s; %.1f MB\n  alone %s; pipeline tools %s; bare: the ffmpeg conversion %.0f ms CPU (%s wall), all tools %.0f ms (medians of %d)\n",
				k.name, round+1, k.what, fileMB(files[k.name]), r.alone.Round(time.Millisecond), toolNames(argvs),
				ms(r.bare.ffmpeg), r.bare.ffmpegWall.Round(time.Millisecond), ms(r.bare.all), *mediaBare)
			lua := filepath.Join(dir, "media-"+k.name+".lua")
			check(writeMediaLua(lua, body, time.Now().Add(*mediaDur), *mediaMin))
			m := benchkit.StartCPUMeter(classify, benchkit.Tree{PID: sf.PID(), Class: "ffmpeg"})
			t0 := time.Now()
			w, err := benchkit.WrkWith(sf.URL("/api/message/status/media1"), lua, *mediaConns, *mediaDur*3+10*time.Minute,
				benchkit.WrkOptions{Threads: *mediaConns, Timeout: 10 * time.Minute, UntilThreadsStop: true})
			r.wall = time.Since(t0)
			r.cpu = m.End()
			check(err)
			r.wrk, r.ok = w, w.Requests-w.Non2xx
			if w.Non2xx > 0 || r.ok == 0 {
				check(fmt.Errorf("%s: %d of %d answers not 2xx (see %s)", k.name, w.Non2xx, w.Requests, filepath.Join(dir, "statusflow.log")))
			}
			printMediaLoad(r)
			res = append(res, r)
		}
	}
	printMediaSummary(kinds, res)
}

func selectMediaKinds(list string) []mediaKind {
	var out []mediaKind
	for _, n := range strings.Split(list, ",") {
		i := slices.IndexFunc(mediaKinds, func(k mediaKind) bool { return k.name == strings.TrimSpace(n) })
		if i < 0 {
			check(fmt.Errorf("unknown media kind %q", n))
		}
		out = append(out, mediaKinds[i])
	}
	return out
}

// genMedia generates each kind's file once: it is kept in -media-cache
// under a name carrying a hash of its recipe (the 1080p HEVC video takes a
// minute or two to encode on 2 cores).
func genMedia(kinds []mediaKind) map[string]string {
	check(os.MkdirAll(*mediaCache, 0o700))
	files := map[string]string{}
	for _, k := range kinds {
		sum := sha256.Sum256([]byte(strings.Join(k.recipe, "\x00")))
		ext := filepath.Ext(k.file)
		path := filepath.Join(*mediaCache, strings.TrimSuffix(k.file, ext)+"-"+hex.EncodeToString(sum[:4])+ext)
		files[k.name] = path
		if _, err := os.Stat(path); err == nil {
			continue
		}
		t0 := time.Now()
		tmp := path + ".tmp"
		args := append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, k.recipe...), tmp)
		if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
			check(fmt.Errorf("generate %s: %v: %s", k.file, err, out))
		}
		check(os.Rename(tmp, path))
		fmt.Printf("generated %s (%.1f MB) in %s\n", filepath.Base(path), fileMB(path), time.Since(t0).Round(time.Second))
	}
	return files
}

// origin is the loopback HTTP server the media are fetched from.
type origin struct {
	URL string
	srv *http.Server
}

func (o *origin) Close() { o.srv.Close() }

func serveMedia(dir string) *origin {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return &origin{URL: "http://" + l.Addr().String(), srv: srv}
}

// publishCapturing publishes one status with body on instance and returns
// how long it took and the argv of each ffmpeg/ffprobe run statusflow
// started meanwhile, in order, read from /proc while they ran (with the
// prlimit(1) wrapper stripped). A run shorter than the polling can be
// missed: the publish is repeated (up to five times) until an ffmpeg run
// was seen.
func publishCapturing(sf *sfProc, instance, body string) (time.Duration, [][]string) {
	for range 5 {
		stop := make(chan struct{})
		got := make(chan [][]string)
		go func() { got <- pollTools(sf.PID(), stop) }()
		t0 := time.Now()
		code, resp := post(sf.URL("/api/message/status/"+instance), body)
		took := time.Since(t0)
		close(stop)
		argvs := <-got
		if code != 200 {
			check(fmt.Errorf("publish on %s: %d %s", instance, code, resp))
		}
		if slices.ContainsFunc(argvs, func(a []string) bool { return filepath.Base(a[0]) == "ffmpeg" }) {
			return took, argvs
		}
	}
	check(fmt.Errorf("no ffmpeg run of statusflow (pid %d) seen in five publishes", sf.PID()))
	return 0, nil
}

// pollTools reads the children of pid every millisecond until stop closes
// and returns the argv of each distinct ffmpeg/ffprobe child, in the order
// first seen.
func pollTools(pid int, stop <-chan struct{}) [][]string {
	seen := map[int]bool{}
	var out [][]string
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for {
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, f := range strings.Fields(string(b)) {
				child, _ := strconv.Atoi(f)
				if seen[child] {
					continue
				}
				cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
				if err != nil || len(cmd) == 0 {
					continue
				}
				argv := strings.Split(strings.TrimSuffix(string(cmd), "\x00"), "\x00")
				if filepath.Base(argv[0]) == "prlimit" {
					i := slices.Index(argv, "--")
					if i < 0 || i == len(argv)-1 {
						continue
					}
					argv = argv[i+1:]
				}
				if b := filepath.Base(argv[0]); b != "ffmpeg" && b != "ffprobe" {
					continue
				}
				seen[child] = true
				out = append(out, argv)
			}
		}
		select {
		case <-stop:
			return out
		case <-time.After(time.Millisecond):
		}
		// Threads come and go (Go's runtime starts more under load).
		tasks, _ = filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	}
}

// bareCPU is what the pipeline's tool runs cost when run directly.
type bareCPU struct {
	ffmpeg     time.Duration // the ffmpeg run (the conversion), CPU
	ffmpegWall time.Duration
	all        time.Duration // every tool run of the status (ffprobes too), CPU
}

// runBare runs the captured tool command lines n times, one after the
// other as the pipeline does, on a copy of input in a directory of its
// own: the pipeline's paths (its temp dir, named by the "-i file:<dir>/in"
// argument) become that directory's, and the PCM the voice path pipes to
// statusflow goes to /dev/null. The environment is the pipeline's
// (MALLOC_ARENA_MAX=2 only); prlimit is left out (limits cost nothing).
// CPU is the children's rusage (user + system, all threads); the medians
// of the n runs are returned.
func runBare(argvs [][]string, input string, n int) bareCPU {
	var tmpDir string
	for _, a := range argvs {
		if i := slices.Index(a, "-i"); i >= 0 && i+1 < len(a) && strings.HasSuffix(a[i+1], "/in") {
			tmpDir = strings.TrimPrefix(strings.TrimSuffix(a[i+1], "/in"), "file:")
			break
		}
	}
	if tmpDir == "" {
		check(fmt.Errorf("no pipeline input (-i file:<dir>/in) in %q", argvs))
	}
	bare, err := os.MkdirTemp("", "statusflow-bare-")
	check(err)
	defer os.RemoveAll(bare)
	src, err := os.ReadFile(input)
	check(err)
	check(os.WriteFile(filepath.Join(bare, "in"), src, 0o600))
	var ff, ffWall, all []float64
	for range n {
		var sumAll time.Duration
		for _, a := range argvs {
			args := make([]string, len(a)-1)
			for i, s := range a[1:] {
				args[i] = strings.ReplaceAll(s, tmpDir+"/", bare+"/")
			}
			cmd := exec.Command(a[0], args...)
			cmd.Env = []string{"MALLOC_ARENA_MAX=2"}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				check(fmt.Errorf("bare %s: %v: %s", filepath.Base(a[0]), err, stderr.Bytes()))
			}
			wall := time.Since(t0)
			cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			sumAll += cpu
			if filepath.Base(a[0]) == "ffmpeg" {
				ff, ffWall = append(ff, float64(cpu)), append(ffWall, float64(wall))
			}
		}
		all = append(all, float64(sumAll))
	}
	return bareCPU{ffmpeg: time.Duration(benchkit.Median(ff)), ffmpegWall: time.Duration(benchkit.Median(ffWall)), all: time.Duration(benchkit.Median(all))}
}

// writeMediaLua writes a wrk script: thread i (one connection each) posts
// body to instance media<i>; after deadline, each thread stops once its
// request is answered and it has had at least atLeast answers; any non-2xx
// answer stops it at once.
func writeMediaLua(path, body string, deadline time.Time, atLeast int) error {
	return os.WriteFile(path, []byte(fmt.Sprintf(`local n = 0
function setup(thread)
  n = n + 1
  thread:set("path", "/api/message/status/media" .. n)
end
local deadline, atLeast, answers = %d, %d, 0
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["token"] = "%s"
function request()
  return wrk.format(nil, path)
end
function response(status, headers, body)
  answers = answers + 1
  if status > 299 or (answers >= atLeast and os.time() >= deadline) then
    wrk.thread:stop()
  end
end
`, deadline.Unix(), atLeast, body, accountToken)), 0o600)
}

// post publishes with the account token, waiting as long as a video takes.
func post(u, body string) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", u, strings.NewReader(body))
	check(err)
	req.Header.Set("token", accountToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

var mediaClasses = []string{"statusflow", "ffmpeg", "nats", "pg", "pgshared", "tool", "origin"}

func printMediaLoad(r mediaResult) {
	secs := r.wall.Seconds()
	fmt.Printf("  load: %d statuses in %s: %.2f statuses/s (%.0f a minute), p50 %s, p99 %s; load %s\n",
		r.ok, r.wall.Round(100*time.Millisecond), float64(r.ok)/secs, float64(r.ok)/secs*60,
		r.wrk.P50.Round(time.Millisecond), r.wrk.P99.Round(time.Millisecond), benchkit.LoadAvg())
	var parts []string
	sum := 0.0
	for _, c := range mediaClasses {
		v := r.msPer(c)
		sum += v
		parts = append(parts, fmt.Sprintf("%s %.1f", c, v))
	}
	wall := r.cpu.Wall()
	fmt.Printf("  CPU per status, ms: %s; sum %.1f; other load %.2f CPUs, idle %.2f CPUs\n",
		strings.Join(parts, ", "), sum, r.cpu.By["other"]/wall, (r.cpu.Total-r.cpu.Busy)/wall)
	fmt.Printf("  replica (statusflow + its ffmpeg/ffprobe) %.1f ms per status = %.2f× the bare ffmpeg conversion (%.2f× all bare tool runs; the children alone %.2f×, Go %.2f×); %.0f statuses a minute per core\n",
		r.replica(), r.replica()/ms(r.bare.ffmpeg), r.replica()/ms(r.bare.all), r.msPer("ffmpeg")/ms(r.bare.ffmpeg),
		r.msPer("statusflow")/ms(r.bare.ffmpeg), 60e3/r.replica())
}

func printMediaSummary(kinds []mediaKind, res []mediaResult) {
	fmt.Printf("media statuses (medians of %d round(s)); CPU in ms per status; per core = 60 s / replica CPU:\n", *mediaRounds)
	fmt.Printf("  %-10s %9s %9s %9s %10s %10s %8s %8s %8s %9s %8s %8s %10s\n",
		"kind", "status/s", "p50", "p99", "statusflow", "ffmpeg+pr", "nats", "pg", "replica", "bare-ff", "ratio", "alone", "/min/core")
	for _, k := range kinds {
		var rs []mediaResult
		for _, r := range res {
			if r.kind.name == k.name {
				rs = append(rs, r)
			}
		}
		med := func(f func(mediaResult) float64) float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			return benchkit.Median(xs)
		}
		dur := func(f func(mediaResult) time.Duration) time.Duration {
			return time.Duration(med(func(r mediaResult) float64 { return float64(f(r)) })).Round(time.Millisecond)
		}
		fmt.Printf("  %-10s %9.2f %9s %9s %10.1f %10.1f %8.2f %8.2f %8.1f %9.1f %8.2f %8s %10.0f\n", k.name,
			med(func(r mediaResult) float64 { return float64(r.ok) / r.wall.Seconds() }),
			dur(func(r mediaResult) time.Duration { return r.wrk.P50 }), dur(func(r mediaResult) time.Duration { return r.wrk.P99 }),
			med(func(r mediaResult) float64 { return r.msPer("statusflow") }), med(func(r mediaResult) float64 { return r.msPer("ffmpeg") }),
			med(func(r mediaResult) float64 { return r.msPer("nats") }), med(func(r mediaResult) float64 { return r.msPer("pg", "pgshared") }),
			med(mediaResult.replica), med(func(r mediaResult) float64 { return ms(r.bare.ffmpeg) }),
			med(func(r mediaResult) float64 { return r.replica() / ms(r.bare.ffmpeg) }),
			dur(func(r mediaResult) time.Duration { return r.alone }),
			med(func(r mediaResult) float64 { return 60e3 / r.replica() }))
	}
}

func toolNames(argvs [][]string) string {
	names := make([]string, len(argvs))
	for i, a := range argvs {
		names[i] = filepath.Base(a[0])
	}
	return strings.Join(names, ", ")
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func fileMB(path string) float64 {
	fi, err := os.Stat(path)
	check(err)
	return float64(fi.Size()) / 1e6
}
