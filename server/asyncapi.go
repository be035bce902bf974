package server

import (
	"encoding/json"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/schemas"
)

// registerAsyncAPI adds GET /asyncapi.json.
func (s *Server) registerAsyncAPI() {
	s.Handle(Route{Method: "GET", Path: "/asyncapi.json", Auth: AuthNone, Tag: "meta", Summary: "The NATS subjects as AsyncAPI 3.0, built from schemas/",
		Responses: Responses{200: schemas.OpenAPIDocument}}, s.asyncAPI)
}

func (s *Server) asyncAPI(c *fiber.Ctx) error {
	b, err := json.Marshal(s.AsyncAPI())
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(b)
}

// AsyncAPI builds the AsyncAPI 3.0 document of statusflow's NATS side
// (internal/bus, API.md §8): the trigger and request subjects it receives
// on, the events and dead-letter subjects it publishes, with the same
// schemas as /openapi.json. Subjects use the default prefix "statusflow"
// (STATUSFLOW_NATS_PREFIX changes it).
func (s *Server) AsyncAPI() map[string]any {
	v := s.deps.Validator
	comps := map[string]any{}
	for _, name := range v.Names() {
		comps[name] = componentSchema(v.Doc(name))
	}
	sref := func(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	param := func(desc string) map[string]any { return map[string]any{"description": desc} }
	nodeParams := map[string]any{"nodeId": param("An action node id: status.publish, status.delete (it may contain dots)."), "instance": param("The instance name (always the last token).")}
	triggerHeaders := map[string]any{"type": "object", "properties": map[string]any{
		"token":               str("TokenAccount or the instance's TokenInstance."),
		"Nats-Msg-Id":         str("Deduplication within 24 h and the execution's idempotency key."),
		"traceparent":         str("W3C trace context; the trace continues."),
		"Statusflow-Reply-To": str("A subject that gets the execute result."),
	}}
	messages := map[string]any{
		"trigger": map[string]any{"name": "trigger", "title": "Run a node", "contentType": "application/json", "headers": triggerHeaders,
			"summary": "The execute body without instance ({input, origin}); a JSON object with neither is taken as the bare node input.",
			"payload": sref(schemas.ExecuteInput)},
		"result": map[string]any{"name": "result", "title": "Execute result", "contentType": "application/json",
			"payload": map[string]any{"anyOf": []any{sref(schemas.ExecuteOutput), sref(schemas.Error)}}},
		"dlq": map[string]any{"name": "dlq", "title": "Dead letter", "contentType": "application/json",
			"summary": "A trigger that failed for good, with its payload and headers (not the token) plus Statusflow-Dlq-Reason, -Status, -Subject, -Deliveries, -Stream-Seq and -Time.",
			"payload": map[string]any{}},
	}
	eventMsgs := map[string]any{}
	for _, typ := range EventTypes(v) {
		name := "event." + typ
		messages[name] = map[string]any{"name": typ, "title": typ, "contentType": "application/cloudevents+json",
			"payload": map[string]any{"allOf": []any{sref(schemas.CloudEvent), map[string]any{"type": "object", "properties": map[string]any{
				"type": map[string]any{"const": typ}, "data": sref(schemas.EventData(typ))}}}}}
		eventMsgs[strings.ReplaceAll(typ, ".", "_")] = map[string]any{"$ref": "#/components/messages/" + name}
	}
	msg := func(n string) map[string]any {
		return map[string]any{n: map[string]any{"$ref": "#/components/messages/" + n}}
	}
	ch := func(n string) map[string]any { return map[string]any{"$ref": "#/channels/" + n} }
	return map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{"title": "statusflow NATS", "version": "1.0.0", "license": map[string]any{"name": License},
			"description": "statusflow's NATS subjects (JetStream). Triggers and requests run a node like POST /api/nodes/{nodeId}/execute; every event is published as a CloudEvent. HTTP: /openapi.json."},
		"defaultContentType": "application/json",
		"servers": map[string]any{"embedded": map[string]any{"host": "127.0.0.1:4222", "protocol": "nats",
			"description": "The embedded server (or STATUSFLOW_NATS_URL)."}},
		"channels": map[string]any{
			"trigger": map[string]any{"address": "statusflow.trigger.{nodeId}.{instance}", "parameters": nodeParams, "messages": msg("trigger"),
				"description": "Durable (stream STATUSFLOW_TRIGGERS): retried with backoff, dead-lettered when it cannot succeed."},
			"request": map[string]any{"address": "statusflow.request.{nodeId}.{instance}", "parameters": nodeParams, "messages": map[string]any{
				"trigger": map[string]any{"$ref": "#/components/messages/trigger"}},
				"description": "Core NATS request-reply: the reply is the execute result."},
			"reply": map[string]any{"address": nil, "messages": msg("result"), "description": "The requester's inbox."},
			"events": map[string]any{"address": "statusflow.events.{instance}.{type}", "parameters": map[string]any{
				"instance": param("The instance name."), "type": param("The event type: " + strings.Join(EventTypes(v), ", ") + ".")},
				"messages": eventMsgs, "description": "Stream STATUSFLOW_EVENTS."},
			"dlq": map[string]any{"address": "statusflow.dlq.{nodeId}.{instance}", "parameters": nodeParams, "messages": msg("dlq"),
				"description": "Stream STATUSFLOW_DLQ."},
		},
		"operations": map[string]any{
			"runTrigger": map[string]any{"action": "receive", "channel": ch("trigger"), "summary": "statusflow runs the node for each trigger."},
			"runRequest": map[string]any{"action": "receive", "channel": ch("request"), "summary": "statusflow runs the node and replies with the result.",
				"reply": map[string]any{"channel": ch("reply"), "address": map[string]any{"location": "$message.header#/replyTo"}}},
			"publishEvent": map[string]any{"action": "send", "channel": ch("events"), "summary": "statusflow publishes every event."},
			"deadLetter":   map[string]any{"action": "send", "channel": ch("dlq"), "summary": "statusflow dead-letters a trigger that cannot succeed."},
		},
		"components": map[string]any{"schemas": comps, "messages": messages},
	}
}
