package nodes

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/statusflow/statusflow/schemas"
)

// N8nNode is an n8n INodeTypeDescription (n8n-workflow's Interfaces.ts), the
// declarative kind: n8n builds the HTTP request from requestDefaults and each
// property's routing, so the node needs no code.
type N8nNode struct {
	DisplayName             string          `json:"displayName"`
	Name                    string          `json:"name"`
	Icon                    string          `json:"icon,omitempty"`
	Group                   []string        `json:"group"`
	Version                 int             `json:"version"`
	Subtitle                string          `json:"subtitle,omitempty"`
	Description             string          `json:"description"`
	Defaults                N8nDefaults     `json:"defaults"`
	Inputs                  []string        `json:"inputs"`
	Outputs                 []string        `json:"outputs"`
	Credentials             []N8nCredential `json:"credentials"`
	RequestDefaults         *N8nRequest     `json:"requestDefaults,omitempty"`
	Webhooks                []N8nWebhook    `json:"webhooks,omitempty"`
	EventTriggerDescription string          `json:"eventTriggerDescription,omitempty"`
	Properties              []N8nProperty   `json:"properties"`
}

// N8nDefaults are the node's defaults in the editor.
type N8nDefaults struct {
	Name string `json:"name"`
}

// N8nCredential names a credential type the node uses.
type N8nCredential struct {
	Name     string `json:"name"`
	Required bool   `json:"required"`
}

// N8nRequest is an IHttpRequestOptions subset.
type N8nRequest struct {
	BaseURL string            `json:"baseURL,omitempty"`
	Method  string            `json:"method,omitempty"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// N8nWebhook is an IWebhookDescription of a trigger node.
type N8nWebhook struct {
	Name         string `json:"name"`
	HTTPMethod   string `json:"httpMethod"`
	ResponseMode string `json:"responseMode"`
	Path         string `json:"path"`
}

// N8nProperty is an INodeProperties (and, inside a collection, an option of it).
type N8nProperty struct {
	DisplayName    string             `json:"displayName"`
	Name           string             `json:"name"`
	Type           string             `json:"type"`
	Default        any                `json:"default"`
	Required       bool               `json:"required,omitempty"`
	Description    string             `json:"description,omitempty"`
	Placeholder    string             `json:"placeholder,omitempty"`
	NoDataExpr     bool               `json:"noDataExpression,omitempty"`
	TypeOptions    map[string]any     `json:"typeOptions,omitempty"`
	DisplayOptions *N8nDisplayOptions `json:"displayOptions,omitempty"`
	Options        []any              `json:"options,omitempty"`
	Routing        *N8nRouting        `json:"routing,omitempty"`
}

// N8nOption is one choice of an "options" property.
type N8nOption struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// N8nDisplayOptions shows a property only for some values of others; a name
// starting with "/" refers to a root property from inside a collection.
type N8nDisplayOptions struct {
	Show map[string][]string `json:"show"`
}

// N8nRouting is an INodePropertyRouting.
type N8nRouting struct {
	Request *N8nRequest     `json:"request,omitempty"`
	Send    *N8nRoutingSend `json:"send,omitempty"`
	Output  *N8nRoutingOut  `json:"output,omitempty"`
}

// N8nRoutingSend puts a property's value into the request.
type N8nRoutingSend struct {
	Type     string `json:"type"`
	Property string `json:"property"`
	Value    string `json:"value,omitempty"`
}

// N8nRoutingOut post-processes the response.
type N8nRoutingOut struct {
	PostReceive []N8nPostReceive `json:"postReceive"`
}

// N8nPostReceive is one postReceive action.
type N8nPostReceive struct {
	Type       string         `json:"type"`
	Properties map[string]any `json:"properties"`
}

// n8nOrigin maps origin.json fields to what n8n knows about the running
// workflow; the renderer adds one hidden property per field it finds in the
// origin schema.
var n8nOrigin = map[string]string{
	"platform":     "n8n",
	"workflowId":   "={{$workflow.id}}",
	"workflowName": "={{$workflow.name}}",
	"executionId":  "={{$execution.id}}",
	"nodeName":     "={{$node.name}}",
}

// n8nName returns the n8n node type name of a node: statusflowStatusPublish,
// statusflowStatusPublishedTrigger.
func n8nName(d Descriptor) string {
	name := "statusflow" + strings.ReplaceAll(label(d.ID), " ", "")
	if d.Kind == KindTrigger {
		name += "Trigger"
	}
	return name
}

// RenderN8n renders a node as an n8n node description, derived from its
// schemas: the instance (from execute.input.json), then the input schema's
// fields (enums become options, optional fields go into an "Additional
// Fields" collection, allOf/if/then become displayOptions), then hidden
// properties that send the origin. Actions route to POST
// /api/nodes/<id>/execute; triggers receive webhooks.
func RenderN8n(c *Catalog, d Descriptor) (*N8nNode, error) {
	v := c.Validator()
	n := &N8nNode{
		DisplayName: "Statusflow: " + d.Title,
		Name:        n8nName(d),
		Icon:        "file:statusflow.svg",
		Version:     d.Version,
		Description: d.Description,
		Defaults:    N8nDefaults{Name: d.Title},
		Credentials: []N8nCredential{},
		Outputs:     []string{"main"},
	}
	for _, cr := range d.Credentials {
		n.Credentials = append(n.Credentials, N8nCredential{Name: cr.Name, Required: cr.Required})
	}
	instance, err := instanceProperty(v)
	if err != nil {
		return nil, err
	}
	if d.Kind == KindTrigger {
		n.Group, n.Inputs = []string{"trigger"}, []string{}
		n.Webhooks = []N8nWebhook{{Name: "default", HTTPMethod: "POST", ResponseMode: "onReceived", Path: d.ID}}
		n.EventTriggerDescription = "Waiting for statusflow to send a " + d.Event + " event"
		n.Properties = []N8nProperty{instance, {DisplayName: "Event", Name: "event", Type: "hidden", Default: d.Event}}
		return n, nil
	}
	n.Group, n.Inputs = []string{"output"}, []string{"main"}
	n.RequestDefaults = &N8nRequest{BaseURL: "={{$credentials.baseUrl}}",
		Headers: map[string]string{"Accept": "application/json", "Content-Type": "application/json"}}
	instance.Routing = &N8nRouting{Send: &N8nRoutingSend{Type: "body", Property: "instance"}}
	n.Properties = append(n.Properties,
		N8nProperty{DisplayName: "Node", Name: "nodeId", Type: "hidden", Default: d.ID, Routing: &N8nRouting{
			Request: &N8nRequest{Method: "POST", URL: "=/api/nodes/" + d.ID + "/execute"},
			Output:  &N8nRoutingOut{PostReceive: []N8nPostReceive{{Type: "rootProperty", Properties: map[string]any{"property": "output"}}}},
		}},
		instance)

	f, err := readForm(v.Raw(d.Input))
	if err != nil {
		return nil, fmt.Errorf("nodes: %s: %w", d.ID, err)
	}
	var extra []any
	for _, fd := range f.Fields {
		if !fd.Optional() {
			p := n8nField(fd, "input.", fd.describeFor(fd.RequiredFor))
			p.Required = true
			if fd.Name == f.Discriminator {
				p.NoDataExpr = true
			}
			if !fd.Required {
				p.DisplayOptions = &N8nDisplayOptions{Show: map[string][]string{f.Discriminator: fd.RequiredFor}}
			}
			n.Properties = append(n.Properties, p)
		}
		opt := fd.OptionalFor(f.Values)
		if len(opt) == 0 && !fd.Optional() {
			continue
		}
		p := n8nField(fd, "input.", fd.describeFor(opt))
		if f.Discriminator != "" && len(opt) > 0 && len(opt) < len(f.Values) {
			p.DisplayOptions = &N8nDisplayOptions{Show: map[string][]string{"/" + f.Discriminator: opt}}
		}
		extra = append(extra, p)
	}
	if len(extra) > 0 {
		n.Properties = append(n.Properties, N8nProperty{DisplayName: "Additional Fields", Name: "additionalFields", Type: "collection",
			Placeholder: "Add Field", Default: map[string]any{}, Options: extra})
	}
	// Origin: who is calling, filled by n8n at run time.
	originProps, err := propertyOrder(v.Raw(schemas.Origin))
	if err != nil {
		return nil, err
	}
	for _, name := range originProps {
		expr, ok := n8nOrigin[name]
		if !ok {
			continue
		}
		n.Properties = append(n.Properties, N8nProperty{DisplayName: "Origin " + label(name), Name: "origin" + strings.ToUpper(name[:1]) + name[1:],
			Type: "hidden", Default: expr, Routing: &N8nRouting{Send: &N8nRoutingSend{Type: "body", Property: "origin." + name}}})
	}
	return n, nil
}

// instanceProperty is the instance field, from execute.input.json.
func instanceProperty(v *schemas.Validator) (N8nProperty, error) {
	props, _ := v.Doc(schemas.ExecuteInput)["properties"].(map[string]any)
	p, ok := props["instance"].(map[string]any)
	if !ok {
		return N8nProperty{}, fmt.Errorf("nodes: execute.input.json has no instance property")
	}
	desc, _ := p["description"].(string)
	return N8nProperty{DisplayName: "Instance", Name: "instance", Type: "string", Default: "", Required: true, Description: desc, Placeholder: "sales"}, nil
}

// n8nField renders one schema field; its value goes to body.<prefix><name>.
// The rules (shared by the server's per-node rendering and the community
// package, cmd/nodegen): enum → options sorted by name (n8n's lint), a
// #RRGGBB pattern → colour picker, boolean/number/integer as such with their
// bounds, array/object → JSON text, the rest a string.
func n8nField(fd formField, prefix, desc string) N8nProperty {
	p := N8nProperty{DisplayName: label(fd.Name), Name: fd.Name, Description: n8nDescription(desc),
		Routing: &N8nRouting{Send: &N8nRoutingSend{Type: "body", Property: prefix + fd.Name}}}
	switch {
	case len(fd.Enum) > 0:
		p.Type = "options"
		opts := make([]N8nOption, 0, len(fd.Enum))
		for _, e := range fd.Enum {
			opts = append(opts, N8nOption{Name: label(e), Value: e})
		}
		sort.SliceStable(opts, func(i, j int) bool { return strings.ToLower(opts[i].Name) < strings.ToLower(opts[j].Name) })
		for _, o := range opts {
			p.Options = append(p.Options, o)
		}
		p.Default = fd.Enum[0]
		if s, ok := fd.Default.(string); ok && slices.Contains(fd.Enum, s) {
			p.Default = s
		} else if s, ok := fd.Example.(string); ok && slices.Contains(fd.Enum, s) {
			p.Default = s
		}
	case fd.Type == "boolean":
		p.Type, p.Default = "boolean", false
		if b, ok := fd.Default.(bool); ok {
			p.Default = b
		}
	case fd.Type == "number" || fd.Type == "integer":
		p.Type, p.Default = "number", 0
		if fd.Minimum != nil && *fd.Minimum > 0 {
			p.Default = *fd.Minimum
		}
		if fd.Default != nil {
			p.Default = fd.Default
		}
		if fd.Name == "limit" {
			// n8n's convention (and lint) for a page size.
			p.Default, p.Description = 50, "Max number of results to return"
		}
		to := map[string]any{}
		if fd.Minimum != nil {
			to["minValue"] = *fd.Minimum
		}
		if fd.Maximum != nil {
			to["maxValue"] = *fd.Maximum
		}
		if fd.Type == "integer" {
			to["numberPrecision"] = 0
		} else {
			to["numberPrecision"] = 2
		}
		p.TypeOptions = to
	case fd.Type == "array" || fd.Type == "object":
		p.Type, p.Default = "json", "[]"
		if fd.Type == "object" {
			p.Default = "{}"
		}
		// n8n keeps json parameters as text: send the parsed value.
		p.Routing.Send.Value = "={{ JSON.parse($value) }}"
	case colorPattern(fd.Pattern):
		p.Type, p.Default = "color", ""
		if s, ok := fd.Default.(string); ok {
			p.Default = s
		} else if s, ok := fd.Example.(string); ok {
			p.Default = s
		}
	default:
		p.Type, p.Default = "string", ""
		if s, ok := fd.Default.(string); ok {
			p.Default = s
		}
		if fd.MaxLength > 8192 {
			p.TypeOptions = map[string]any{"rows": 4}
		}
	}
	if fd.Example != nil && p.Type != "options" && p.Type != "color" {
		if b, err := json.Marshal(fd.Example); err == nil {
			p.Placeholder = strings.Trim(string(b), `"`)
		}
	}
	return p
}

// N8nCredentialType is an n8n ICredentialType: how n8n keeps and sends the
// token. It is derived from schemas/credential.statusflow.json.
type N8nCredentialType struct {
	Name         string          `json:"name"`
	DisplayName  string          `json:"displayName"`
	Properties   []N8nProperty   `json:"properties"`
	Authenticate N8nAuthenticate `json:"authenticate"`
	Test         N8nCredTest     `json:"test"`
}

// N8nAuthenticate is a generic IAuthenticate: the token header on every request.
type N8nAuthenticate struct {
	Type       string                       `json:"type"`
	Properties map[string]map[string]string `json:"properties"`
}

// N8nCredTest is the request n8n sends to test a credential.
type N8nCredTest struct {
	Request N8nRequest `json:"request"`
}

// RenderN8nCredential renders the credential every node names
// ([CredentialName]) from its schema: one property per schema property,
// secrets (writeOnly) as password fields.
func RenderN8nCredential(c *Catalog) (*N8nCredentialType, error) {
	v := c.Validator()
	doc := v.Doc(schemas.Credential)
	order, err := propertyOrder(v.Raw(schemas.Credential))
	if err != nil {
		return nil, err
	}
	props, _ := doc["properties"].(map[string]any)
	required := stringList(doc["required"])
	ct := &N8nCredentialType{Name: CredentialName, DisplayName: "Statusflow API",
		Authenticate: N8nAuthenticate{Type: "generic", Properties: map[string]map[string]string{"headers": {"token": "={{$credentials.token}}"}}},
		Test:         N8nCredTest{Request: N8nRequest{BaseURL: "={{$credentials.baseUrl}}", URL: "/api/instance/list"}}}
	for _, name := range order {
		p, _ := props[name].(map[string]any)
		prop := N8nProperty{DisplayName: label(name), Name: name, Type: "string", Default: "", Required: slices.Contains(required, name)}
		prop.Description, _ = p["description"].(string)
		if d, ok := p["default"].(string); ok {
			prop.Default = d
		}
		if w, _ := p["writeOnly"].(bool); w {
			prop.TypeOptions = map[string]any{"password": true}
		}
		ct.Properties = append(ct.Properties, prop)
	}
	return ct, nil
}
