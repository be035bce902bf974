// Package nodes is statusflow's node catalog: the actions and triggers an
// automation platform (n8n, Zapier, NATS flows, webhooks) can use. A
// [Descriptor] is the single source for GET /api/nodes, the n8n and Zapier
// renderings, the OpenAPI document and the execute validator; its input and
// output are JSON Schemas of schemas/, named, never copied.
//
// A catalog is an object ([NewCatalog]); nothing registers itself in init,
// so each test builds its own. [Default] builds the standard one.
package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/schemas"
)

// Kind says whether a node is run (action) or listened to (trigger).
type Kind string

const (
	// KindAction is a node that does something when executed.
	KindAction Kind = "action"
	// KindTrigger is a node that starts a workflow when an event happens; it
	// cannot be executed.
	KindTrigger Kind = "trigger"
)

// CredentialName is the credential every node needs: the server's base URL
// and a token (schemas/credential.statusflow.json).
const CredentialName = "statusflowApi"

// Descriptor describes one node. Its id and version are part of the contract:
// workflows store them, so a changed meaning gets a new version.
type Descriptor struct {
	// ID is the stable node id, e.g. "status.publish". Never derived from a Go name.
	ID string
	// Version starts at 1 and grows when the input or output changes incompatibly.
	Version int
	// Kind is action or trigger.
	Kind Kind
	// Title and Description are shown to users.
	Title       string
	Description string
	// Noun is what the node acts on ("Status", "Instance"), for platform labels.
	Noun string
	// Input and Output name schemas in schemas/ ("" when none: triggers take no input).
	Input  string
	Output string
	// Event is the event type a trigger fires on ("" for actions).
	Event string
	// Samples are example inputs and outputs; every sample is a test.
	Samples []Sample
	// Credentials the node needs.
	Credentials []Credential
	// Deprecated marks a node kept only for existing workflows.
	Deprecated bool
}

// Sample is one documented example of a node.
type Sample struct {
	Title  string          `json:"title"`
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
}

// Credential names a credential a node needs.
type Credential struct {
	Name     string `json:"name"`
	Required bool   `json:"required"`
	// Schema names the credential's schema in schemas/.
	Schema string `json:"-"`
}

// Call is what an action's [Handler] receives: the request, its input
// already validated against the node's input schema, and the command with
// everything but Args filled in (instance, origin, trace, idempotency key,
// pre-assigned message id).
type Call struct {
	Request ExecuteRequest
	Command status.Command
}

// Handler runs an action node and returns its output, which must match the
// node's output schema. Errors should be *errcode.Error.
type Handler func(ctx context.Context, call Call) (any, error)

// ExecuteResult is the outcome of [Catalog.Execute].
type ExecuteResult struct {
	// TraceID is the trace the execution ran in.
	TraceID string
	// Output is the node's output (for status.publish a *status.Result).
	Output any
}

type entry struct {
	desc    Descriptor
	handler Handler
}

// Catalog holds nodes by id. It is safe for concurrent use.
type Catalog struct {
	v     *schemas.Validator
	mu    sync.RWMutex
	nodes map[string]entry
}

// NewCatalog returns an empty catalog that validates with v (nil: the
// embedded schemas, [schemas.Default]).
func NewCatalog(v *schemas.Validator) *Catalog {
	if v == nil {
		v = schemas.Default()
	}
	return &Catalog{v: v, nodes: map[string]entry{}}
}

// Validator returns the catalog's schema validator.
func (c *Catalog) Validator() *schemas.Validator { return c.v }

// Add registers a node. It refuses a duplicate id, an unknown schema, an
// action without a handler and a sample that does not validate.
func (c *Catalog) Add(d Descriptor, h Handler) error {
	if d.ID == "" || d.Version < 1 || d.Title == "" {
		return fmt.Errorf("nodes: descriptor needs an id, a version >= 1 and a title: %+v", d)
	}
	switch d.Kind {
	case KindAction:
		if h == nil || d.Input == "" {
			return fmt.Errorf("nodes: action %s needs a handler and an input schema", d.ID)
		}
	case KindTrigger:
		if d.Event == "" {
			return fmt.Errorf("nodes: trigger %s needs an event type", d.ID)
		}
	default:
		return fmt.Errorf("nodes: %s: unknown kind %q", d.ID, d.Kind)
	}
	for _, name := range []string{d.Input, d.Output} {
		if name != "" && c.v.Raw(name) == nil {
			return fmt.Errorf("nodes: %s: no schema %q", d.ID, name)
		}
	}
	for i, s := range d.Samples {
		if err := c.validateSample(d.Input, s.Input); err != nil {
			return fmt.Errorf("nodes: %s sample %d input: %w", d.ID, i, err)
		}
		if err := c.validateSample(d.Output, s.Output); err != nil {
			return fmt.Errorf("nodes: %s sample %d output: %w", d.ID, i, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.nodes[d.ID]; ok {
		return fmt.Errorf("nodes: duplicate node id %q", d.ID)
	}
	c.nodes[d.ID] = entry{desc: d, handler: h}
	return nil
}

func (c *Catalog) validateSample(schema string, raw json.RawMessage) error {
	if schema == "" || len(raw) == 0 {
		return nil
	}
	doc, err := schemas.ParseJSON(raw)
	if err != nil {
		return err
	}
	return c.v.Validate(schema, doc)
}

// MustAdd is [Catalog.Add] for startup code: it panics on error.
func (c *Catalog) MustAdd(d Descriptor, h Handler) {
	if err := c.Add(d, h); err != nil {
		panic(err)
	}
}

// Get returns a node's descriptor, or false.
func (c *Catalog) Get(id string) (Descriptor, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.nodes[id]
	return e.desc, ok
}

// List returns every descriptor, sorted by kind (actions first) then id.
func (c *Catalog) List() []Descriptor {
	c.mu.RLock()
	out := make([]Descriptor, 0, len(c.nodes))
	for _, e := range c.nodes {
		out = append(out, e.desc)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind == KindAction
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Prepare checks an execution without running it: the node exists and is an
// action, the input matches its input schema (with the API's literal
// messages), and the input's `source` agrees with `origin.source`. It
// returns the command to run, Args still nil. Front doors that queue
// executions (Prefer: respond-async) call it before answering 202.
func (c *Catalog) Prepare(nodeID string, req ExecuteRequest) (status.Command, error) {
	c.mu.RLock()
	e, ok := c.nodes[nodeID]
	c.mu.RUnlock()
	if !ok {
		return status.Command{}, &errcode.Error{Code: errcode.CodeNodeNotFound, Message: "Node not found: " + nodeID}
	}
	if e.desc.Kind != KindAction {
		return status.Command{}, errcode.Errorf(errcode.CodeInvalid,
			"Node %s is a trigger: it cannot be executed; subscribe to its %s events instead", nodeID, e.desc.Event)
	}
	if req.Instance == "" {
		return status.Command{}, errcode.Errorf(errcode.CodeInvalid, "Instance name is required")
	}
	if err := c.v.ValidateJSON(e.desc.Input, req.Input); err != nil {
		return status.Command{}, err
	}
	origin := req.Origin
	var in struct {
		Source string `json:"source"`
	}
	if json.Unmarshal(req.Input, &in) == nil && in.Source != "" {
		if origin.Source != "" && origin.Source != in.Source {
			return status.Command{}, errcode.Errorf(errcode.CodeInvalid,
				"Invalid request body: input.source %q and origin.source %q disagree; send one, or the same in both", in.Source, origin.Source)
		}
		origin.Source = in.Source
	}
	tp := req.TraceParent
	if _, ok := tracing.Parse(tp); !ok {
		tp = tracing.New().String()
	}
	return status.Command{
		Instance:       req.Instance,
		Origin:         origin,
		TraceParent:    tp,
		IdempotencyKey: req.IdempotencyKey,
		MessageID:      req.MessageID,
	}, nil
}

// Execute runs an action node: [Catalog.Prepare], then the node's handler.
// Errors are *errcode.Error: [errcode.CodeNodeNotFound] for an unknown id,
// [errcode.CodeInvalid] for a trigger, a bad input or a source mismatch, and
// whatever the core returns.
func (c *Catalog) Execute(ctx context.Context, nodeID string, req ExecuteRequest) (*ExecuteResult, error) {
	cmd, err := c.Prepare(nodeID, req)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	h := c.nodes[nodeID].handler
	c.mu.RUnlock()
	tc, _ := tracing.Parse(cmd.TraceParent)
	out, err := h(ctx, Call{Request: req, Command: cmd})
	if err != nil {
		return nil, errcode.AsError(err)
	}
	return &ExecuteResult{TraceID: tc.TraceID, Output: out}, nil
}

// decodeInput unmarshals a validated input into dst.
func decodeInput(raw json.RawMessage, dst any) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return errcode.Errorf(errcode.CodeInvalid, "Invalid request body: %s", err)
	}
	return nil
}

// runCommand decodes a node's input into the core's args A and runs them as
// the call's command: what every action that is a core command does.
func runCommand[A status.Args](ctx context.Context, svc *status.Service, call Call) (*status.Result, error) {
	if svc == nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", errNoService)
	}
	var args A
	if err := decodeInput(call.Request.Input, &args); err != nil {
		return nil, err
	}
	cmd := call.Command
	cmd.Args = args
	return svc.Execute(ctx, cmd)
}

// View is a descriptor as GET /api/nodes serves it: the schemas inlined
// beside their `$id`s.
type View struct {
	ID           string          `json:"id"`
	Version      int             `json:"version"`
	Kind         Kind            `json:"kind"`
	Title        string          `json:"title"`
	Description  string          `json:"description"`
	Noun         string          `json:"noun,omitempty"`
	Event        string          `json:"event,omitempty"`
	Deprecated   bool            `json:"deprecated,omitempty"`
	InputSchema  string          `json:"inputSchema,omitempty"`
	Input        json.RawMessage `json:"input,omitempty"`
	OutputSchema string          `json:"outputSchema,omitempty"`
	Output       json.RawMessage `json:"output,omitempty"`
	Samples      []Sample        `json:"samples"`
	Credentials  []Credential    `json:"credentials"`
}

// View returns the descriptor with its schemas inlined.
func (c *Catalog) View(d Descriptor) View {
	v := View{ID: d.ID, Version: d.Version, Kind: d.Kind, Title: d.Title, Description: d.Description, Noun: d.Noun,
		Event: d.Event, Deprecated: d.Deprecated, Samples: d.Samples, Credentials: d.Credentials}
	if v.Samples == nil {
		v.Samples = []Sample{}
	}
	if v.Credentials == nil {
		v.Credentials = []Credential{}
	}
	if d.Input != "" {
		v.InputSchema, v.Input = schemas.Base+d.Input+".json", c.v.Raw(d.Input)
	}
	if d.Output != "" {
		v.OutputSchema, v.Output = schemas.Base+d.Output+".json", c.v.Raw(d.Output)
	}
	return v
}

// errNoService is returned by handlers built without a core.
var errNoService = errors.New("nodes: no status service configured")
