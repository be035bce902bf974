package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	pngenc "image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/renderer"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/store"
)

// TestContract is issue 13 §6: the server keeps to /openapi.json. For every
// operation of the document it sends requests generated from the document
// (valid ones built from the schemas' examples and libopenapi's mock
// renderer, and invalid ones: missing or wrong tokens, unknown and
// malformed path parameters, broken, mistyped, oversized and NUL-carrying
// bodies and query parameters, oversized headers) and checks every answer
// with libopenapi-validator: its status code is declared, its content type
// is declared for that code, its body matches that schema, and it is never
// a 5xx. Each operation must also answer a declared 2xx at least once, so
// the success schemas are exercised and not just the error envelope.
func TestContract(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			runContract(t, d)
		})
	}
}

type contractFixture struct {
	a        *apptest.App
	instTok  string
	otherTok string
	hookID   string
	hookSec  string
	delivery string
	message  string // a published status's id
	schedule string // a pending schedule's id
	upload   string // an uploaded media file's id
	mediaMsg string // an image status's message id
	png      []byte // a small valid PNG
	client   *http.Client
}

func runContract(t *testing.T, d store.Dialect) {
	a := apptest.New(t, apptest.Options{Dialect: d, Configure: func(c *config.Config) {
		c.RateLimit = 1_000_000
	}})
	f := &contractFixture{a: a, client: &http.Client{Timeout: 30 * time.Second}}
	f.instTok = a.CreateInstance("c1", "sandbox")
	f.otherTok = a.CreateInstance("c2", "sandbox")
	// Resources the path parameters name: a webhook (its deliveries come
	// from a publish), an inbound hook.
	if r := a.Do("POST", "/api/events/webhook/c1", f.instTok, map[string]any{"label": "w1", "url": "http://127.0.0.1:9/hook", "events": []string{"status.published"}}); r.Code/100 != 2 {
		t.Fatalf("webhook: %d %s", r.Code, r.Raw)
	}
	r := a.Do("POST", "/api/events/inbound/c1", f.instTok, map[string]any{"node": "status.publish"})
	if r.Code != 201 {
		t.Fatalf("inbound: %d %s", r.Code, r.Raw)
	}
	hook, _ := r.Body["hook"].(map[string]any)
	f.hookID, _ = hook["id"].(string)
	f.hookSec, _ = hook["secret"].(string)
	for range 3 { // statuses for the delete requests to delete
		r := a.Do("POST", "/api/message/status/c1", f.instTok, map[string]any{"type": "text", "message": "contract"})
		if r.Code != 200 {
			t.Fatalf("publish: %d %s", r.Code, r.Raw)
		}
		f.message, _ = r.Data()["messageId"].(string)
	}
	var png bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	if err := pngenc.Encode(&png, img); err != nil {
		t.Fatal(err)
	}
	f.png = png.Bytes()
	r = a.Do("POST", "/api/media/c1", f.instTok, f.png, "Content-Type", "image/png")
	if r.Code != 201 {
		t.Fatalf("upload: %d %s", r.Code, r.Raw)
	}
	f.upload, _ = r.Data()["id"].(string)
	// An image status, for the sandbox media route to serve.
	r = a.Do("POST", "/api/media/c1", f.instTok, f.png, "Content-Type", "image/png")
	if r.Code != 201 {
		t.Fatalf("upload: %d %s", r.Code, r.Raw)
	}
	r = a.Do("POST", "/api/message/status/c1", f.instTok, map[string]any{"type": "image", "mediaUrl": r.Data()["mediaUrl"]})
	if r.Code != 200 {
		t.Fatalf("publish image: %d %s", r.Code, r.Raw)
	}
	f.mediaMsg, _ = r.Data()["messageId"].(string)
	r = a.Do("POST", "/api/message/status/c1", f.instTok, map[string]any{"type": "text", "message": "later", "publishAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	if r.Code != 202 {
		t.Fatalf("schedule: %d %s", r.Code, r.Raw)
	}
	f.schedule, _ = r.Data()["scheduleId"].(string)
	for i := 0; i < 100 && f.delivery == ""; i++ {
		r := a.Do("GET", "/api/events/deliveries/c1", f.instTok, nil)
		if ds, _ := r.Body["deliveries"].([]any); len(ds) > 0 {
			f.delivery, _ = ds[0].(map[string]any)["id"].(string)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	raw := a.Do("GET", "/openapi.json", "", nil).Raw
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}

	type op struct {
		path, method string
		o            *v3.Operation
	}
	var ops []op
	for p, item := range model.Model.Paths.PathItems.FromOldest() {
		for m, o := range item.GetOperations().FromOldest() {
			ops = append(ops, op{p, strings.ToUpper(m), o})
		}
	}
	// Destructive operations last (instance delete at the very end), so the
	// fixture's resources exist for the others; the inbound hook first, before
	// its secret is rotated.
	rank := func(o op) int {
		switch {
		case o.path == "/hooks/in/{hookId}":
			return -1
		case o.path == "/api/instance/delete/{instance}":
			return 3
		case o.path == "/api/instance/logout/{instance}":
			return 2
		case o.method == "DELETE":
			return 1
		}
		return 0
	}
	sort.SliceStable(ops, func(i, j int) bool { return rank(ops[i]) < rank(ops[j]) })

	rng := rand.New(rand.NewPCG(13, 6))
	mock := renderer.CreateRendererUsingDefaultDictionary()
	failures := map[string]string{}
	total := 0
	for _, o := range ops {
		name := o.method + " " + o.path
		ok2xx := false
		for _, req := range f.requests(o.path, o.method, o.o, mock, rng) {
			total++
			code, problem := f.check(v, req)
			if testing.Verbose() && os.Getenv("CONTRACT_VERBOSE") != "" {
				t.Logf("%s %s: %d", name, req.desc, code)
			}
			if code/100 == 2 {
				ok2xx = true
			}
			if problem != "" {
				key := fmt.Sprintf("%s → %d", name, code)
				if _, seen := failures[key]; !seen {
					failures[key] = fmt.Sprintf("%s (request: %s)", problem, req.desc)
				}
			}
		}
		if !ok2xx {
			failures[name+" → no 2xx"] = "no generated request got a success answer"
		}
	}
	t.Logf("%d requests on %d operations", total, len(ops))
	keys := make([]string, 0, len(failures))
	for k := range failures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("%s: %s", k, failures[k])
	}
}

// contractRequest is one generated request.
type contractRequest struct {
	desc    string
	method  string
	target  string
	body    []byte
	headers map[string]string
}

// requests generates the requests for one operation: a valid baseline and
// its variations.
func (f *contractFixture) requests(path, method string, o *v3.Operation, mock *renderer.SchemaRenderer, rng *rand.Rand) []contractRequest {
	valid := map[string]string{"path": "", "instance": "c1", "label": "w1", "id": f.delivery, "hookId": f.hookID, "name": "origin.json"}
	if strings.Contains(path, "/inbound/") {
		valid["id"] = f.hookID
	}
	if strings.HasPrefix(path, "/api/nodes/") {
		valid["id"] = "status.publish"
	}
	if strings.HasPrefix(path, "/api/schedule/") {
		valid["id"] = f.schedule
	}
	if strings.HasPrefix(path, "/api/media/") {
		valid["id"] = f.upload
	}
	if strings.HasPrefix(path, "/api/sandbox/") {
		valid["messageId"] = f.mediaMsg
	}
	fill := func(over map[string]string) string {
		p := path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") {
				n := strings.Trim(seg, "{}")
				val := valid[n]
				if x, ok := over[n]; ok {
					val = x
				}
				p = strings.Replace(p, seg, url.PathEscape(val), 1)
			}
		}
		return p
	}
	secured := len(o.Security) > 0
	base := func() contractRequest {
		h := map[string]string{"Content-Type": "application/json"}
		if secured {
			h["token"] = apptest.AccountToken
		}
		return contractRequest{method: method, target: fill(nil), headers: h}
	}

	// Bodies: the schema's examples, a mock from the schema, and broken ones.
	var bodies [][]byte
	var props []string
	if o.RequestBody != nil {
		if mt := o.RequestBody.Content.GetOrZero("application/json"); mt != nil && mt.Schema != nil {
			s := mt.Schema.Schema()
			for _, ex := range s.Examples {
				var val any
				if ex.Decode(&val) == nil {
					b, _ := json.Marshal(val)
					bodies = append(bodies, b)
				}
			}
			if m, err := json.Marshal(mock.RenderSchema(s)); err == nil {
				bodies = append(bodies, m)
			}
			for p := range s.Properties.KeysFromOldest() {
				props = append(props, p)
			}
		}
	}
	if path == "/api/instance/new" {
		// A fresh name each time, so creation can succeed (and 409 on a repeat).
		bodies = append(bodies, []byte(`{"name":"gen`+strconv.Itoa(rng.IntN(1e6))+`","engine":"sandbox"}`), []byte(`{"name":"c1","engine":"sandbox"}`))
	}
	if path == "/api/chat/delete/{instance}" {
		bodies = append(bodies, []byte(`{"messageId":"`+f.message+`","deleteForEveryone":true}`))
	}
	if path == "/api/sandbox/{instance}/views" {
		bodies = append(bodies, []byte(`{"messageId":"`+f.message+`","count":2}`))
	}
	if path == "/api/nodes/{id}/execute" {
		bodies = append(bodies, []byte(`{"instance":"c1","input":{"type":"text","message":"contract"},"origin":{"platform":"n8n"}}`))
	}

	var out []contractRequest
	add := func(desc string, mod func(r *contractRequest)) {
		r := base()
		r.desc = desc
		if len(bodies) > 0 {
			r.body = bodies[0]
		}
		mod(&r)
		out = append(out, r)
	}
	if len(bodies) == 0 {
		add("valid", func(r *contractRequest) {})
	}
	for i, b := range bodies {
		b := b
		add("body #"+strconv.Itoa(i), func(r *contractRequest) { r.body = b })
		if o.RequestBody != nil && (strings.HasPrefix(path, "/api/message/") || strings.HasPrefix(path, "/api/chat/") || strings.HasSuffix(path, "/execute")) {
			add("async body #"+strconv.Itoa(i), func(r *contractRequest) { r.body = b; r.headers["Prefer"] = "respond-async" })
		}
	}
	if path == "/hooks/in/{hookId}" {
		for _, b := range bodies {
			b := b
			add("signed body", func(r *contractRequest) { r.body = b; f.sign(r) })
		}
		add("signed text", func(r *contractRequest) {
			r.body = []byte(`{"input":{"type":"text","message":"hook"}}`)
			f.sign(r)
		})
	}
	if path == "/api/media/{instance}" {
		add("raw PNG", func(r *contractRequest) { r.body = f.png; r.headers["Content-Type"] = "image/png" })
		add("not an image", func(r *contractRequest) { r.body = []byte("hello"); r.headers["Content-Type"] = "image/png" })
		add("empty multipart", func(r *contractRequest) { r.headers["Content-Type"] = "multipart/form-data; boundary=x" })
	}
	// Path parameters and query parameters.
	var pnames []string
	for _, p := range o.Parameters {
		switch p.In {
		case "path":
			pnames = append(pnames, p.Name)
		case "query":
			name := p.Name
			if name == "messageId" {
				add("query messageId", func(r *contractRequest) { r.target += "?messageId=" + f.message })
			}
			if p.Schema != nil {
				if m, err := json.Marshal(mock.RenderSchema(p.Schema.Schema())); err == nil {
					val := strings.Trim(string(m), `"`)
					add("query "+name+"="+val, func(r *contractRequest) { r.target += "?" + name + "=" + url.QueryEscape(val) })
				}
			}
			for _, bad := range []string{"-1", "abc", "0", "99999999999999999999", "\x00", strings.Repeat("z", 5000)} {
				add("query "+name+" bad", func(r *contractRequest) { r.target += "?" + name + "=" + url.QueryEscape(bad) })
			}
		}
	}
	for _, n := range pnames {
		for _, bad := range []string{"does-not-exist", "c2", "a\x00b", "%", "..", strings.Repeat("x", 2000), "ü"} {
			add("path "+n+"="+strconv.Quote(bad), func(r *contractRequest) { r.target = fill(map[string]string{n: bad}) })
		}
	}
	// Tokens.
	if secured {
		add("no token", func(r *contractRequest) { delete(r.headers, "token") })
		add("wrong token", func(r *contractRequest) { r.headers["token"] = "sfi_wrong" })
		add("instance token", func(r *contractRequest) { r.headers["token"] = f.instTok })
		add("other instance's token", func(r *contractRequest) { r.headers["token"] = f.otherTok })
		add("bearer", func(r *contractRequest) {
			delete(r.headers, "token")
			r.headers["Authorization"] = "Bearer " + f.instTok
		})
	}
	// Broken bodies.
	if o.RequestBody != nil {
		for _, b := range []string{"", "{", "[]", "null", "7", `{"unknown":1}`, "{\"type\":\"text\",\"message\":\"a\x00b\"}", "\xff\xfe"} {
			b := b
			add("body "+strconv.Quote(b), func(r *contractRequest) { r.body = []byte(b) })
		}
		for _, p := range props {
			for _, val := range []string{`12345`, `"x"`, `[]`, `{}`, `null`, `"` + strings.Repeat("a", 70000) + `"`, `"\u0000"`} {
				p, val := p, val
				add("body "+p+"="+trunc(val), func(r *contractRequest) {
					var m map[string]any
					if json.Unmarshal(r.body, &m) != nil || m == nil {
						m = map[string]any{}
					}
					m[p] = json.RawMessage(val)
					r.body, _ = json.Marshal(m)
				})
			}
		}
		add("body too large", func(r *contractRequest) { r.body = bytes.Repeat([]byte(" "), 2<<20) })
		add("not JSON content type", func(r *contractRequest) { r.headers["Content-Type"] = "text/plain" })
	}
	// Just over Fiber's 4 KiB header buffer: the server answers 431 and
	// closes, so a much larger header would still be in flight (reset).
	add("headers too large", func(r *contractRequest) { r.headers["X-Big"] = strings.Repeat("h", 4500) })
	return out
}

func trunc(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// sign signs a request to an inbound hook with the Standard Webhooks library.
func (f *contractFixture) sign(r *contractRequest) {
	wh, err := standardwebhooks.NewWebhook(f.hookSec)
	if err != nil {
		panic(err)
	}
	id, now := "msg_"+strconv.FormatInt(time.Now().UnixNano(), 36), time.Now()
	sig, err := wh.Sign(id, now, r.body)
	if err != nil {
		panic(err)
	}
	r.headers["webhook-id"], r.headers["webhook-timestamp"], r.headers["webhook-signature"] = id, strconv.FormatInt(now.Unix(), 10), sig
}

// check sends one request and returns its status and what is wrong with the
// answer ("" when it keeps to the document).
func (f *contractFixture) check(v validator.Validator, cr contractRequest) (int, string) {
	// Over loopback, so Fiber's real limits (body size, header buffer)
	// answer, as they do for clients.
	req, err := http.NewRequest(cr.method, "http://"+f.a.Addr()+escapeTarget(cr.target), bytes.NewReader(cr.body))
	if err != nil {
		return 0, "request: " + err.Error()
	}
	for k, val := range cr.headers {
		req.Header.Set(k, val)
	}
	resp, err := f.client.Do(req)
	for try := 0; err != nil && try < 5; try++ {
		// For an oversized request (413, 431) the server answers and closes
		// at once; the client may see the reset before the answer. Try
		// again on a new connection.
		req, _ = http.NewRequest(cr.method, "http://"+f.a.Addr()+escapeTarget(cr.target), bytes.NewReader(cr.body))
		for k, val := range cr.headers {
			req.Header.Set(k, val)
		}
		req.Close = true
		resp, err = f.client.Do(req)
	}
	if err != nil {
		// Still reset: the answer to an oversized request comes from the
		// Content-Length and the headers alone, so announce the body
		// without writing it and read the answer from the raw connection.
		resp, err = announceOnly(f.a.Addr(), cr)
	}
	if err != nil {
		return 0, "no answer: " + err.Error()
	}
	var body []byte
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// A live stream never ends: its status and content type are the contract.
		resp.Body.Close()
	} else {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if resp.StatusCode >= 500 {
		return resp.StatusCode, fmt.Sprintf("server error: %s", trunc500(body))
	}
	vreq := httptest.NewRequest(cr.method, "http://127.0.0.1"+escapeTarget(cr.target), nil)
	for k, val := range cr.headers {
		vreq.Header.Set(k, val)
	}
	if ok, errs := v.ValidateHttpResponse(vreq, resp); !ok {
		var msgs []string
		for _, e := range errs {
			m := e.Message + ": " + e.Reason
			for _, se := range e.SchemaValidationErrors {
				m += "; " + se.Reason + " at " + se.FieldPath
			}
			msgs = append(msgs, m)
		}
		return resp.StatusCode, strings.Join(msgs, " | ") + " — body: " + trunc500(body)
	}
	return resp.StatusCode, ""
}

// announceOnly sends the request line and headers of cr with its
// Content-Length but none of its body, and reads the answer.
func announceOnly(addr string, cr contractRequest) (*http.Response, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", cr.method, escapeTarget(cr.target), addr, len(cr.body))
	for k, val := range cr.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, val)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	conn.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// escapeTarget keeps a NUL or a raw byte in a path or query parseable by
// httptest.NewRequest (which panics on them) by percent-encoding it.
func escapeTarget(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func trunc500(b []byte) string {
	if len(b) > 500 {
		return string(b[:500]) + "…"
	}
	return string(b)
}
