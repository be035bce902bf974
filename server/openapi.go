package server

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/schemas"
)

// registerOpenAPI adds GET /openapi.json.
func (s *Server) registerOpenAPI() {
	s.Handle(Route{Method: "GET", Path: "/openapi.json", Auth: AuthNone, Tag: "meta", Summary: "This API as OpenAPI 3.1, built from the route table and schemas/"}, s.openAPI)
}

// openAPI is GET /openapi.json. The document is built on each request from
// the route table, so routes other front doors add later appear too.
func (s *Server) openAPI(c *fiber.Ctx) error {
	b, err := json.Marshal(s.OpenAPI())
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(b)
}

// commandSchemas are the request bodies of routes that run a status command:
// they take Idempotency-Key and Prefer: respond-async.
var commandSchemas = map[string]bool{schemas.PublishInput: true, schemas.DeleteInput: true, schemas.ExecuteInput: true}

// queryParams documents the query parameters of the routes that read any.
var queryParams = map[string][]map[string]any{
	"/api/instance/list": {{"name": "instanceName", "in": "query", "required": false, "description": "Comma-separated instance names to list.",
		"schema": map[string]any{"type": "string"}}},
	"/api/instance/connect/:instance": {{"name": "number", "in": "query", "required": false, "description": "Phone number (digits, with country code): answer a pairing code instead of a QR code.",
		"schema": map[string]any{"type": "string"}}},
	"/api/nodes/:id": {{"name": "format", "in": "query", "required": false, "description": "Render the node for a platform.",
		"schema": map[string]any{"type": "string", "enum": []string{"n8n", "zapier"}}}},
	"/api/sandbox/:instance/statuses": {{"name": "limit", "in": "query", "required": false, "description": "Most statuses to list. Defaults to 100.",
		"schema": map[string]any{"type": "integer", "minimum": 1}}},
	"/api/events/log/:instance": eventLogParams,
}

// OpenAPIPath turns a Fiber path into an OpenAPI one: /a/:b? → /a/{b}; it
// also returns the path parameter names.
func OpenAPIPath(p string) (string, []string) {
	segs := strings.Split(p, "/")
	var params []string
	for i, seg := range segs {
		if strings.HasPrefix(seg, ":") {
			name := strings.TrimSuffix(strings.TrimPrefix(seg, ":"), "?")
			params = append(params, name)
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/"), params
}

// OpenAPI builds the OpenAPI 3.1 document: one operation per route of
// [Server.Routes], request and response bodies referring to the schemas of
// schemas/ (under components/schemas, each keeping its `$id`), the three
// token placements as security schemes, and the error envelope.
func (s *Server) OpenAPI() map[string]any {
	v := s.deps.Validator
	components := map[string]any{}
	for _, name := range v.Names() {
		components[name] = componentSchema(v.Doc(name))
	}
	components["SuccessEnvelope"] = map[string]any{
		"type": "object", "required": []string{"success"},
		"description": "Every success answer: success, a message, and the endpoint's payload beside them (often under data).",
		"properties": map[string]any{
			"success": map[string]any{"const": true},
			"message": map[string]any{"type": "string"},
			"data":    map[string]any{},
		},
	}
	components["ErrorEnvelope"] = map[string]any{
		"type": "object", "required": []string{"success", "error", "traceId"},
		"description": "Every error answer (API.md §3). error.status is the internal status (e.g. media_download_failed) where the API's table gives one.",
		"properties": map[string]any{
			"success": map[string]any{"const": false},
			"error": map[string]any{"type": "object", "required": []string{"message"}, "properties": map[string]any{
				"message": map[string]any{"type": "string"},
				"status":  map[string]any{"type": "string", "examples": []string{"media_download_failed"}},
			}},
			"traceId": map[string]any{"type": "string", "pattern": "^[0-9a-f]{32}$"},
		},
	}

	paths := map[string]map[string]any{}
	tags := map[string]bool{}
	ids := map[string]int{}
	for _, r := range s.Routes() {
		path, pnames := OpenAPIPath(r.Path)
		op := map[string]any{
			"summary":     r.Summary,
			"operationId": operationID(r, ids),
			"responses":   responses(r, v),
		}
		if r.Tag != "" {
			op["tags"] = []string{r.Tag}
			tags[r.Tag] = true
		}
		if r.Auth == AuthNone {
			op["security"] = []any{}
		} else {
			op["security"] = []any{map[string]any{"tokenHeader": []string{}}, map[string]any{"bearerAuth": []string{}}, map[string]any{"tokenQuery": []string{}}}
			op["description"] = authDescription(r.Auth)
		}
		var params []map[string]any
		for _, n := range pnames {
			params = append(params, map[string]any{"name": n, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		params = append(params, queryParams[strings.ReplaceAll(r.Path, "?", "")]...)
		if commandSchemas[r.Request] {
			params = append(params,
				map[string]any{"name": "Idempotency-Key", "in": "header", "required": false, "schema": map[string]any{"type": "string", "maxLength": 255},
					"description": "The same key on the same instance within 24 h returns the first answer and publishes nothing again; reused with another body: 409 idempotency_key_reused."},
				map[string]any{"name": "Prefer", "in": "header", "required": false, "schema": map[string]any{"type": "string", "examples": []string{"respond-async"}},
					"description": "respond-async: answer 202 with the pre-assigned messageId; the outcome follows as an event."})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if r.Request != "" && v.Raw(r.Request) != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": ref(r.Request)}}}
		}
		if len(r.RequestTypes) > 0 {
			content := map[string]any{}
			for _, t := range r.RequestTypes {
				if t == "multipart/form-data" {
					content[t] = map[string]any{"schema": map[string]any{"type": "object", "required": []string{"file"},
						"properties": map[string]any{"file": map[string]any{"type": "string", "contentMediaType": "application/octet-stream", "description": "The media file."}}}}
				} else {
					content[t] = map[string]any{"schema": map[string]any{"type": "string", "contentMediaType": t}}
				}
			}
			op["requestBody"] = map[string]any{"required": true, "content": content}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(r.Method)] = op
	}
	tagList := make([]map[string]any, 0, len(tags))
	for _, t := range sortedKeys(tags) {
		tagList = append(tagList, map[string]any{"name": t})
	}
	return map[string]any{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"info": map[string]any{
			"title":       "statusflow",
			"version":     "1.0.0",
			"description": "Publish WhatsApp Status (stories) from automation tools: HTTP, node execute with origin, NATS and webhooks. Schemas: /schemas/<name>.json.",
			"license":     map[string]any{"name": "Proprietary", "identifier": "LicenseRef-statusflow"},
		},
		"servers": []any{map[string]any{"url": "/"}},
		"tags":    tagList,
		"paths":   paths,
		"components": map[string]any{
			"schemas": components,
			"securitySchemes": map[string]any{
				"tokenHeader": map[string]any{"type": "apiKey", "in": "header", "name": "token", "description": "TokenAccount or TokenInstance in the token header (checked first)."},
				"bearerAuth":  map[string]any{"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <token> (checked second)."},
				"tokenQuery":  map[string]any{"type": "apiKey", "in": "query", "name": "token", "description": "?token=<token> (checked last)."},
			},
			"responses": map[string]any{
				"Error": map[string]any{"description": "Error envelope; see error.message and error.status.",
					"headers": map[string]any{"traceparent": map[string]any{"description": "W3C trace context of the request.", "schema": map[string]any{"type": "string"}}},
					"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/ErrorEnvelope"}}}},
			},
		},
	}
}

func authDescription(a Auth) string {
	switch a {
	case AuthAccount:
		return "Needs the TokenAccount; a TokenInstance gets 401 Invalid token."
	case AuthInstance:
		return "Needs the TokenAccount or the TokenInstance of :instance (another instance's token: 403)."
	}
	return "Needs the TokenAccount or a TokenInstance (scoped to its instance)."
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

// responses lists a route's answers: 200 with the success envelope (the
// Response schema under data, or the whole body when that schema describes
// it), and the error envelope for what can fail.
func responses(r Route, v *schemas.Validator) map[string]any {
	var body any = ref("SuccessEnvelope")
	if r.Response != "" && v.Raw(r.Response) != nil {
		props, _ := v.Doc(r.Response)["properties"].(map[string]any)
		if _, whole := props["success"]; whole {
			body = ref(r.Response)
		} else {
			body = map[string]any{"allOf": []any{ref("SuccessEnvelope"),
				map[string]any{"type": "object", "properties": map[string]any{"data": ref(r.Response)}}}}
		}
	}
	out := map[string]any{
		"200": map[string]any{"description": "Success envelope.", "content": map[string]any{"application/json": map[string]any{"schema": body}}},
		"429": errRef(), "500": errRef(),
		// Any request: a path, query or stored header with a NUL byte or
		// invalid UTF-8 (400), a body past the route's limit (413), a
		// compressed body (415). See hygiene.go.
		"400": errRef(), "413": errRef(), "415": errRef(),
	}
	if r.Request != "" || strings.Contains(r.Path, ":") {
		out["404"] = errRef()
	}
	if r.Auth != AuthNone {
		out["401"] = errRef()
		if r.Auth != AuthAccount {
			out["403"] = errRef()
		}
	}
	if commandSchemas[r.Request] {
		out["202"] = map[string]any{"description": "Accepted (Prefer: respond-async): the outcome follows as an event.",
			"content": map[string]any{"application/json": map[string]any{"schema": ref("SuccessEnvelope")}}}
		out["409"], out["503"] = errRef(), errRef()
		out["507"] = errRef() // insufficient_storage: the server's disk is full
	}
	return out
}

func errRef() map[string]any { return map[string]any{"$ref": "#/components/responses/Error"} }

func operationID(r Route, seen map[string]int) string {
	p, _ := OpenAPIPath(r.Path)
	var b strings.Builder
	b.WriteString(strings.ToLower(r.Method))
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '{' || r == '}' || r == '.' || r == '-' || r == '_' }) {
		b.WriteString(strings.ToUpper(seg[:1]) + seg[1:])
	}
	id := b.String()
	seen[id]++
	if n := seen[id]; n > 1 {
		id = fmt.Sprintf("%s%d", id, n)
	}
	return id
}

// componentSchema copies a schema for components/schemas. It points
// references to sibling files ("origin.json") at their components and moves
// `$id` to `x-schema-id` (and externalDocs): a `$id` would make tools resolve
// those references against https://statusflow.dev/… over the network instead
// of inside this document. `$schema` is dropped: jsonSchemaDialect says it.
func componentSchema(doc map[string]any) any {
	var walk func(v any) any
	walk = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(t))
			for k, x := range t {
				switch k {
				case "$schema":
					continue
				case "$id":
					out["x-schema-id"] = x
					if s, ok := x.(string); ok {
						out["externalDocs"] = map[string]any{"description": "Also served by this server at /schemas/" + strings.TrimPrefix(s, schemas.Base), "url": s}
					}
					continue
				}
				if k == "$ref" {
					if s, ok := x.(string); ok && strings.HasSuffix(s, ".json") && !strings.Contains(s, "/") {
						out[k] = "#/components/schemas/" + strings.TrimSuffix(s, ".json")
						continue
					}
				}
				out[k] = walk(x)
			}
			return out
		case []any:
			out := make([]any, len(t))
			for i, x := range t {
				out[i] = walk(x)
			}
			return out
		}
		return v
	}
	return walk(doc)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
