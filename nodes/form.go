package nodes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// A form is an input schema read as the fields a user fills in. Both
// renderers work from it, so no platform rendering is written per node.
//
// The schema conventions it reads (schemas/status.publish.input.json):
//   - top-level `required` fields are always shown and required;
//   - a discriminator is the enum property tested by `allOf[].if`;
//   - each `allOf[].then` lists, in `properties`, the fields that apply to the
//     discriminator values of its `if` (a field no branch lists applies to
//     all), and in `required` the fields required for them;
//   - `description`, `enum`, `default` and `examples` come from the property,
//     or from a branch's copy of it.
type form struct {
	// Discriminator is the property the allOf branches test ("" when none),
	// Values its enum.
	Discriminator string
	Values        []string
	Fields        []formField
}

type formField struct {
	Name        string
	Type        string // JSON Schema type: string, boolean, number, integer, array, object
	ItemType    string // for arrays
	Description string
	Enum        []string
	Default     any
	Example     any
	Format      string
	MaxLength   int
	// Pattern is the property's pattern, or the first branch's that adds one.
	Pattern string
	// Minimum and Maximum bound a number (nil: unbounded).
	Minimum, Maximum *float64
	// Required: always required. RequiredFor: required for these discriminator values.
	Required    bool
	RequiredFor []string
	// AppliesTo lists the discriminator values the field is used with (nil: all).
	AppliesTo []string
	// BranchDescription is a branch's description of the field, by discriminator value.
	BranchDescription map[string]string
}

// Optional reports whether the field is never required.
func (f formField) Optional() bool { return !f.Required && len(f.RequiredFor) == 0 }

// OptionalFor lists the discriminator values for which the field is shown but
// not required (nil with a nil AppliesTo: all values).
func (f formField) OptionalFor(all []string) []string {
	if f.Required {
		return []string{}
	}
	applies := f.AppliesTo
	if applies == nil {
		applies = all
	}
	var out []string
	for _, v := range applies {
		if !slices.Contains(f.RequiredFor, v) {
			out = append(out, v)
		}
	}
	return out
}

// describeFor returns the field's description for a set of discriminator
// values: a branch's own, when every value in the set has the same one.
func (f formField) describeFor(vals []string) string {
	if len(vals) > 0 && f.BranchDescription != nil {
		d := f.BranchDescription[vals[0]]
		for _, v := range vals[1:] {
			if f.BranchDescription[v] != d {
				d = ""
			}
		}
		if d != "" {
			return d
		}
	}
	return f.Description
}

// readForm reads a schema document (its raw bytes, for property order).
func readForm(raw []byte) (*form, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	order, err := propertyOrder(raw)
	if err != nil {
		return nil, err
	}
	props, _ := doc["properties"].(map[string]any)
	required := stringList(doc["required"])
	f := &form{}

	type branch struct {
		values   []string
		required []string
		props    map[string]any
	}
	var branches []branch
	allOf, _ := doc["allOf"].([]any)
	for _, b := range allOf {
		bm, _ := b.(map[string]any)
		ifs, _ := bm["if"].(map[string]any)
		then, _ := bm["then"].(map[string]any)
		ifProps, _ := ifs["properties"].(map[string]any)
		if len(ifProps) != 1 || then == nil {
			continue
		}
		for name, cond := range ifProps {
			cm, _ := cond.(map[string]any)
			var vals []string
			if c, ok := cm["const"].(string); ok {
				vals = []string{c}
			} else {
				vals = stringList(cm["enum"])
			}
			if len(vals) == 0 {
				continue
			}
			if f.Discriminator == "" {
				f.Discriminator = name
			} else if f.Discriminator != name {
				return nil, fmt.Errorf("nodes: schema branches test both %s and %s", f.Discriminator, name)
			}
			tp, _ := then["properties"].(map[string]any)
			branches = append(branches, branch{values: vals, required: stringList(then["required"]), props: tp})
		}
	}
	if f.Discriminator != "" {
		dp, _ := props[f.Discriminator].(map[string]any)
		f.Values = stringList(dp["enum"])
	}

	for _, name := range order {
		p, _ := props[name].(map[string]any)
		fd := formField{Name: name, Required: slices.Contains(required, name)}
		fd.Type, _ = p["type"].(string)
		if items, ok := p["items"].(map[string]any); ok {
			fd.ItemType, _ = items["type"].(string)
		}
		fd.Description, _ = p["description"].(string)
		fd.Format, _ = p["format"].(string)
		if ml, ok := p["maxLength"].(float64); ok {
			fd.MaxLength = int(ml)
		}
		fd.Pattern, _ = p["pattern"].(string)
		if m, ok := p["minimum"].(float64); ok {
			fd.Minimum = &m
		}
		if m, ok := p["maximum"].(float64); ok {
			fd.Maximum = &m
		}
		fd.Enum = stringList(p["enum"])
		fd.Default = p["default"]
		if ex, ok := p["examples"].([]any); ok && len(ex) > 0 {
			fd.Example = ex[0]
		}
		for _, b := range branches {
			if slices.Contains(b.required, name) {
				fd.RequiredFor = appendNew(fd.RequiredFor, b.values...)
			}
			bp, listed := b.props[name]
			if !listed && !slices.Contains(b.required, name) {
				continue
			}
			fd.AppliesTo = appendNew(fd.AppliesTo, b.values...)
			if bpm, ok := bp.(map[string]any); ok {
				if len(fd.Enum) == 0 {
					fd.Enum = stringList(bpm["enum"])
				}
				if fd.Pattern == "" {
					fd.Pattern, _ = bpm["pattern"].(string)
				}
				if d, ok := bpm["description"].(string); ok {
					if fd.BranchDescription == nil {
						fd.BranchDescription = map[string]string{}
					}
					for _, v := range b.values {
						fd.BranchDescription[v] = d
					}
				}
			}
		}
		if name == f.Discriminator {
			fd.AppliesTo = nil
		}
		if fd.AppliesTo != nil {
			// Keep the discriminator's order.
			sorted := make([]string, 0, len(fd.AppliesTo))
			for _, v := range f.Values {
				if slices.Contains(fd.AppliesTo, v) {
					sorted = append(sorted, v)
				}
			}
			fd.AppliesTo = sorted
		}
		f.Fields = append(f.Fields, fd)
	}
	return f, nil
}

// propertyOrder returns the keys of the top-level "properties" object in document order.
func propertyOrder(raw []byte) ([]string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	props, ok := top["properties"]
	if !ok {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(props))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func appendNew(l []string, vals ...string) []string {
	for _, v := range vals {
		if !slices.Contains(l, v) {
			l = append(l, v)
		}
	}
	return l
}

// sentence makes a schema description a platform description: no markdown
// backticks, ending with a period (n8n's lint wants one).
func sentence(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "`", ""))
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}

// n8nDescription makes a schema description an n8n one, as n8n's lint wants
// it: no markdown backticks, a capital first letter, no final period on a
// single sentence and one on several.
func n8nDescription(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "`", ""))
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	s = strings.TrimSuffix(string(r), ".")
	for _, m := range n8nCasing {
		s = m.re.ReplaceAllString(s, m.to)
	}
	if strings.Contains(strings.ReplaceAll(s, "e.g.", ""), ". ") { // how the lint counts sentences
		return s + "."
	}
	return s
}

// n8nCasing is how n8n's lint wants ID, URL and JSON written in descriptions.
var n8nCasing = []struct {
	re *regexp.Regexp
	to string
}{
	{regexp.MustCompile(`\b[iI]d(s?)\b`), "ID$1"},
	{regexp.MustCompile(`\b[uU]rl(s?)\b`), "URL$1"},
	{regexp.MustCompile(`\b[jJ]son\b`), "JSON"},
}

// colorPattern tells a colour field (#RRGGBB) by its pattern.
func colorPattern(p string) bool { return strings.HasPrefix(p, "^#(") || strings.HasPrefix(p, "^#[") }

// label turns a property or enum name into a label: "mediaUrl" → "Media URL",
// "sans-serif" → "Sans Serif".
func label(name string) string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = nil
		}
	}
	for _, r := range name {
		switch {
		case r == '-' || r == '_' || r == '.' || r == ' ':
			flush()
		case r >= 'A' && r <= 'Z' && len(cur) > 0 && !(cur[len(cur)-1] >= 'A' && cur[len(cur)-1] <= 'Z'):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	for i, w := range words {
		switch strings.ToLower(w) {
		case "url", "id", "jid", "api", "mime", "qr":
			words[i] = strings.ToUpper(w)
		default:
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}
