package console_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.mau.fi/whatsmeow/proto/waE2E"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// scriptedEngine stands in for whatsmeow at the engine seam: its sessions
// hand out QR codes and state changes when the test says so, through the
// same hooks the real engine calls.
type scriptedEngine struct {
	mu       sync.Mutex
	sessions map[string]*scriptedSession
}

func (e *scriptedEngine) Name() string { return whatsapp.EngineWhatsmeow }
func (e *scriptedEngine) Open(_ context.Context, p whatsapp.OpenParams) (whatsapp.Session, error) {
	s := &scriptedSession{name: p.Instance, hooks: p.Hooks, state: whatsapp.StateDisconnected}
	e.mu.Lock()
	e.sessions[p.Instance] = s
	e.mu.Unlock()
	return s, nil
}
func (e *scriptedEngine) session(name string) *scriptedSession {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sessions[name]
}

type scriptedSession struct {
	name  string
	hooks whatsapp.Hooks
	mu    sync.Mutex
	state whatsapp.State
	qrN   int
}

func (s *scriptedSession) State() whatsapp.State { s.mu.Lock(); defer s.mu.Unlock(); return s.state }
func (s *scriptedSession) JID() string           { return "" }

// Connect answers the first QR code, as whatsmeow's QR channel does.
func (s *scriptedSession) Connect(context.Context, string) (*whatsapp.Pairing, error) {
	code := s.rotate()
	s.setState(whatsapp.StateConnecting, "waiting for QR code scan")
	return &whatsapp.Pairing{State: whatsapp.StateConnecting, QRCode: code}, nil
}

// rotate emits the next QR code, as WhatsApp does every ~20 s.
func (s *scriptedSession) rotate() string {
	s.mu.Lock()
	s.qrN++
	code := fmt.Sprintf("2@scripted-qr-%d,%s", s.qrN, strings.Repeat("k", 40))
	s.mu.Unlock()
	s.hooks.OnQR(s.name, code)
	return code
}
func (s *scriptedSession) setState(st whatsapp.State, reason string) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	s.hooks.OnState(whatsapp.StateChange{Instance: s.name, State: st, Reason: reason, At: time.Now()})
}
func (s *scriptedSession) Reconnect(context.Context) error { return whatsapp.ErrNotPaired }
func (s *scriptedSession) Logout(context.Context) error    { return nil }
func (s *scriptedSession) Close() error                    { return nil }
func (s *scriptedSession) Upload(context.Context, io.ReadSeeker, int64, whatsapp.MediaKind) (*whatsapp.Upload, error) {
	return nil, whatsapp.ErrNotConnected
}
func (s *scriptedSession) SendStatus(context.Context, string, *waE2E.Message) (time.Time, error) {
	return time.Time{}, whatsapp.ErrNotConnected
}
func (s *scriptedSession) RevokeStatus(context.Context, string) (time.Time, error) {
	return time.Time{}, whatsapp.ErrNotConnected
}

// artifacts is where screenshots go: $STATUSFLOW_TEST_ARTIFACTS or
// <repo>/artifacts/console (git-ignored).
func artifacts(t *testing.T) string {
	dir := os.Getenv("STATUSFLOW_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts", "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium: scripts/test.sh installs Debian's chromium package")
	return ""
}

func ffmpegFile(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	args = append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...), p)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v %s", name, err, out)
	}
	return p
}

func writePNG(t *testing.T, path string) {
	img := image.NewRGBA(image.Rect(0, 0, 360, 640))
	for y := 0; y < 640; y++ {
		for x := 0; x < 360; x++ {
			img.Set(x, y, color.RGBA{uint8(40 + y/4), uint8(120 + x/4), 200, 255})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConsole_Browser drives the console in headless Chromium against a
// whole statusflow (SQLite, sandbox engine, real media pipeline).
func TestConsole_Browser(t *testing.T) {
	execPath := chromium(t)
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	eng := &scriptedEngine{sessions: map[string]*scriptedSession{}}
	a := apptest.New(t, apptest.Options{Engines: []whatsapp.Engine{eng}})
	base := "http://" + a.Addr()
	out := artifacts(t)

	// Media for the URL-based statuses, served on loopback.
	mdir := t.TempDir()
	ffmpegFile(t, mdir, "clip.mp4", "-f", "lavfi", "-i", "testsrc=size=320x568:rate=15:duration=3", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-f", "mp4")
	ffmpegFile(t, mdir, "hello.mp3", "-f", "lavfi", "-i", "sine=frequency=300:duration=4", "-c:a", "libmp3lame", "-f", "mp3")
	pngPath := filepath.Join(mdir, "poster.png")
	writePNG(t, pngPath)
	media := httptest.NewServer(http.FileServer(http.Dir(mdir)))
	t.Cleanup(media.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(execPath), chromedp.NoSandbox,
		chromedp.Flag("headless", "new"), chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The whole walk, not a step: a CI run at load 34 took 169 s, so the
	// bound is about hangs, not speed (each step has its own wait).
	ctx, cancelT := context.WithTimeout(ctx, 400*time.Second)
	t.Cleanup(cancelT)

	shot := func(name string) {
		t.Helper()
		var buf []byte
		if err := chromedp.Run(ctx, chromedp.Sleep(150*time.Millisecond), chromedp.FullScreenshot(&buf, 100)); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		os.WriteFile(filepath.Join(out, name+".png"), buf, 0o644)
	}
	run := func(what string, acts ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, acts...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// First load: GET / redirects to the console; time to interactive.
	start := time.Now()
	var tti, domInteractive float64
	var loc string
	run("open", chromedp.Navigate(base+"/"), chromedp.WaitVisible(`input[type=password]`),
		chromedp.Location(&loc),
		chromedp.Evaluate(`window.statusflow.interactiveAt || performance.now()`, &tti),
		chromedp.Evaluate(`performance.getEntriesByType('navigation')[0].domInteractive`, &domInteractive))
	t.Logf("console first load: time to interactive %.0f ms (DOM interactive %.0f ms; wall %s)", tti, domInteractive, time.Since(start).Round(time.Millisecond))
	fmt.Printf("console: time to interactive %.0f ms (DOM interactive %.0f ms)\n", tti, domInteractive)
	if !strings.HasSuffix(loc, "/console/") {
		t.Fatalf("GET / landed on %s", loc)
	}
	var inURL bool
	shot("01-sign-in")

	// Sign in with the account token; the token must never appear in a URL.
	run("sign in", chromedp.SendKeys(`input[type=password]`, apptest.AccountToken), chromedp.Click(`form.signin button[type=submit]`),
		chromedp.WaitVisible(`#instances`),
		chromedp.Evaluate(`performance.getEntriesByType('resource').some(e => e.name.includes(`+"`"+apptest.AccountToken+"`"+`)) || location.href.includes(`+"`"+apptest.AccountToken+"`"+`)`, &inURL))
	if inURL {
		t.Fatal("the token appeared in a URL")
	}

	// Create a sandbox instance from the form.
	run("create", chromedp.SendKeys(`form[aria-label="Create an instance"] input`, "shop"),
		chromedp.Click(`form[aria-label="Create an instance"] button[type=submit]`), chromedp.WaitVisible(`#pub-type`))

	published := func(what string) {
		t.Helper()
		var txt string
		run(what, chromedp.Click(`#pub-submit`),
			chromedp.Poll(`(() => { const t = document.querySelector('#pub-answer').textContent; return /Status sent|failed|^\d{3} /.test(t) && !/Publishing/.test(t) ? t : false })()`, &txt, chromedp.WithPollingTimeout(90*time.Second)))
		if !strings.Contains(txt, "Status sent successfully") || !strings.Contains(txt, "trace") {
			t.Fatalf("%s: answer %q", what, txt)
		}
	}
	setType := func(typ string) chromedp.Action {
		return chromedp.Evaluate(`(() => { const s = document.querySelector('#pub-type'); s.value = '`+typ+`'; s.dispatchEvent(new Event('change')); })()`, nil)
	}
	// Text, with a colour and a font, previewed as a phone shows it.
	run("text form", chromedp.SendKeys(`textarea[name=message]`, "Black Friday starts now!"),
		chromedp.SendKeys(`input[name=backgroundColor]`, "#7B1FA2"),
		chromedp.Evaluate(`(() => { const s = document.querySelector('select[name=font]'); s.value = 'serif'; s.dispatchEvent(new Event('change')); document.querySelector('input[name=backgroundColor]').dispatchEvent(new Event('input')); })()`, nil))
	shot("02-publish-text")
	published("publish text")
	// Image by file upload.
	run("image form", setType("image"), chromedp.WaitVisible(`#pub-file`), chromedp.SetUploadFiles(`#pub-file`, []string{pngPath}),
		chromedp.SendKeys(`textarea[name=message]`, "New arrivals"))
	shot("03-publish-image-upload")
	published("publish image by upload")
	// Video and voice note by URL.
	run("video form", setType("video"), chromedp.SendKeys(`#pub-mediaUrl`, media.URL+"/clip.mp4"))
	published("publish video")
	run("audio form", setType("audio"), chromedp.SendKeys(`#pub-mediaUrl`, media.URL+"/hello.mp3"), chromedp.SetValue(`input[name=backgroundColor]`, "#C2185B"))
	published("publish audio")

	// Sandbox preview: the four statuses rendered; the protobuf one click away.
	var n int
	run("preview", chromedp.Navigate(base+"/console/#/i/shop/preview"),
		chromedp.Poll(`document.querySelectorAll('#preview-list [data-message-id]').length >= 4 ? document.querySelectorAll('#preview-list [data-message-id]').length : false`, &n, chromedp.WithPollingTimeout(20*time.Second)))
	var types string
	run("preview types", chromedp.Evaluate(`[...document.querySelectorAll('#preview-list [data-type]')].map(e => e.dataset.type).join(',')`, &types))
	if types != "audio,video,image,text" {
		t.Fatalf("preview shows %q", types)
	}
	var waveBars, imgs int
	run("preview content", chromedp.Evaluate(`document.querySelectorAll('#preview-list .wave i').length`, &waveBars),
		// The video's thumbnail gives way to its player once the file is fetched.
		chromedp.Evaluate(`document.querySelectorAll('#preview-list .phone img, #preview-list .phone video').length`, &imgs))
	if waveBars != 64 || imgs < 2 {
		t.Fatalf("preview: %d waveform bars (want 64), %d thumbnails or players (want 2)", waveBars, imgs)
	}
	// The full media, fetched with the token header into blob URLs: the
	// video card's player loads the MP4 the sandbox kept (metadata read:
	// readyState >= 1, a duration), the voice note gets a player under its
	// waveform, the image card shows the full JPEG.
	var videoState struct {
		ReadyState float64
		Duration   float64
		Src        string
	}
	run("video player", chromedp.Evaluate(`document.querySelector('#preview-list [data-type=video]').scrollIntoView()`, nil),
		chromedp.Poll(`(() => { const v = document.querySelector('#preview-list [data-type=video] video'); return v && v.readyState >= 1 && v.duration > 0 ? {ReadyState: v.readyState, Duration: v.duration, Src: v.src} : false })()`,
			&videoState, chromedp.WithPollingTimeout(30*time.Second)))
	if !strings.HasPrefix(videoState.Src, "blob:") || !(videoState.Duration > 2 && videoState.Duration < 4) {
		t.Fatalf("video player: %+v (want a blob URL and the clip's 3 s)", videoState)
	}
	var audioReady, imageFull bool
	run("voice player", chromedp.Evaluate(`document.querySelector('#preview-list [data-type=audio]').scrollIntoView()`, nil),
		chromedp.Poll(`(() => { const a = document.querySelector('#preview-list [data-type=audio] .voice audio'); return !!a && a.readyState >= 1 && a.src.startsWith('blob:') })()`,
			&audioReady, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Evaluate(`document.querySelector('#preview-list [data-type=image]').scrollIntoView()`, nil),
		// The thumbnail is a few dozen pixels wide; the full image is 360.
		chromedp.Poll(`(() => { const i = document.querySelector('#preview-list [data-type=image] img'); return !!i && i.src.startsWith('blob:') && i.complete && i.naturalWidth >= 360 })()`,
			&imageFull, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Evaluate(`performance.getEntriesByType('resource').some(e => e.name.includes(`+"`"+apptest.AccountToken+"`"+`))`, &inURL))
	if inURL {
		t.Fatal("the token appeared in a URL")
	}
	run("back to top", chromedp.Evaluate(`window.scrollTo(0, 0)`, nil))
	shot("04-sandbox-preview")
	var proto string
	run("protobuf", chromedp.Click(`#preview-list details summary`), chromedp.Text(`#preview-list details pre`, &proto))
	if !strings.Contains(proto, "audioMessage") {
		t.Fatalf("protobuf view: %.200s", proto)
	}

	// Live events, no reload: a status published through the API appears,
	// and the preview grows.
	run("events page", chromedp.Navigate(base+"/console/#/i/shop/events"), chromedp.WaitVisible(`#evlist`))
	run("reload marker", chromedp.Evaluate(`window.__noReload = true`, nil))
	r := a.Do("POST", "/api/message/status/shop", apptest.AccountToken, map[string]any{"type": "text", "message": "from the API", "source": "crm"})
	if r.Code != 200 {
		t.Fatalf("publish: %d %s", r.Code, r.Raw)
	}
	id := r.Data()["messageId"].(string)
	var seen bool
	run("live event", chromedp.Poll(`document.querySelector('#evlist').textContent.includes('`+id+`') && window.__noReload === true`, &seen, chromedp.WithPollingTimeout(10*time.Second)))
	// The story by trace id, with its deliveries.
	run("story", chromedp.Navigate(base+"/console/#/i/shop/events/"+r.Data()["traceId"].(string)),
		chromedp.Poll(`document.querySelector('#story').textContent.includes('status.published')`, &seen, chromedp.WithPollingTimeout(10*time.Second)))
	shot("05-events-story")

	// Views & schedules: a scheduled status listed and cancelled from the
	// page; simulated viewers of the API-published status counted.
	if r := a.Do("POST", "/api/message/status/shop", apptest.AccountToken, map[string]any{"type": "text", "message": "later", "publishAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}); r.Code != 202 {
		t.Fatalf("schedule: %d %s", r.Code, r.Raw)
	}
	if r := a.Do("POST", "/api/sandbox/shop/views", apptest.AccountToken, map[string]any{"messageId": id, "count": 2}); r.Code != 200 {
		t.Fatalf("views: %d %s", r.Code, r.Raw)
	}
	var state, views string
	run("schedules", chromedp.Navigate(base+"/console/#/i/shop/schedules"), chromedp.WaitVisible(`#schedule-list [data-schedule-id]`),
		chromedp.Evaluate(`window.confirm = () => true`, nil), chromedp.Click(`#schedule-list [data-schedule-id]`),
		chromedp.Poll(`(() => { const t = document.querySelector('#schedule-list').textContent; return t.includes('cancelled') ? t : false })()`, &state, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.SendKeys(`#views-message-id`, id), chromedp.Click(`#views-show`),
		chromedp.Poll(`(() => { const b = document.querySelector('#views-result .views-count'); return b ? b.textContent : false })()`, &views, chromedp.WithPollingTimeout(10*time.Second)))
	if views != "2" {
		t.Fatalf("views count %q, want 2", views)
	}
	shot("05b-views-schedules")

	// Link a phone: the QR image changes when WhatsApp rotates the code.
	if r := a.Do("POST", "/api/instance/new", apptest.AccountToken, map[string]any{"name": "phone", "engine": "whatsmeow"}); r.Code != 201 {
		t.Fatalf("create whatsmeow instance: %d %s", r.Code, r.Raw)
	}
	var code1, code2, src1, src2 string
	run("link", chromedp.Navigate(base+"/console/#/i/phone/link"), chromedp.WaitVisible(`#show-qr`), chromedp.Click(`#show-qr`),
		chromedp.Poll(`(() => { const i = document.querySelector('#qr'); return i && !i.hidden && i.dataset.code ? i.dataset.code : false })()`, &code1, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.AttributeValue(`#qr`, "src", &src1, nil))
	shot("06-link-qr")
	eng.session("phone").rotate()
	run("rotated", chromedp.Poll(`(() => { const c = document.querySelector('#qr').dataset.code; return c !== '`+code1+`' ? c : false })()`, &code2, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.AttributeValue(`#qr`, "src", &src2, nil))
	if !strings.Contains(code2, "scripted-qr-2") || src1 == src2 || !strings.HasPrefix(src2, "data:image/png;base64,") {
		t.Fatalf("QR did not rotate: %q → %q", code1, code2)
	}
	eng.session("phone").setState(whatsapp.StateConnecting, "syncing contacts")
	var line string
	run("syncing", chromedp.Poll(`(() => { const t = document.querySelector('#link-state').textContent; return t.includes('syncing contacts') ? t : false })()`, &line, chromedp.WithPollingTimeout(10*time.Second)))

	// 100 events/s on the events page: instance.state events through the
	// real path (manager → core → event log → hub → SSE → page).
	run("events of phone", chromedp.Navigate(base+"/console/#/i/phone/events"), chromedp.WaitVisible(`#evlist`),
		chromedp.Evaluate(`(() => { const s = window.statusflow.stats; window.__base = {r: s.received, n: s.rendered};
			window.__gap = 0; let last = performance.now(); window.__raf = true;
			const f = (t) => { window.__gap = Math.max(window.__gap, t - last); last = t; if (window.__raf) requestAnimationFrame(f); }; requestAnimationFrame(f); })()`, nil))
	const burst = 500
	sess := eng.session("phone")
	tick := time.NewTicker(10 * time.Millisecond)
	sent := time.Now()
	for i := 0; i < burst; i++ {
		<-tick.C
		sess.setState(whatsapp.StateConnecting, fmt.Sprintf("burst %d", i))
	}
	tick.Stop()
	sendDur := time.Since(sent)
	var got struct {
		Received, Rendered, Dropped float64
		Gap                         float64
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		run("burst stats", chromedp.Evaluate(`(() => { const s = window.statusflow.stats; return {Received: s.received - window.__base.r, Rendered: s.rendered - window.__base.n, Dropped: s.dropped, Gap: window.__gap}; })()`, &got))
		if int(got.Rendered) >= burst || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	lag := time.Since(sent) - sendDur
	fmt.Printf("console events page: %d events sent in %s (%.0f/s); received %.0f, rendered %.0f, dropped %.0f; caught up %s after the last; longest frame gap %.0f ms\n",
		burst, sendDur.Round(time.Millisecond), float64(burst)/sendDur.Seconds(), got.Received, got.Rendered, got.Dropped, lag.Round(time.Millisecond), got.Gap)
	if int(got.Rendered) < burst || got.Dropped != 0 {
		t.Fatalf("the events page lost events: rendered %.0f of %d, dropped %.0f", got.Rendered, burst, got.Dropped)
	}
	shot("07-events-live")

	// Phone-size and dark.
	run("phone size", emulation.SetDeviceMetricsOverride(390, 844, 2, true),
		chromedp.Evaluate(`localStorage.setItem('statusflow.theme', 'dark')`, nil),
		chromedp.Navigate(base+"/console/#/i/shop/publish"), chromedp.Reload(), chromedp.WaitVisible(`#pub-type`))
	shot("08-phone-dark-publish")
	run("phone preview", chromedp.Navigate(base+"/console/#/i/shop/preview"), chromedp.WaitVisible(`#preview-list [data-message-id]`))
	shot("09-phone-dark-preview")
	run("desktop", emulation.ClearDeviceMetricsOverride(), chromedp.Evaluate(`localStorage.removeItem('statusflow.theme')`, nil))

	// An instance token sees only its instance, in the page and in the API.
	shopTok := ""
	if r := a.Do("POST", "/api/instance/new", apptest.AccountToken, map[string]any{"name": "solo", "engine": "sandbox"}); r.Code == 201 {
		shopTok = r.Body["instance"].(map[string]any)["token"].(string)
	} else {
		t.Fatalf("%d %s", r.Code, r.Raw)
	}
	var cards int
	var listed float64
	run("instance token", chromedp.Click(`#signout`), chromedp.WaitVisible(`input[type=password]`),
		chromedp.SendKeys(`input[type=password]`, shopTok), chromedp.Click(`form.signin button[type=submit]`),
		chromedp.WaitVisible(`#instances [data-instance]`),
		chromedp.Evaluate(`document.querySelectorAll('#instances [data-instance]').length`, &cards),
		chromedp.Evaluate(`fetch('/api/instance/list', {headers: {token: sessionStorage.getItem('statusflow.token')}}).then(r => r.json()).then(j => j.instances.length)`, &listed, func(p *cdruntime.EvaluateParams) *cdruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if cards != 1 || listed != 1 {
		t.Fatalf("instance token sees %d cards, API lists %v", cards, listed)
	}
	var name string
	run("which", chromedp.AttributeValue(`#instances [data-instance]`, "data-instance", &name, nil))
	if name != "solo" {
		t.Fatalf("instance token sees %s", name)
	}
	var hasCreate bool
	run("no create", chromedp.Evaluate(`!!document.querySelector('form[aria-label="Create an instance"]')`, &hasCreate))
	if hasCreate {
		t.Fatal("an instance token is offered instance creation")
	}
	shot("10-instance-token")

	// The API reference, with "try it" using the token of this tab.
	var ops int
	run("docs", chromedp.Navigate(base+"/docs/"),
		chromedp.Poll(`document.querySelectorAll('.opblock').length || false`, &ops, chromedp.WithPollingTimeout(30*time.Second)))
	if ops < 20 {
		t.Fatalf("docs show %d operations", ops)
	}
	var authorized bool
	run("docs token", chromedp.Evaluate(`!!(window.ui.authSelectors.authorized().toJS().tokenHeader)`, &authorized))
	if !authorized {
		t.Fatal("the docs do not carry the console's token for try-it-out")
	}
	shot("11-docs")
}
