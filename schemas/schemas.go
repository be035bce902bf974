// Package schemas holds one JSON Schema (draft 2020-12) per payload and the
// validator every front door uses. A rule is written once, here: the HTTP
// API, node execute, NATS triggers, inbound webhooks, node descriptors and
// the OpenAPI document all read these files.
//
// The API's literal error messages live in the schemas too, in an `x-errors`
// annotation beside the keyword that produces them:
//
//	"x-errors": {"required": {"message": "Message is required", "order": 3}}
//
// When a document fails, every failing keyword is looked up; the message
// with the lowest order wins, so checks are reported in the API's order.
// `{/pointer}` in a message is replaced by that value of the document.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/schemas/internal/fastpath"
)

// Base is the `$id` prefix of every schema; GET /schemas/<name>.json serves them.
const Base = "https://statusflow.dev/schemas/"

// Schema names, the file names without .json.
const (
	PublishInput   = "status.publish.input"
	PublishOutput  = "status.publish.output"
	DeleteInput    = "status.delete.input"
	DeleteOutput   = "status.delete.output"
	ExecuteInput   = "execute.input"
	Origin         = "origin"
	InstanceCreate = "instance.create.input"
	// AudienceInput and AudienceOutput: a sandbox instance's simulated
	// audience, and the audience preview.
	AudienceInput  = "instance.audience.input"
	AudienceOutput = "instance.audience.output"
	AudienceReply  = "instance.audience.reply"
	ExecuteOutput  = "execute.output"
	// Credential is what an automation platform stores to call statusflow.
	Credential = "credential.statusflow"
	// WebhookConfigInput is the body of POST /api/events/webhook/:instance.
	WebhookConfigInput = "webhook.config.input"
	// WebhookInboundCreateInput is the body of POST /api/events/inbound/:instance.
	WebhookInboundCreateInput = "webhook.inbound.create.input"
	// WebhookInboundInput is the envelope form of a request to an inbound hook.
	WebhookInboundInput = "webhook.inbound.input"
	// ViewsOutput is the data of GET /api/status/views/:instance.
	ViewsOutput = "status.views.output"
	// ScheduleListOutput is the data of GET /api/schedule/:instance.
	ScheduleListOutput = "schedule.list.output"
	// ScheduleCancelOutput is the data of DELETE /api/schedule/:instance/:id.
	ScheduleCancelOutput = "schedule.cancel.output"
	// ScheduleCancelInput is the input of the schedule.cancel node.
	ScheduleCancelInput = "schedule.cancel.input"
	// ScheduleListInput is the input of the schedule.list node.
	ScheduleListInput = "schedule.list.input"
	// SandboxViewsInput is the body of POST /api/sandbox/:instance/views.
	SandboxViewsInput = "sandbox.views.input"
	// MediaUploadOutput is the data of POST /api/media/:instance.
	MediaUploadOutput = "media.upload.output"
	// StatusFindOutput is the data of GET /api/status/find/:instance.
	StatusFindOutput = "status.find.output"
	// WhoamiOutput is the data of GET /api/whoami.
	WhoamiOutput = "whoami.output"
	// ClusterOutput is the data of GET /api/cluster.
	ClusterOutput = "cluster.output"
	// SandboxViewsOutput is the data of POST /api/sandbox/:instance/views.
	SandboxViewsOutput = "sandbox.views.output"

	// Answers: each names the whole body of one kind of HTTP answer
	// (server.Route.Responses), checked by the contract test.
	Error                = "error"
	Instance             = "instance"
	InstanceCreateReply  = "instance.create.reply"
	InstanceListReply    = "instance.list.reply"
	InstanceConnectReply = "instance.connect.reply"
	InstanceStateReply   = "instance.state.reply"
	InstanceDeleteReply  = "instance.delete.reply"
	PublishReply         = "status.publish.reply"
	PublishAcceptedReply = "status.accepted.reply"
	DeleteReply          = "status.delete.reply"
	ExecuteAcceptedReply = "execute.accepted.reply"
	SandboxStatusesReply = "sandbox.statuses.reply"
	HealthReply          = "health.reply"
	ReadyReply           = "ready.reply"
	NodeListReply        = "node.list.reply"
	NodeGetReply         = "node.get.reply"
	Webhook              = "webhook"
	WebhookReply         = "webhook.reply"
	WebhookListReply     = "webhook.list.reply"
	WebhookDeleteReply   = "webhook.delete.reply"
	Delivery             = "delivery"
	DeliveryReply        = "delivery.reply"
	DeliveryListReply    = "delivery.list.reply"
	Inbound              = "inbound"
	InboundReply         = "inbound.reply"
	InboundListReply     = "inbound.list.reply"
	InboundDeleteReply   = "inbound.delete.reply"
	WebhookInboundReply  = "webhook.inbound.reply"
	CloudEvent           = "cloudevent"
	EventLogReply        = "events.log.reply"
	OpenAPIDocument      = "openapi.document"
	JSONSchema           = "json.schema"
)

// EventData returns the schema name of an event type's data.
func EventData(eventType string) string { return "event." + eventType }

//go:embed *.json
var files embed.FS

// defaultOrder ranks rules without an x-errors entry: a wrong JSON type is a
// malformed body (reported first), anything else comes after the API's table.
const (
	orderMalformed = 1
	orderOther     = 5
)

// Validator compiles every embedded schema once and validates documents.
type Validator struct {
	compiled map[string]*jsonschema.Schema
	raw      map[string][]byte
	docs     map[string]any // parsed, for x-errors lookups
	fast     map[string]fastpath.Checker
	limits   map[string]*limits // bounds checked before any other work (bounds.go)
}

var (
	defaultOnce sync.Once
	defaultV    *Validator
	defaultErr  error
)

// Default returns the validator of the embedded schemas, compiled on first use.
// It panics if an embedded schema does not compile: that is a build defect,
// and TestSchemas_Compile catches it first.
func Default() *Validator {
	defaultOnce.Do(func() { defaultV, defaultErr = New() })
	if defaultErr != nil {
		panic(defaultErr)
	}
	return defaultV
}

// New compiles the embedded schemas.
func New() (*Validator, error) {
	v := &Validator{compiled: map[string]*jsonschema.Schema{}, raw: map[string][]byte{}, docs: map[string]any{}}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	entries, err := files.ReadDir(".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(e.Name(), ".json")
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Name(), err)
		}
		if id, _ := doc.(map[string]any)["$id"].(string); id != Base+e.Name() {
			return nil, fmt.Errorf("schema %s: $id is %q, want %q", e.Name(), id, Base+e.Name())
		}
		v.raw[name], v.docs[name] = b, doc
		if err := c.AddResource(Base+e.Name(), bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Name(), err)
		}
	}
	for name := range v.raw {
		s, err := c.Compile(Base + name + ".json")
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		v.compiled[name] = s
	}
	v.fast = fastpath.Compile(v.docs)
	v.limits = map[string]*limits{}
	for name, doc := range v.docs {
		v.limits[name] = compileLimits(v.docs, doc, map[string]bool{name: true})
	}
	return v, nil
}

// Names lists every schema name, sorted.
func (v *Validator) Names() []string {
	out := make([]string, 0, len(v.raw))
	for n := range v.raw {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Raw returns a schema document as embedded, or nil.
func (v *Validator) Raw(name string) []byte { return v.raw[name] }

// Doc returns a schema parsed as generic JSON (maps and slices), or nil.
// Callers must not modify it.
func (v *Validator) Doc(name string) map[string]any {
	d, _ := v.docs[name].(map[string]any)
	return d
}

// Decode parses body as JSON, validates it against the named schema and
// unmarshals it into dst. Every failure is a *errcode.Error with
// [errcode.CodeInvalid] and the message the schema attaches to the rule.
//
// A body the fast path finds certainly valid skips the full validator; any
// other goes through it, so every error comes from one place.
func (v *Validator) Decode(name string, body []byte, dst any) error {
	if err := v.Check(name, body); err != nil {
		return err
	}
	if v.fastValid(name, body) {
		if dst == nil {
			return nil
		}
		if err := json.Unmarshal(body, dst); err != nil {
			return errcode.Errorf(errcode.CodeInvalid, "Invalid request body: %s", err)
		}
		return nil
	}
	doc, err := parseJSON(body)
	if err != nil {
		return err
	}
	if err := v.Validate(name, doc); err != nil {
		return err
	}
	if dst == nil {
		return nil
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return errcode.Errorf(errcode.CodeInvalid, "Invalid request body: %s", err)
	}
	return nil
}

// fastValid reports whether body is certainly valid for the named schema by
// the fast path alone; false means "let the full validator decide". The fast
// path is kept because the full validator costs about 20 times a plain
// decode of a Send Status body and the fast path about one (nodes'
// BenchmarkSendStatusBody); TestFastPath_AgreesWithValidator and
// FuzzFastPath keep the two in agreement.
func (v *Validator) fastValid(name string, body []byte) bool {
	c, ok := v.fast[name]
	return ok && fastpath.Valid(c, body)
}

// ValidateJSON checks a JSON document against the named schema, like
// [Validator.Decode] without unmarshalling it.
func (v *Validator) ValidateJSON(name string, body []byte) error {
	return v.Decode(name, body, nil)
}

// ParseJSON parses one JSON value for validation (numbers kept exact), after
// the generic bounds check (no NUL characters, valid UTF-8, bounded nesting,
// arrays, objects and strings; see bounds.go).
func ParseJSON(body []byte) (any, error) {
	if err := checkBounds(generic, body); err != nil {
		return nil, err
	}
	return parseJSON(body)
}

func parseJSON(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: the body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: unexpected data after the JSON value")
	}
	return doc, nil
}

// Validate checks a parsed document (from [ParseJSON], or plain Go maps) against the named schema.
func (v *Validator) Validate(name string, doc any) error {
	s, ok := v.compiled[name]
	if !ok {
		return fmt.Errorf("schemas: no schema %q", name)
	}
	err := s.Validate(doc)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return errcode.Wrap(errcode.CodeInvalid, "Invalid request body", err)
	}
	return &errcode.Error{Code: errcode.CodeInvalid, Message: v.message(ve, doc), Err: err}
}

type candidate struct {
	order   int
	message string
}

// message picks the message of the failing rule that comes first in the API's order.
func (v *Validator) message(ve *jsonschema.ValidationError, doc any) string {
	var best *candidate
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		c := v.candidate(e, doc)
		if best == nil || c.order < best.order {
			best = &c
		}
	}
	walk(ve)
	if best == nil {
		return "Invalid request body: " + ve.Message
	}
	return best.message
}

func (v *Validator) candidate(e *jsonschema.ValidationError, doc any) candidate {
	keyword := path.Base(e.KeywordLocation)
	if rule, ok := v.xError(e.AbsoluteKeywordLocation); ok {
		return candidate{order: rule.order, message: expand(rule.message, doc)}
	}
	where := e.InstanceLocation
	if where == "" {
		where = "body"
	} else {
		where = strings.TrimPrefix(where, "/")
	}
	switch keyword {
	case "type":
		return candidate{orderMalformed, "Invalid request body: " + where + ": " + e.Message}
	case "additionalProperties", "false":
		return candidate{orderOther, "Invalid request body: " + strings.Replace(e.Message, "additionalProperties", "unknown field", 1)}
	}
	return candidate{orderOther, "Invalid request body: " + where + ": " + e.Message}
}

type rule struct {
	order   int
	message string
}

// xError finds the x-errors entry beside the keyword at an absolute keyword
// location such as https://…/status.publish.input.json#/allOf/0/then/required.
func (v *Validator) xError(abs string) (rule, bool) {
	base, ptr, ok := strings.Cut(abs, "#")
	if !ok || !strings.HasPrefix(base, Base) {
		return rule{}, false
	}
	doc := v.docs[strings.TrimSuffix(strings.TrimPrefix(base, Base), ".json")]
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	if len(parts) == 0 {
		return rule{}, false
	}
	keyword := parts[len(parts)-1]
	node := doc
	for _, p := range parts[:len(parts)-1] {
		p = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
		switch n := node.(type) {
		case map[string]any:
			node = n[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i < 0 || i >= len(n) {
				return rule{}, false
			}
			node = n[i]
		default:
			return rule{}, false
		}
	}
	m, _ := node.(map[string]any)
	xe, _ := m["x-errors"].(map[string]any)
	r, _ := xe[keyword].(map[string]any)
	msg, _ := r["message"].(string)
	if msg == "" {
		return rule{}, false
	}
	order := orderOther
	if o, ok := r["order"].(float64); ok {
		order = int(o)
	}
	return rule{order: order, message: msg}, true
}

// expand replaces {/pointer} with the document's value there. Replaced text
// is not scanned again, so a value containing "{/" cannot loop.
func expand(msg string, doc any) string {
	var out strings.Builder
	for {
		i := strings.Index(msg, "{/")
		if i < 0 {
			out.WriteString(msg)
			return out.String()
		}
		j := strings.Index(msg[i:], "}")
		if j < 0 {
			out.WriteString(msg)
			return out.String()
		}
		ptr := msg[i+2 : i+j]
		val := ""
		node := doc
		for _, p := range strings.Split(ptr, "/") {
			m, _ := node.(map[string]any)
			node = m[p]
		}
		if s, ok := node.(string); ok {
			val = s
		} else if node != nil {
			val = fmt.Sprint(node)
		}
		out.WriteString(msg[:i])
		out.WriteString(val)
		msg = msg[i+j+1:]
	}
}
