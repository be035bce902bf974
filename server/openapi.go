package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/schemas"
)

// registerOpenAPI adds GET /openapi.json.
func (s *Server) registerOpenAPI() {
	s.Handle(Route{Method: "GET", Path: "/openapi.json", Auth: AuthNone, Tag: "meta", Summary: "This API as OpenAPI 3.1, built from the route table and schemas/",
		Responses: Responses{200: schemas.OpenAPIDocument}}, s.openAPI)
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

// OpenAPIPath turns a Fiber path into an OpenAPI one: /a/:b? → /a/{b},
// /a/* → /a/{path}; it
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
		if seg == "*" { // Fiber's wildcard: the rest of the path (static files)
			params = append(params, "path")
			segs[i] = "{path}"
		}
	}
	return strings.Join(segs, "/"), params
}

// OpenAPI builds the OpenAPI 3.1 document: one operation per route of
// [Server.Routes] with the answers its [Route.Responses] name (plus the
// default error answers), request and response bodies referring to the
// schemas of schemas/ (under components/schemas, each keeping its `$id` as
// x-schema-id), the three token placements as security schemes, and the
// outbound events under `webhooks`.
func (s *Server) OpenAPI() map[string]any {
	v := s.deps.Validator
	components := map[string]any{}
	for _, name := range v.Names() {
		components[name] = componentSchema(v.Doc(name))
	}

	paths := map[string]map[string]any{}
	tags := map[string]bool{}
	ids := map[string]int{}
	for _, r := range s.Routes() {
		path, pnames := OpenAPIPath(r.Path)
		op := map[string]any{
			"summary":     r.Summary,
			"operationId": operationID(r, ids),
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
		query := queryParams[strings.ReplaceAll(r.Path, "?", "")]
		params = append(params, query...)
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
		op["responses"] = responses(r, v, len(pnames) > 0, len(query) > 0)
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
			"description": "Publish WhatsApp Status (stories) from automation tools: HTTP, node execute with origin, NATS and webhooks. Schemas: /schemas/<name>.json. NATS subjects: /asyncapi.json.",
			"license":     map[string]any{"name": License, "identifier": License},
		},
		"servers":  []any{map[string]any{"url": "/"}},
		"tags":     tagList,
		"paths":    paths,
		"webhooks": s.outboundEvents(),
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
					"content": map[string]any{"application/json": map[string]any{"schema": ref(schemas.Error)}}},
			},
		},
	}
}

// License is statusflow's licence (SPDX), the same in LICENSE, the n8n and
// Zapier packages and the OpenAPI and AsyncAPI documents.
const License = "MIT"

// outboundEvents is the document's `webhooks`: one entry per event type
// (schemas/event.<type>.json), the CloudEvent statusflow POSTs to a
// configured webhook, signed per Standard Webhooks. The data schema is
// inlined: oapi-codegen prunes components that only `webhooks` refer to
// and would then refer to types it did not generate.
func (s *Server) outboundEvents() map[string]any {
	out := map[string]any{}
	for _, typ := range EventTypes(s.deps.Validator) {
		out[typ] = map[string]any{"post": map[string]any{
			"operationId": "on" + strings.ReplaceAll(strings.Title(strings.ReplaceAll(typ, ".", " ")), " ", ""), //nolint:staticcheck // ASCII event names
			"summary":     typ,
			"description": "POSTed to each webhook subscribed to " + typ + " (POST /api/events/webhook/:instance) as a CloudEvent in structured mode; data follows " + schemas.Base + schemas.EventData(typ) + ".json. Answer 2xx within the timeout or the delivery is retried with backoff.",
			"parameters": []any{
				map[string]any{"name": "webhook-id", "in": "header", "required": true, "schema": map[string]any{"type": "string"}, "description": "Unique per delivery, the same on retries and replays: deduplicate on it."},
				map[string]any{"name": "webhook-timestamp", "in": "header", "required": true, "schema": map[string]any{"type": "string"}, "description": "Unix seconds of this attempt."},
				map[string]any{"name": "webhook-signature", "in": "header", "required": true, "schema": map[string]any{"type": "string"}, "description": "Standard Webhooks v1 signature(s) with the webhook's secret."},
			},
			"requestBody": map[string]any{"required": true, "content": map[string]any{"application/cloudevents+json": map[string]any{"schema": map[string]any{
				"allOf": []any{ref(schemas.CloudEvent), map[string]any{"type": "object", "properties": map[string]any{
					"type": map[string]any{"const": typ}, "data": componentSchema(s.deps.Validator.Doc(schemas.EventData(typ)))}}}}}}},
			"responses": map[string]any{"2XX": map[string]any{"description": "Delivered."}},
		}}
	}
	return out
}

// EventTypes lists the event types that have a data schema (event.<type>.json).
func EventTypes(v *schemas.Validator) []string {
	var out []string
	for _, n := range v.Names() {
		if t, ok := strings.CutPrefix(n, "event."); ok {
			out = append(out, t)
		}
	}
	return out
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

// responses lists a route's answers: each of [Route.Responses], then the
// error answers every route of its kind can give (see [Route]).
func responses(r Route, v *schemas.Validator, pathParams, query bool) map[string]any {
	out := map[string]any{}
	for code, name := range r.Responses {
		key := strconv.Itoa(code)
		if name == ErrorBody {
			out[key] = errRef()
			continue
		}
		ct := r.ContentType
		if ct == "" || code >= 300 {
			ct = "application/json"
		}
		var body any = map[string]any{"type": "string"}
		if d, ok := strings.CutPrefix(name, dataPrefix); ok && v.Raw(d) != nil {
			body = map[string]any{"type": "object", "required": []string{"success", "message", "data"}, "properties": map[string]any{
				"success": map[string]any{"type": "boolean", "const": true}, "message": map[string]any{"type": "string"}, "data": ref(d)}}
			name = d
		} else if name != "" && v.Raw(name) != nil {
			body = ref(name)
		}
		desc := http.StatusText(code)
		if t, _ := v.Doc(name)["title"].(string); t != "" {
			desc = t
		}
		out[key] = map[string]any{"description": desc, "content": map[string]any{ct: map[string]any{"schema": body}}}
	}
	for _, code := range defaultErrors(r, pathParams, query) {
		if out[code] == nil {
			out[code] = errRef()
		}
	}
	return out
}

// defaultErrors are the error statuses a route answers without listing them.
func defaultErrors(r Route, pathParams, query bool) []string {
	// Any request: a path, query or stored header with a NUL byte or
	// invalid UTF-8 (400), a body past the route's limit (413), a
	// compressed body (415), headers past the buffer (431). See hygiene.go.
	out := []string{"400", "413", "415", "429", "431", "500"}
	if commandSchemas[r.Request] {
		out = append(out, "507") // insufficient_storage: the server's disk is full
	}
	if pathParams {
		out = append(out, "404")
	}
	if r.Session {
		out = append(out, "503") // clustering on: the failover gap of the instance's replica
	}
	if r.Auth != AuthNone {
		out = append(out, "401")
		if r.Auth != AuthAccount {
			out = append(out, "403")
		}
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

// componentSchema copies a schema for components/schemas, in the form code
// generators take, with the same meaning (schemas/ stays where the rules are
// written; only their spelling changes here):
//
//   - references to sibling files ("origin.json") point at their components;
//   - `$id` moves to `x-schema-id` (and externalDocs): a `$id` would make
//     tools resolve those references against https://statusflow.dev/… over
//     the network instead of inside this document; `$schema` is dropped,
//     jsonSchemaDialect says it;
//   - a boolean subschema becomes an object one, `true` → `{}` and
//     `false` → `{"not": {}}` (oapi-codegen cannot read `"fileName": true`);
//   - a numeric `exclusiveMinimum`/`exclusiveMaximum` (2020-12) becomes
//     `minimum`/`maximum` plus `not: {const: n}`, which accepts exactly the
//     same numbers (ogen reads the keyword as the boolean of OpenAPI 3.0);
//   - `x-errors` (the API's messages for the server's own validator) is left
//     out: it is not part of the contract.
func componentSchema(doc map[string]any) any {
	var schema func(v any) any
	// sub converts the subschemas under a keyword.
	sub := func(k string, x any) any {
		switch k {
		case "properties", "patternProperties", "$defs", "dependentSchemas":
			m, ok := x.(map[string]any)
			if !ok {
				return x
			}
			out := make(map[string]any, len(m))
			for n, y := range m {
				out[n] = schema(y)
			}
			return out
		case "allOf", "anyOf", "oneOf", "prefixItems":
			l, ok := x.([]any)
			if !ok {
				return x
			}
			out := make([]any, len(l))
			for i, y := range l {
				out[i] = schema(y)
			}
			return out
		case "items", "not", "if", "then", "else", "contains", "propertyNames", "additionalProperties", "unevaluatedProperties", "unevaluatedItems":
			if _, isBool := x.(bool); isBool && (k == "additionalProperties" || k == "unevaluatedProperties" || k == "unevaluatedItems") {
				return x // generators read these booleans
			}
			return schema(x)
		}
		return x
	}
	schema = func(v any) any {
		switch t := v.(type) {
		case bool:
			if t {
				return map[string]any{}
			}
			return map[string]any{"not": map[string]any{}}
		case map[string]any:
			out := make(map[string]any, len(t)+1)
			if c, ok := t["const"]; ok && t["type"] == nil {
				// The type a const implies, spelled out: generators type
				// a bare const as "any".
				switch c.(type) {
				case bool:
					out["type"] = "boolean"
				case string:
					out["type"] = "string"
				case float64:
					out["type"] = "number"
				}
			}
			for k, x := range t {
				switch k {
				case "$schema", "x-errors":
					continue
				case "$id":
					out["x-schema-id"] = x
					if s, ok := x.(string); ok {
						out["externalDocs"] = map[string]any{"description": "Also served by this server at /schemas/" + strings.TrimPrefix(s, schemas.Base), "url": s}
					}
					continue
				case "$ref":
					if s, ok := x.(string); ok && strings.HasSuffix(s, ".json") && !strings.Contains(s, "/") {
						out[k] = "#/components/schemas/" + strings.TrimSuffix(s, ".json")
						continue
					}
				case "exclusiveMinimum", "exclusiveMaximum":
					if n, ok := x.(float64); ok {
						bound := "minimum"
						if k == "exclusiveMaximum" {
							bound = "maximum"
						}
						out[bound] = n
						if t["not"] == nil {
							out["not"] = map[string]any{"const": n}
						} else {
							out["allOf"] = append(anySlice(out["allOf"]), map[string]any{"not": map[string]any{"const": n}})
						}
						continue
					}
				}
				if _, done := out[k]; done && k == "allOf" {
					out[k] = append(anySlice(sub(k, x)), anySlice(out[k])...)
					continue
				}
				out[k] = sub(k, x)
			}
			return out
		}
		return v
	}
	return schema(doc)
}

func anySlice(v any) []any { l, _ := v.([]any); return l }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
