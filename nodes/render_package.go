package nodes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/statusflow/statusflow/schemas"
)

// The platform packages (integrations/n8n, integrations/zapier) take their
// parameters from this file's renderings, written by cmd/nodegen; the field
// rules are the ones the server's per-node renderings use (n8nField,
// zapierField), so there is one renderer. A node added to the catalog shows
// up in both packages after `go run ./cmd/nodegen`.

// N8nPackage is what the n8n community package's Statusflow and Statusflow
// Trigger nodes are made of.
type N8nPackage struct {
	// Resources are the nouns of the catalog's actions ("Status"), as n8n
	// resource options; Operations one "operation" property per resource.
	Resources  []N8nOption    `json:"resources"`
	Operations []N8nProperty  `json:"operations"`
	Properties []N8nProperty  `json:"properties"`
	Actions    []N8nAction    `json:"actions"`
	Instance   N8nProperty    `json:"instance"`
	Credential []N8nProperty  `json:"credential"`
	CredTitle  string         `json:"credentialTitle"`
	Events     []N8nEventOpt  `json:"events"`
	Samples    map[string]any `json:"eventSamples"`
	Origin     []string       `json:"originFields"`
}

// N8nAction tells the package's execute code how to read an operation's
// parameters back into the node's input.
type N8nAction struct {
	ID       string `json:"id"`
	Resource string `json:"resource"`
	// Top are parameters at the top level, Additional the keys of its
	// "additionalFields" collection, JSON those whose text is parsed.
	Top        []string `json:"top"`
	Additional []string `json:"additional"`
	JSON       []string `json:"json"`
	// Discriminator is the field the schema's branches test ("" when none).
	Discriminator string `json:"discriminator,omitempty"`
	// Media lists the discriminator values whose branch requires mediaUrl.
	Media []string `json:"media,omitempty"`
}

// N8nEventOpt is one event the trigger can listen to.
type N8nEventOpt struct {
	Name        string `json:"name"`
	Value       string `json:"value"`
	Description string `json:"description"`
}

func resourceValue(noun string) string {
	return strings.ToLower(strings.ReplaceAll(label(noun), " ", ""))
}

// operationName is an operation's short name: the title's verb ("Publish a
// status" → "Publish"), or the whole title when two share a verb.
func operationName(d Descriptor, all []Descriptor) string {
	verb := strings.Fields(d.Title)[0]
	for _, o := range all {
		if o.ID != d.ID && o.Noun == d.Noun && strings.Fields(o.Title)[0] == verb {
			return label(d.Title)
		}
	}
	return strings.ToUpper(verb[:1]) + verb[1:]
}

// RenderN8nPackage renders the catalog for the n8n community package: one
// resource per noun, one operation per action (value: the node id), each
// operation's fields (the same rendering as [RenderN8n], shown only for it),
// the credential, and the trigger's events (catalog triggers, then the other
// events a webhook can subscribe to).
func RenderN8nPackage(c *Catalog) (*N8nPackage, error) {
	v := c.Validator()
	pkg := &N8nPackage{Samples: map[string]any{}}
	inst, err := instanceProperty(v)
	if err != nil {
		return nil, err
	}
	inst.Description = n8nDescription(inst.Description)
	pkg.Instance = inst
	var actions []Descriptor
	for _, d := range c.List() {
		if d.Kind == KindAction && !d.Deprecated {
			actions = append(actions, d)
		}
	}
	byNoun := map[string][]Descriptor{}
	var nouns []string
	for _, d := range actions {
		n := d.Noun
		if n == "" {
			n = label(strings.Split(d.ID, ".")[0])
		}
		if _, ok := byNoun[n]; !ok {
			nouns = append(nouns, n)
		}
		byNoun[n] = append(byNoun[n], d)
	}
	sort.Strings(nouns)
	for _, n := range nouns {
		res := resourceValue(n)
		pkg.Resources = append(pkg.Resources, N8nOption{Name: n, Value: res})
		op := N8nProperty{DisplayName: "Operation", Name: "operation", Type: "options", NoDataExpr: true,
			DisplayOptions: &N8nDisplayOptions{Show: map[string][]string{"resource": {res}}}}
		var opts []map[string]string
		for _, d := range byNoun[n] {
			opts = append(opts, map[string]string{"name": operationName(d, byNoun[n]), "value": d.ID,
				"action": strings.ToUpper(d.Title[:1]) + d.Title[1:], "description": n8nDescription(firstSentence(d.Description))})
		}
		sort.Slice(opts, func(i, j int) bool { return strings.ToLower(opts[i]["name"]) < strings.ToLower(opts[j]["name"]) })
		for _, o := range opts {
			op.Options = append(op.Options, o)
		}
		op.Default = opts[0]["value"]
		pkg.Operations = append(pkg.Operations, op)
		for _, d := range byNoun[n] {
			props, act, err := n8nActionProperties(v, d, res)
			if err != nil {
				return nil, err
			}
			pkg.Properties = append(pkg.Properties, props...)
			pkg.Actions = append(pkg.Actions, act)
		}
	}
	cred, err := RenderN8nCredential(c)
	if err != nil {
		return nil, err
	}
	for _, p := range cred.Properties {
		p.Description = n8nDescription(p.Description)
		pkg.Credential = append(pkg.Credential, p)
	}
	pkg.CredTitle, _ = v.Doc(schemas.Credential)["title"].(string)
	for _, e := range triggerEvents(c) {
		pkg.Events = append(pkg.Events, N8nEventOpt{Name: label(e.Title), Value: e.Event, Description: n8nDescription(firstSentence(e.Description))})
		pkg.Samples[e.Event] = e.Sample
	}
	sort.Slice(pkg.Events, func(i, j int) bool { return strings.ToLower(pkg.Events[i].Name) < strings.ToLower(pkg.Events[j].Name) })
	if pkg.Origin, err = propertyOrder(v.Raw(schemas.Origin)); err != nil {
		return nil, err
	}
	return pkg, nil
}

// n8nActionProperties renders one action's fields for the package: required
// ones at the top level, the rest in its "Additional Fields" collection, all
// shown only for its resource and operation.
func n8nActionProperties(v *schemas.Validator, d Descriptor, res string) ([]N8nProperty, N8nAction, error) {
	act := N8nAction{ID: d.ID, Resource: res, Top: []string{}, Additional: []string{}, JSON: []string{}}
	f, err := readForm(v.Raw(d.Input))
	if err != nil {
		return nil, act, fmt.Errorf("nodes: %s: %w", d.ID, err)
	}
	act.Discriminator = f.Discriminator
	show := func(extra map[string][]string) *N8nDisplayOptions {
		s := map[string][]string{"resource": {res}, "operation": {d.ID}}
		for k, v := range extra {
			s[k] = v
		}
		return &N8nDisplayOptions{Show: s}
	}
	var props []N8nProperty
	var extra []any
	for _, fd := range f.Fields {
		if fd.Type == "array" || fd.Type == "object" {
			act.JSON = append(act.JSON, fd.Name)
		}
		if fd.Name == "mediaUrl" {
			act.Media = fd.RequiredFor
		}
		if !fd.Optional() {
			p := n8nField(fd, "input.", fd.describeFor(fd.RequiredFor))
			p.Routing, p.Required = nil, true
			if fd.Name == f.Discriminator {
				p.NoDataExpr = true
			}
			if fd.Required {
				p.DisplayOptions = show(nil)
			} else {
				p.DisplayOptions = show(map[string][]string{f.Discriminator: fd.RequiredFor})
			}
			props = append(props, p)
			act.Top = appendNew(act.Top, fd.Name)
		}
		opt := fd.OptionalFor(f.Values)
		if len(opt) == 0 && !fd.Optional() {
			continue
		}
		p := n8nField(fd, "input.", fd.describeFor(opt))
		p.Routing = nil
		if f.Discriminator != "" && len(opt) > 0 && len(opt) < len(f.Values) {
			p.DisplayOptions = &N8nDisplayOptions{Show: map[string][]string{"/" + f.Discriminator: opt}}
		}
		extra = append(extra, p)
		act.Additional = appendNew(act.Additional, fd.Name)
	}
	if len(extra) > 0 {
		sort.SliceStable(extra, func(i, j int) bool {
			return strings.ToLower(extra[i].(N8nProperty).DisplayName) < strings.ToLower(extra[j].(N8nProperty).DisplayName)
		})
		props = append(props, N8nProperty{DisplayName: "Additional Fields", Name: "additionalFields", Type: "collection",
			Placeholder: "Add Field", Default: map[string]any{}, DisplayOptions: show(nil), Options: extra})
	}
	return props, act, nil
}

// eventInfo is one event a trigger can fire on.
type eventInfo struct {
	Event, Title, Description, Noun string
	Sample                          json.RawMessage
	Output                          string
}

// triggerEvents lists the catalog's triggers, then the other events
// webhook.config.input.json lets a webhook subscribe to (those with a data
// schema), so every event reaches the platforms.
func triggerEvents(c *Catalog) []eventInfo {
	v := c.Validator()
	var out []eventInfo
	seen := map[string]bool{}
	for _, d := range c.List() {
		if d.Kind != KindTrigger || d.Deprecated || seen[d.Event] {
			continue
		}
		e := eventInfo{Event: d.Event, Title: d.Title, Description: d.Description, Noun: d.Noun, Output: d.Output}
		if len(d.Samples) > 0 {
			e.Sample = d.Samples[0].Output
		}
		out = append(out, e)
		seen[d.Event] = true
	}
	props, _ := v.Doc("webhook.config.input")["properties"].(map[string]any)
	ev, _ := props["events"].(map[string]any)
	items, _ := ev["items"].(map[string]any)
	for _, name := range stringList(items["enum"]) {
		schema := schemas.EventData(name)
		if seen[name] || name == "*" || v.Raw(schema) == nil {
			continue
		}
		doc := v.Doc(schema)
		desc, _ := doc["description"].(string)
		// "Data of the status.accepted event: a publish command started…"
		if _, after, ok := strings.Cut(desc, " event: "); ok && strings.HasPrefix(desc, "Data of") {
			desc = after
		} else {
			desc = "statusflow emits a " + name + " event"
		}
		parts := strings.SplitN(name, ".", 2)
		title := label(parts[0])
		if len(parts) > 1 {
			title += " " + strings.ToLower(label(parts[1]))
		}
		e := eventInfo{Event: name, Title: title, Description: desc, Noun: label(parts[0]), Output: schema}
		if exs, _ := doc["examples"].([]any); len(exs) > 0 {
			e.Sample, _ = json.Marshal(exs[0])
		}
		out = append(out, e)
		seen[name] = true
	}
	for i := range out {
		if out[i].Sample == nil {
			out[i].Sample = json.RawMessage(`{}`)
		}
	}
	return out
}

// firstSentence is a description's first sentence (up to ". " or ": ").
func firstSentence(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "`", ""))
	for _, sep := range []string{". ", ": "} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	return strings.TrimSuffix(s, ".")
}

// thirdPerson turns an imperative description into Zapier's voice:
// "Publish a status" → "Publishes a status".
func thirdPerson(s string) string {
	verb, rest, _ := strings.Cut(s, " ")
	lv := strings.ToLower(verb)
	switch {
	case strings.HasSuffix(lv, "s"), strings.HasSuffix(lv, "sh"), strings.HasSuffix(lv, "ch"), strings.HasSuffix(lv, "x"), strings.HasSuffix(lv, "z"), strings.HasSuffix(lv, "o"):
		verb += "es"
	case strings.HasSuffix(lv, "y") && len(lv) > 1 && !strings.ContainsRune("aeiou", rune(lv[len(lv)-2])):
		verb = verb[:len(verb)-1] + "ies"
	default:
		verb += "s"
	}
	if rest == "" {
		return verb
	}
	return verb + " " + rest
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	if len(r) > 1 && unicode.IsUpper(r[1]) {
		return s // an acronym
	}
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// zapierLabel is a title in Zapier's style: title case without articles
// ("Publish a status" → "Publish Status").
func zapierLabel(title string) string {
	var words []string
	for _, w := range strings.Fields(title) {
		switch strings.ToLower(w) {
		case "a", "an", "the":
			continue
		}
		words = append(words, label(w))
	}
	return strings.Join(words, " ")
}

// ZapierPackage is what the Zapier app (integrations/zapier) is made of.
type ZapierPackage struct {
	Auth     []map[string]any `json:"authFields"`
	Instance ZapierField      `json:"instanceField"`
	Creates  []ZapierCreate   `json:"creates"`
	Triggers []ZapierTrigger  `json:"triggers"`
	Searches []ZapierSearch   `json:"searches"`
	Origin   []string         `json:"originFields"`
}

// ZapierSearch is a Zapier search over an API read (its output schema gives
// the sample and output fields).
type ZapierSearch struct {
	Key          string          `json:"key"`
	Noun         string          `json:"noun"`
	Label        string          `json:"label"`
	Description  string          `json:"description"`
	Sample       json.RawMessage `json:"sample"`
	OutputFields []ZapierOutput  `json:"outputFields"`
}

// ZapierCreate is one action as a Zapier create. With a discriminator, the
// app shows the fields of the chosen value (FieldsBy, a dynamic field).
type ZapierCreate struct {
	Key           string                   `json:"key"`
	ID            string                   `json:"id"`
	Noun          string                   `json:"noun"`
	Label         string                   `json:"label"`
	Description   string                   `json:"description"`
	Discriminator *ZapierField             `json:"discriminator,omitempty"`
	Fields        []ZapierField            `json:"fields,omitempty"`
	FieldsBy      map[string][]ZapierField `json:"fieldsBy,omitempty"`
	Sample        json.RawMessage          `json:"sample"`
	OutputFields  []ZapierOutput           `json:"outputFields"`
}

// ZapierTrigger is one event as a Zapier REST-hook trigger.
type ZapierTrigger struct {
	Key          string          `json:"key"`
	Event        string          `json:"event"`
	Noun         string          `json:"noun"`
	Label        string          `json:"label"`
	Description  string          `json:"description"`
	Sample       json.RawMessage `json:"sample"`
	OutputFields []ZapierOutput  `json:"outputFields"`
}

// RenderZapierPackage renders the catalog for the Zapier app: the
// authentication fields, a create per action (fields by [zapierField];
// with a discriminator, the fields of each value), a trigger per event.
func RenderZapierPackage(c *Catalog) (*ZapierPackage, error) {
	v := c.Validator()
	app, err := ZapierApp(c, "0.0.0")
	if err != nil {
		return nil, err
	}
	pkg := &ZapierPackage{Auth: app["authentication"].(map[string]any)["fields"].([]map[string]any)}
	inst, err := instanceProperty(v)
	if err != nil {
		return nil, err
	}
	pkg.Instance = ZapierField{Key: "instance", Label: "Instance", Type: "string", Required: true, HelpText: sentence(inst.Description)}
	for _, d := range c.List() {
		if d.Kind != KindAction || d.Deprecated {
			continue
		}
		f, err := readForm(v.Raw(d.Input))
		if err != nil {
			return nil, fmt.Errorf("nodes: %s: %w", d.ID, err)
		}
		title := zapierLabel(d.Title)
		zc := ZapierCreate{Key: zapierKey(d.ID), ID: d.ID, Noun: d.Noun, Label: title,
			Description: sentence(thirdPerson(firstSentence(d.Description))), OutputFields: zapierOutputs(v, v.Doc(d.Output), "")}
		if len(d.Samples) > 0 {
			zc.Sample = d.Samples[0].Output
		}
		if zc.Sample == nil {
			zc.Sample = json.RawMessage(`{}`)
		}
		if zc.Noun == "" {
			zc.Noun = label(strings.Split(d.ID, ".")[0])
		}
		for _, fd := range f.Fields {
			if fd.Name == f.Discriminator {
				zf := zapierField(f, fd)
				zf.Required, zf.AltersDynamicFields = true, true
				if zf.Default == "" && len(f.Values) > 0 {
					zf.Default = f.Values[0]
				}
				zc.Discriminator = &zf
				continue
			}
			if f.Discriminator == "" {
				zc.Fields = append(zc.Fields, zapierField(f, fd))
				continue
			}
			if zc.FieldsBy == nil {
				zc.FieldsBy = map[string][]ZapierField{}
			}
			for _, val := range f.Values {
				if fd.AppliesTo != nil && !slices.Contains(fd.AppliesTo, val) {
					continue
				}
				zf := zapierField(nil, fd)
				zf.Required = fd.Required || slices.Contains(fd.RequiredFor, val)
				if d := fd.describeFor([]string{val}); d != "" {
					zf.HelpText = sentence(d)
				}
				if fd.Name == "mediaUrl" {
					// Zapier hands a mapped file to the app as a URL.
					zf.Type = "file"
					zf.HelpText = strings.TrimSpace(zf.HelpText + " Map a file from a previous step, or enter a URL.")
				}
				zc.FieldsBy[val] = append(zc.FieldsBy[val], zf)
			}
		}
		pkg.Creates = append(pkg.Creates, zc)
	}
	originKeys, err := propertyOrder(v.Raw(schemas.Origin))
	if err != nil {
		return nil, err
	}
	// A trigger's item is the CloudEvent flattened: its envelope, then its data.
	envelope := []ZapierOutput{{Key: "id", Label: "Event ID"}, {Key: "type", Label: "Event Type"},
		{Key: "time", Label: "Event Time", Type: "datetime"}, {Key: "instance", Label: "Instance"}, {Key: "traceparent", Label: "Traceparent"}}
	for _, k := range originKeys {
		if k != "extra" {
			envelope = append(envelope, ZapierOutput{Key: "origin__" + k, Label: "Origin " + label(k)})
		}
	}
	for _, e := range triggerEvents(c) {
		var data map[string]any
		_ = json.Unmarshal(e.Sample, &data)
		item := map[string]any{"id": "6d4a0356-fa6d-4fe7-9078-060a1859906c", "type": e.Event, "time": "2026-11-25T12:00:00Z",
			"instance": "sales", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"origin": map[string]any{"platform": "zapier", "workflowId": "123456", "workflowName": "My Zap"}}
		for k, v := range data {
			item[k] = v
		}
		e.Sample, _ = json.Marshal(item)
		desc := "Triggers when " + lowerFirst(firstSentence(e.Description)) + "."
		t := ZapierTrigger{Key: zapierKey(e.Event), Event: e.Event, Noun: e.Noun, Label: zapierLabel(e.Title), Description: desc, Sample: e.Sample}
		if t.Noun == "" {
			t.Noun = label(strings.Split(e.Event, ".")[0])
		}
		t.OutputFields = append([]ZapierOutput{}, envelope...)
		if e.Output != "" {
			t.OutputFields = append(t.OutputFields, zapierOutputs(v, v.Doc(e.Output), "")...)
		}
		pkg.Triggers = append(pkg.Triggers, t)
	}
	// Find a status: GET /api/status/find/:instance.
	find := ZapierSearch{Key: "find_status", Noun: "Status", Label: "Find Status",
		Description:  "Finds a status by its message ID (from Publish Status or any status event).",
		OutputFields: zapierOutputs(v, v.Doc(schemas.StatusFindOutput), ""), Sample: json.RawMessage(`{}`)}
	if exs, _ := v.Doc(schemas.StatusFindOutput)["examples"].([]any); len(exs) > 0 {
		if ex, ok := exs[0].(map[string]any); ok {
			ex["id"] = ex["messageId"] // Zapier wants an id on every item
			find.Sample, _ = json.Marshal(ex)
		}
	}
	pkg.Searches = append(pkg.Searches, find)
	pkg.Origin = originKeys
	return pkg, nil
}

// GeneratedHeader starts every file cmd/nodegen writes.
const GeneratedHeader = "Code generated by `go run ./cmd/nodegen` from the node catalog (nodes/) and schemas/. DO NOT EDIT."

// PackageFiles renders every file the platform packages consume, by path
// from the repository root. cmd/nodegen writes them; a test checks the
// committed ones are current.
func PackageFiles(c *Catalog) (map[string][]byte, error) {
	n8n, err := RenderN8nPackage(c)
	if err != nil {
		return nil, err
	}
	zap, err := RenderZapierPackage(c)
	if err != nil {
		return nil, err
	}
	var ts bytes.Buffer
	fmt.Fprintf(&ts, "// %s\n", GeneratedHeader)
	ts.WriteString("import type { INodeProperties, INodePropertyOptions } from 'n8n-workflow';\n\n")
	ts.WriteString("/** How the node reads one operation's parameters back into the node's input. */\n")
	ts.WriteString("export interface GeneratedAction {\n\tid: string;\n\tresource: string;\n\ttop: string[];\n\tadditional: string[];\n\tjson: string[];\n\tdiscriminator?: string;\n\tmedia?: string[];\n}\n\n")
	decl := func(doc, name, typ string, v any) error {
		b, err := json.MarshalIndent(v, "", "\t")
		if err != nil {
			return err
		}
		if doc != "" {
			fmt.Fprintf(&ts, "/** %s */\n", doc)
		}
		fmt.Fprintf(&ts, "export const %s: %s = %s;\n\n", name, typ, tsLiteral(b))
		return nil
	}
	for _, x := range []struct {
		doc, name, typ string
		v              any
	}{
		{"One per noun of the catalog's actions.", "resources", "INodePropertyOptions[]", n8n.Resources},
		{"One operation parameter per resource; values are node ids.", "operations", "INodeProperties[]", n8n.Operations},
		{"Every operation's fields, shown for its resource and operation.", "actionProperties", "INodeProperties[]", n8n.Properties},
		{"", "actions", "GeneratedAction[]", n8n.Actions},
		{"The instance parameter's text (execute.input.json).", "instanceProperty", "INodeProperties", n8n.Instance},
		{"schemas/credential.statusflow.json", "credentialProperties", "INodeProperties[]", n8n.Credential},
		{"", "credentialTitle", "string", n8n.CredTitle},
		{"The events the trigger listens to: catalog triggers, then the other webhook events.", "eventOptions", "INodePropertyOptions[]", n8n.Events},
		{"", "eventSamples", "Record<string, object>", n8n.Samples},
		{"origin.json's fields.", "originFields", "string[]", n8n.Origin},
	} {
		if err := decl(x.doc, x.name, x.typ, x.v); err != nil {
			return nil, err
		}
	}
	zb, err := json.MarshalIndent(struct {
		Comment string `json:"$comment"`
		*ZapierPackage
	}{GeneratedHeader, zap}, "", "  ")
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"integrations/n8n/nodes/Statusflow/generated.ts": bytes.TrimRight(ts.Bytes(), "\n"),
		"integrations/zapier/generated/app.json":         append(zb, '\n'),
	}, nil
}

// tsLiteral writes JSON as a TypeScript literal in n8n's prettier style
// (tabs, unquoted keys where they are identifiers, single-quoted strings,
// trailing commas, short lists of scalars on one line), keeping the JSON's
// key order.
func tsLiteral(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := readTS(dec)
	if err != nil {
		return string(b)
	}
	var out strings.Builder
	n.write(&out, "")
	return out.String()
}

// tsNode is a JSON value with its object keys in document order.
type tsNode struct {
	delim  json.Delim // '{', '[' or 0 for a scalar
	keys   []string
	kids   []*tsNode
	scalar string
}

func readTS(dec *json.Decoder) (*tsNode, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch x := t.(type) {
	case json.Delim:
		n := &tsNode{delim: x}
		for dec.More() {
			if x == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			kid, err := readTS(dec)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kid)
		}
		_, err := dec.Token()
		return n, err
	case string:
		return &tsNode{scalar: tsString(x)}, nil
	case json.Number:
		return &tsNode{scalar: x.String()}, nil
	case bool:
		return &tsNode{scalar: fmt.Sprint(x)}, nil
	default:
		return &tsNode{scalar: "null"}, nil
	}
}

func (n *tsNode) write(out *strings.Builder, indent string) {
	if n.delim == 0 {
		out.WriteString(n.scalar)
		return
	}
	closing := "}"
	if n.delim == '[' {
		closing = "]"
	}
	if len(n.kids) == 0 {
		out.WriteString(string(n.delim) + closing)
		return
	}
	if n.delim == '[' {
		var items []string
		width := 0
		for _, k := range n.kids {
			if k.delim != 0 {
				items = nil
				break
			}
			items = append(items, k.scalar)
			width += len(k.scalar) + 2
		}
		if items != nil && width < 80 {
			out.WriteString("[" + strings.Join(items, ", ") + "]")
			return
		}
	}
	out.WriteString(string(n.delim) + "\n")
	for i, k := range n.kids {
		out.WriteString(indent + "\t")
		if n.delim == '{' {
			out.WriteString(tsKey(n.keys[i]) + ": ")
		}
		k.write(out, indent+"\t")
		out.WriteString(",\n")
	}
	out.WriteString(indent + closing)
}

func tsKey(k string) string {
	for i, r := range k {
		if !(r == '_' || r == '$' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			return tsString(k)
		}
	}
	return k
}

func tsString(s string) string {
	b, _ := json.Marshal(s)
	inner := string(b[1 : len(b)-1])
	inner = strings.ReplaceAll(inner, `\"`, `"`)
	inner = strings.ReplaceAll(inner, `'`, `\'`)
	return "'" + inner + "'"
}
