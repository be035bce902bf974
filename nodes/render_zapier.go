package nodes

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/statusflow/statusflow/schemas"
)

// ZapierPlatformVersion is the zapier-platform-core version [ZapierApp]
// declares; integrations/check validates against the matching schema package.
const ZapierPlatformVersion = "19.1.0"

// ZapierOperation is a Zapier create or trigger (zapier-platform-schema's
// CreateSchema / TriggerSchema).
type ZapierOperation struct {
	Key       string        `json:"key"`
	Noun      string        `json:"noun"`
	Display   ZapierDisplay `json:"display"`
	Operation ZapierOperDef `json:"operation"`
}

// ZapierDisplay is a BasicDisplaySchema.
type ZapierDisplay struct {
	Label       string `json:"label"`
	Description string `json:"description"`
}

// ZapierOperDef is the operation part: fields, requests, sample.
type ZapierOperDef struct {
	Type               string          `json:"type,omitempty"`
	InputFields        []ZapierField   `json:"inputFields"`
	Perform            any             `json:"perform"`
	PerformList        any             `json:"performList,omitempty"`
	PerformSubscribe   any             `json:"performSubscribe,omitempty"`
	PerformUnsubscribe any             `json:"performUnsubscribe,omitempty"`
	Sample             json.RawMessage `json:"sample"`
	OutputFields       []ZapierOutput  `json:"outputFields"`
}

// ZapierField is a PlainInputFieldSchema.
type ZapierField struct {
	Key         string         `json:"key"`
	Label       string         `json:"label"`
	Type        string         `json:"type,omitempty"`
	Required    bool           `json:"required"`
	HelpText    string         `json:"helpText,omitempty"`
	Default     string         `json:"default,omitempty"`
	Placeholder string         `json:"placeholder,omitempty"`
	List        bool           `json:"list,omitempty"`
	Choices     []ZapierChoice `json:"choices,omitempty"`
	// AltersDynamicFields: changing it changes the fields shown after it.
	AltersDynamicFields bool `json:"altersDynamicFields,omitempty"`
	// Dynamic names a trigger that lists the choices ("key.id.label").
	Dynamic string `json:"dynamic,omitempty"`
}

// ZapierChoice is a FieldChoiceWithLabelSchema.
type ZapierChoice struct {
	Value  string `json:"value"`
	Sample string `json:"sample"`
	Label  string `json:"label"`
}

// ZapierOutput is a PlainOutputFieldSchema.
type ZapierOutput struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Type  string `json:"type,omitempty"`
}

// ZapierRequest is a RequestSchema.
type ZapierRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

// ZapierFunction is a FunctionSourceSchema: a JavaScript body taking (z, bundle).
type ZapierFunction struct {
	Source string `json:"source"`
}

// zapierKey turns a node id into a Zapier key: status.publish → status_publish.
func zapierKey(id string) string { return strings.NewReplacer(".", "_", "-", "_").Replace(id) }

var zapierHeaders = map[string]string{"token": "{{bundle.authData.token}}", "Accept": "application/json"}

// RenderZapier renders a node as a Zapier app fragment, derived from its
// schemas: {"creates": {key: …}} for an action, {"triggers": {key: …}} for a
// trigger (a REST hook on the instance's webhooks).
func RenderZapier(c *Catalog, d Descriptor) (map[string]map[string]ZapierOperation, error) {
	v := c.Validator()
	op := ZapierOperation{Key: zapierKey(d.ID), Noun: d.Noun, Display: ZapierDisplay{Label: d.Title, Description: d.Description}}
	if op.Noun == "" {
		op.Noun = label(d.ID)
	}
	instance, err := instanceProperty(v)
	if err != nil {
		return nil, err
	}
	op.Operation.InputFields = []ZapierField{{Key: "instance", Label: "Instance", Type: "string", Required: true, HelpText: instance.Description, Placeholder: "sales"}}
	if len(d.Samples) > 0 {
		op.Operation.Sample = d.Samples[0].Output
	}
	if op.Operation.Sample == nil {
		op.Operation.Sample = json.RawMessage(`{}`)
	}
	if d.Output != "" {
		op.Operation.OutputFields = zapierOutputs(v, v.Doc(d.Output), "")
	}
	if d.Kind == KindTrigger {
		op.Operation.Type = "hook"
		op.Operation.Perform = ZapierFunction{Source: "const body = bundle.cleanedRequest || {};\nreturn [Object.assign({id: body.id}, body.data || body)];"}
		sample, _ := json.Marshal(op.Operation.Sample)
		op.Operation.PerformList = ZapierFunction{Source: "return [" + string(sample) + "];"}
		hook := "{{bundle.authData.baseUrl}}/api/events/webhook/{{bundle.inputData.instance}}"
		op.Operation.PerformSubscribe = ZapierRequest{Method: "POST", URL: hook, Headers: zapierHeaders,
			Body: map[string]any{"label": "zapier-" + op.Key + "-{{bundle.meta.zap.id}}", "enabled": true, "url": "{{bundle.targetUrl}}", "events": []string{d.Event}}}
		op.Operation.PerformUnsubscribe = ZapierRequest{Method: "POST", URL: hook, Headers: zapierHeaders,
			Body: map[string]any{"label": "zapier-" + op.Key + "-{{bundle.meta.zap.id}}", "enabled": false, "url": "{{bundle.targetUrl}}", "events": []string{d.Event}}}
		return map[string]map[string]ZapierOperation{"triggers": {op.Key: op}}, nil
	}

	f, err := readForm(v.Raw(d.Input))
	if err != nil {
		return nil, fmt.Errorf("nodes: %s: %w", d.ID, err)
	}
	keys := make([]string, 0, len(f.Fields))
	for _, fd := range f.Fields {
		op.Operation.InputFields = append(op.Operation.InputFields, zapierField(f, fd))
		keys = append(keys, fd.Name)
	}
	// Zapier replaces {{curlies}} only with strings, so the body is built in
	// code: the input fields that are set, and the origin of the Zap.
	keyList, _ := json.Marshal(keys)
	op.Operation.Perform = ZapierFunction{Source: strings.Join([]string{
		"const input = {};",
		"for (const k of " + string(keyList) + ") {",
		"  const v = bundle.inputData[k];",
		"  if (v !== undefined && v !== null && v !== '') input[k] = v;",
		"}",
		"const meta = bundle.meta || {};",
		"const origin = {platform: 'zapier', workflowId: String((meta.zap && meta.zap.id) || ''), workflowName: String((meta.zap && meta.zap.name) || '')};",
		"return z.request({",
		"  method: 'POST',",
		"  url: bundle.authData.baseUrl + '/api/nodes/" + d.ID + "/execute',",
		"  headers: {token: bundle.authData.token, 'Content-Type': 'application/json', Accept: 'application/json'},",
		"  body: {instance: bundle.inputData.instance, input: input, origin: origin},",
		"}).then((response) => response.data.output);",
	}, "\n")}
	return map[string]map[string]ZapierOperation{"creates": {op.Key: op}}, nil
}

func zapierField(f *form, fd formField) ZapierField {
	zf := ZapierField{Key: fd.Name, Label: label(fd.Name), Required: fd.Required, HelpText: fd.Description}
	var notes []string
	if f == nil {
		f = &form{} // rendered for one discriminator value: no notes
	}
	if f.Discriminator != "" && len(fd.RequiredFor) > 0 && !fd.Required {
		notes = append(notes, "Required for "+f.Discriminator+": "+strings.Join(fd.RequiredFor, ", ")+".")
	}
	if f.Discriminator != "" && fd.AppliesTo != nil && len(fd.AppliesTo) < len(f.Values) {
		notes = append(notes, "Used only for "+f.Discriminator+": "+strings.Join(fd.AppliesTo, ", ")+".")
	}
	if len(notes) > 0 {
		zf.HelpText = strings.TrimSpace(zf.HelpText + " " + strings.Join(notes, " "))
	}
	switch {
	case len(fd.Enum) > 0:
		zf.Type = "string"
		for _, e := range fd.Enum {
			zf.Choices = append(zf.Choices, ZapierChoice{Value: e, Sample: e, Label: label(e)})
		}
	case fd.Type == "boolean":
		zf.Type = "boolean"
	case fd.Type == "number":
		zf.Type = "number"
	case fd.Type == "integer":
		zf.Type = "integer"
	case fd.Type == "array":
		zf.List = true
		zf.Type = zapierScalar(fd.ItemType)
	case fd.Type == "object":
		zf.Type = "json"
	case fd.MaxLength > 8192:
		zf.Type = "text"
	default:
		zf.Type = "string"
	}
	if fd.Default != nil {
		zf.Default = fmt.Sprint(fd.Default)
	}
	if fd.Example != nil {
		zf.Placeholder = fmt.Sprint(fd.Example)
	}
	return zf
}

func zapierScalar(t string) string {
	switch t {
	case "integer", "number", "boolean":
		return t
	}
	return "string"
}

// zapierOutputs flattens an output schema into Zapier output fields
// (nested keys joined with "__", as Zapier does).
func zapierOutputs(v *schemas.Validator, doc map[string]any, prefix string) []ZapierOutput {
	props, _ := doc["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []ZapierOutput
	for _, n := range names {
		p, _ := props[n].(map[string]any)
		if ref, ok := p["$ref"].(string); ok {
			p = v.Doc(strings.TrimSuffix(ref, ".json"))
		}
		key := prefix + n
		switch t, _ := p["type"].(string); t {
		case "object":
			if sub := zapierOutputs(v, p, key+"__"); len(sub) > 0 {
				out = append(out, sub...)
				continue
			}
			out = append(out, ZapierOutput{Key: key, Label: label(key)})
		case "integer", "number", "boolean":
			out = append(out, ZapierOutput{Key: key, Label: label(key), Type: t})
		default:
			zt := "string"
			if f, _ := p["format"].(string); f == "date-time" {
				zt = "datetime"
			}
			out = append(out, ZapierOutput{Key: key, Label: label(key), Type: zt})
		}
	}
	return out
}

// ZapierApp builds a whole Zapier app definition from the catalog: the
// authentication from schemas/credential.statusflow.json, then every node's
// fragment. integrations/check validates it with zapier-platform-schema.
func ZapierApp(c *Catalog, version string) (map[string]any, error) {
	v := c.Validator()
	cred := v.Doc(schemas.Credential)
	props, _ := cred["properties"].(map[string]any)
	req := stringList(cred["required"])
	order, err := propertyOrder(v.Raw(schemas.Credential))
	if err != nil {
		return nil, err
	}
	var fields []map[string]any
	for _, n := range order {
		p, _ := props[n].(map[string]any)
		f := map[string]any{"key": n, "label": label(n), "required": slices.Contains(req, n), "type": "string"}
		if d, ok := p["description"].(string); ok {
			f["helpText"] = d
		}
		if d, ok := p["default"].(string); ok {
			f["default"] = d
		}
		if w, _ := p["writeOnly"].(bool); w {
			f["type"] = "password"
		}
		fields = append(fields, f)
	}
	app := map[string]any{
		"version":         version,
		"platformVersion": ZapierPlatformVersion,
		"authentication": map[string]any{
			"type":            "custom",
			"fields":          fields,
			"test":            ZapierRequest{Method: "GET", URL: "{{bundle.authData.baseUrl}}/api/instance/list", Headers: zapierHeaders},
			"connectionLabel": "{{bundle.authData.baseUrl}}",
		},
		"triggers": map[string]any{},
		"creates":  map[string]any{},
	}
	for _, d := range c.List() {
		frag, err := RenderZapier(c, d)
		if err != nil {
			return nil, err
		}
		for section, ops := range frag {
			for k, op := range ops {
				app[section].(map[string]any)[k] = op
			}
		}
	}
	return app, nil
}
