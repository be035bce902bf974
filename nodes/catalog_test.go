package nodes_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/nodes"
	"github.com/statusflow/statusflow/schemas"
)

type testBundle struct {
	app *apptest.App
}

// setup starts a whole app with a sandbox instance "sales"; the catalog under
// test is the app's own, wired to the real core.
func setup(t *testing.T) (*nodes.Catalog, *testBundle) {
	t.Helper()
	a := apptest.New(t, apptest.Options{Configure: func(c *config.Config) { c.RateLimit = 10000 }})
	a.CreateInstance("sales", "sandbox")
	return a.Catalog, &testBundle{app: a}
}

func TestCatalog_Add(t *testing.T) {
	t.Parallel()
	noop := func(context.Context, nodes.Call) (any, error) { return nil, nil }

	t.Run("DuplicateID", func(t *testing.T) {
		t.Parallel()
		c := nodes.NewCatalog(nil)
		if err := c.Add(nodes.PublishStatusSpec(), noop); err != nil {
			t.Fatal(err)
		}
		if err := c.Add(nodes.PublishStatusSpec(), noop); err == nil || !strings.Contains(err.Error(), "duplicate") {
			t.Fatalf("duplicate accepted: %v", err)
		}
	})
	t.Run("UnknownSchema", func(t *testing.T) {
		t.Parallel()
		d := nodes.PublishStatusSpec()
		d.ID, d.Input = "x.y", "nope"
		if err := nodes.NewCatalog(nil).Add(d, noop); err == nil {
			t.Fatal("unknown schema accepted")
		}
	})
	t.Run("BadSample", func(t *testing.T) {
		t.Parallel()
		d := nodes.PublishStatusSpec()
		d.Samples = []nodes.Sample{{Title: "bad", Input: json.RawMessage(`{"type":"text"}`)}}
		if err := nodes.NewCatalog(nil).Add(d, noop); err == nil || !strings.Contains(err.Error(), "Message is required") {
			t.Fatalf("bad sample accepted: %v", err)
		}
	})
	t.Run("ActionWithoutHandler", func(t *testing.T) {
		t.Parallel()
		if err := nodes.NewCatalog(nil).Add(nodes.DeleteStatusSpec(), nil); err == nil {
			t.Fatal("action without handler accepted")
		}
	})
	t.Run("MustAddPanics", func(t *testing.T) {
		t.Parallel()
		c := nodes.NewCatalog(nil)
		c.MustAdd(nodes.StatusFailedSpec(), nil)
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		c.MustAdd(nodes.StatusFailedSpec(), nil)
	})
}

// TestCatalog_Samples validates every sample of every node against its
// schemas and runs every action sample on the sandbox engine, as benthos
// runs its documented examples.
func TestCatalog_Samples(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	v := c.Validator()
	if len(c.List()) != 8 {
		t.Fatalf("%d nodes", len(c.List()))
	}
	var published string
	list := c.List()
	// Publish before delete: the delete sample deletes what a publish sample published.
	for i, d := range list {
		if d.ID == nodes.DeleteStatusID {
			list = append(append(list[:i:i], list[i+1:]...), d)
			break
		}
	}
	for _, d := range list {
		if len(d.Samples) == 0 || len(d.Credentials) == 0 || d.Output == "" {
			t.Errorf("%s: needs samples, credentials and an output schema", d.ID)
		}
		for i, s := range d.Samples {
			for _, part := range []struct {
				schema string
				raw    json.RawMessage
			}{{d.Input, s.Input}, {d.Output, s.Output}} {
				if part.schema == "" {
					continue
				}
				doc, err := schemas.ParseJSON(part.raw)
				if err == nil {
					err = v.Validate(part.schema, doc)
				}
				if err != nil {
					t.Errorf("%s sample %d vs %s: %v", d.ID, i, part.schema, err)
				}
			}
			if d.Kind != nodes.KindAction {
				continue
			}
			input := s.Input
			if d.ID == nodes.DeleteStatusID {
				// Delete what a publish sample published.
				input = json.RawMessage(strings.Replace(string(input), "3EB0A1B2C3D4E5F6A7B8C9", published, 1))
			}
			if d.ID == nodes.CancelScheduleID {
				// Cancel a publication scheduled for tomorrow.
				at := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
				r, err := c.Execute(t.Context(), nodes.PublishStatusID, nodes.ExecuteRequest{Instance: "sales", Input: json.RawMessage(`{"type":"text","message":"later","publishAt":"` + at + `"}`)})
				if err != nil {
					t.Fatal(err)
				}
				input = json.RawMessage(`{"scheduleId":"` + r.Output.(*status.Result).ScheduleID + `"}`)
			}
			res, err := c.Execute(t.Context(), d.ID, nodes.ExecuteRequest{Instance: "sales", Input: input, Origin: status.Origin{Platform: "test"}})
			if err != nil {
				t.Fatalf("%s sample %d: %v", d.ID, i, err)
			}
			out, _ := json.Marshal(res.Output)
			doc, _ := schemas.ParseJSON(out)
			if err := v.Validate(d.Output, doc); err != nil {
				t.Errorf("%s sample %d output %s: %v", d.ID, i, out, err)
			}
			if len(res.TraceID) != 32 {
				t.Errorf("trace id %q", res.TraceID)
			}
			if r, ok := res.Output.(*status.Result); ok {
				published = r.MessageID
			}
		}
	}
	n, err := b.app.Store.SandboxStatusCount(t.Context(), "sales")
	if err != nil || n != 2 {
		t.Fatalf("sandbox recorded %d statuses (%v), want the 2 publish samples", n, err)
	}
}

func TestCatalog_Execute(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	ctx := t.Context()
	text := json.RawMessage(`{"type":"text","message":"hi","source":"crm"}`)

	t.Run("OriginStoredAndReturned", func(t *testing.T) {
		origin := status.Origin{Platform: "nats", WorkflowID: "flow-1", ExecutionID: "e-9", NodeName: "publish", Extra: json.RawMessage(`{"k":1}`)}
		tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		res, err := c.Execute(ctx, nodes.PublishStatusID, nodes.ExecuteRequest{Instance: "sales", Input: text, Origin: origin, TraceParent: tp})
		if err != nil {
			t.Fatal(err)
		}
		r := res.Output.(*status.Result)
		if res.TraceID != "0af7651916cd43dd8448eb211c80319c" || r.TraceID != res.TraceID {
			t.Fatalf("trace not continued: %s / %s", res.TraceID, r.TraceID)
		}
		if r.Origin == nil || r.Origin.WorkflowID != "flow-1" || r.Origin.Source != "crm" {
			t.Fatalf("origin %+v", r.Origin)
		}
		st, err := b.app.Store.StatusGet(ctx, "sales", r.MessageID)
		if err != nil || !strings.Contains(st.Origin, `"executionId":"e-9"`) || !strings.Contains(st.Origin, `"source":"crm"`) {
			t.Fatalf("stored %+v %v", st, err)
		}
	})
	t.Run("PreAssignedMessageID", func(t *testing.T) {
		id := status.NewMessageID()
		res, err := c.Execute(ctx, nodes.PublishStatusID, nodes.ExecuteRequest{Instance: "sales", Input: text, MessageID: id})
		if err != nil || res.Output.(*status.Result).MessageID != id {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("IdempotencyKeyPassedThrough", func(t *testing.T) {
		req := nodes.ExecuteRequest{Instance: "sales", Input: text, IdempotencyKey: "k-1"}
		first, err := c.Execute(ctx, nodes.PublishStatusID, req)
		if err != nil {
			t.Fatal(err)
		}
		second, err := c.Execute(ctx, nodes.PublishStatusID, req)
		if err != nil || second.Output.(*status.Result).MessageID != first.Output.(*status.Result).MessageID || !second.Output.(*status.Result).Replayed {
			t.Fatalf("replay: %+v %v", second, err)
		}
		req.Input = json.RawMessage(`{"type":"text","message":"other"}`)
		if _, err := c.Execute(ctx, nodes.PublishStatusID, req); !errors.Is(err, errcode.ErrIdempotencyKeyReused) {
			t.Fatalf("reused key: %v", err)
		}
	})
	for _, tc := range []struct {
		name, node string
		req        nodes.ExecuteRequest
		code       errcode.Code
		msg        string
	}{
		{"NodeNotFound", "status.nope", nodes.ExecuteRequest{Instance: "sales", Input: text}, errcode.CodeNodeNotFound, "Node not found: status.nope"},
		{"Trigger", nodes.InstanceStateID, nodes.ExecuteRequest{Instance: "sales", Input: text}, errcode.CodeInvalid, "Node instance.state is a trigger: it cannot be executed; subscribe to its instance.state events instead"},
		{"NoInstance", nodes.PublishStatusID, nodes.ExecuteRequest{Input: text}, errcode.CodeInvalid, "Instance name is required"},
		{"EmptyInput", nodes.PublishStatusID, nodes.ExecuteRequest{Instance: "sales"}, errcode.CodeInvalid, "Invalid request body: the body is empty; send a JSON object"},
		{"InvalidInput", nodes.PublishStatusID, nodes.ExecuteRequest{Instance: "sales", Input: json.RawMessage(`{"type":"image"}`)}, errcode.CodeInvalid, "MediaURL is required for type: image"},
		{"SourceMismatch", nodes.PublishStatusID, nodes.ExecuteRequest{Instance: "sales", Input: text, Origin: status.Origin{Source: "n8n"}}, errcode.CodeInvalid,
			`Invalid request body: input.source "crm" and origin.source "n8n" disagree; send one, or the same in both`},
		{"UnknownInstance", nodes.PublishStatusID, nodes.ExecuteRequest{Instance: "ghost", Input: text}, errcode.CodeInstanceNotFound, "Instance not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Execute(ctx, tc.node, tc.req)
			var se *errcode.Error
			if !errors.As(err, &se) || se.Code != tc.code || se.Message != tc.msg {
				t.Fatalf("got %v, want %s %q", err, tc.code, tc.msg)
			}
		})
	}
}

func FuzzExecuteDecode(f *testing.F) {
	for _, s := range []string{
		`{"instance":"sales","input":{"type":"text","message":"hi"}}`,
		`{"instance":"sales","input":{"type":"text","message":"hi"},"origin":{"platform":"n8n","extra":{"a":[1,2]}}}`,
		`{"instance":"","input":{}}`, `{"input":[]}`, `[]`, ``, `{"instance":"a","input":{},"origin":{"source":5}}`,
	} {
		f.Add([]byte(s))
	}
	v := schemas.Default()
	c := nodes.Default(nil, v)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := nodes.DecodeExecuteRequest(v, body)
		if err != nil {
			var se *errcode.Error
			if !errors.As(err, &se) || se.Code != errcode.CodeInvalid || se.Message == "" {
				t.Fatalf("not an invalid-request error: %v", err)
			}
			return
		}
		if req.Instance == "" || len(req.Input) == 0 || req.Input[0] != '{' {
			t.Fatalf("accepted %q as %+v", body, req)
		}
		// Whatever decodes, Prepare answers with a status error or a command, never a panic.
		if _, err := c.Prepare(nodes.PublishStatusID, req); err != nil {
			var se *errcode.Error
			if !errors.As(err, &se) || se.Message == "" {
				t.Fatalf("prepare: %v", err)
			}
		}
	})
}
