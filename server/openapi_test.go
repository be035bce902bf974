package server_test

import (
	"bytes"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/server"
)

func TestServer_OpenAPI(t *testing.T) {
	t.Parallel()
	a := newNodesApp(t, store.SQLite)
	r := a.Do("GET", "/openapi.json", "", nil)
	if r.Code != 200 {
		t.Fatalf("%d %s", r.Code, r.Raw)
	}

	t.Run("ValidOpenAPI31", func(t *testing.T) {
		doc, err := libopenapi.NewDocument(r.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if v := doc.GetVersion(); v != "3.1.0" {
			t.Fatalf("version %q", v)
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			t.Fatalf("validator: %v", errs)
		}
		ok, verrs := v.ValidateDocument()
		for _, e := range verrs {
			t.Errorf("%s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s at %s", se.Reason, se.FieldPath)
			}
		}
		if !ok {
			t.Fatal("document does not validate")
		}
		if _, err := doc.BuildV3Model(); err != nil {
			t.Fatalf("model: %v", err)
		}
	})
	t.Run("RealExchangesValidate", func(t *testing.T) {
		doc, err := libopenapi.NewDocument(r.Raw)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := validator.NewValidator(doc)
		a.CreateInstance("sales", "sandbox")
		for _, x := range []struct{ method, path, body string }{
			{"POST", "/api/nodes/status.publish/execute", `{"instance":"sales","input":{"type":"text","message":"hi"},"origin":{"platform":"n8n","workflowId":"w"}}`},
			{"POST", "/api/message/status/sales", `{"type":"text","message":"hi","source":"crm"}`},
			{"POST", "/api/nodes/status.publish/execute", `{"instance":"sales","input":{"type":"text"}}`},
		} {
			req := httptest.NewRequest(x.method, x.path, strings.NewReader(x.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("token", acct)
			resp, err := a.Server.App().Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(raw))
			req = httptest.NewRequest(x.method, x.path, strings.NewReader(x.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("token", acct)
			if ok, errs := v.ValidateHttpRequestResponse(req, resp); !ok {
				for _, e := range errs {
					t.Errorf("%s %s (%d %s): %s: %s", x.method, x.path, resp.StatusCode, raw, e.Message, e.Reason)
				}
			}
		}
	})
	t.Run("EveryRoute", func(t *testing.T) {
		paths, _ := r.Body["paths"].(map[string]any)
		routes := a.Server.Routes()
		if len(routes) < 15 {
			t.Fatalf("only %d routes", len(routes))
		}
		for _, rt := range routes {
			p, _ := server.OpenAPIPath(rt.Path)
			item, _ := paths[p].(map[string]any)
			if item[strings.ToLower(rt.Method)] == nil {
				t.Errorf("%s %s (%s) missing", rt.Method, rt.Path, p)
			}
		}
		for _, p := range []string{"/api/nodes", "/api/nodes/{id}", "/api/nodes/{id}/execute", "/openapi.json", "/api/message/status/{instance}"} {
			if paths[p] == nil {
				t.Errorf("%s missing", p)
			}
		}
	})
	t.Run("SchemasAndSecurity", func(t *testing.T) {
		comps := r.Body["components"].(map[string]any)
		schemas := comps["schemas"].(map[string]any)
		for _, name := range a.Server.Validator().Names() {
			s, _ := schemas[name].(map[string]any)
			if s == nil || s["x-schema-id"] != "https://statusflow.dev/schemas/"+name+".json" {
				t.Errorf("component %s: %v", name, s)
			}
		}
		if schemas["error"] == nil {
			t.Error("no error envelope")
		}
		sec := comps["securitySchemes"].(map[string]any)
		for _, n := range []string{"tokenHeader", "bearerAuth", "tokenQuery"} {
			if sec[n] == nil {
				t.Errorf("security scheme %s missing", n)
			}
		}
	})
}
