// Package fastpath is the schemas package's quick answer to one question:
// is this body certainly valid? It is internal to schemas: the validator is
// the public engine, this only lets it skip work.
package fastpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// The fast path answers one question quickly: is this body certainly valid?
// It is compiled from the same schema documents, for the keywords our
// schemas use; a schema with any other keyword gets no fast path. When it
// says "not certainly valid" (an invalid body, or anything it does not
// handle exactly like the full validator: duplicate keys, invalid UTF-8,
// numbers beyond float64's exactness, non-integral integers), the full
// validator runs and produces the error and its message. So there is still
// one rule set and one set of messages; TestFastPath_AgreesWithValidator and
// FuzzFastPath check both paths agree.

// Checker reports whether a value is certainly valid.
type Checker func(v *fastjson.Value) bool

type fastCompiler struct {
	// inCond > 0 while compiling an `if`: there a "false" must be certain,
	// so only exact keywords are allowed.
	inCond int
	docs   map[string]any
	funcs  map[string]*Checker // by schema name, for $ref (and recursion)
}

// Compile compiles every schema it can; the result lacks the others.
func Compile(docs map[string]any) map[string]Checker {
	fc := &fastCompiler{docs: docs, funcs: map[string]*Checker{}}
	out := map[string]Checker{}
	for name := range docs {
		if c, err := fc.named(name); err == nil {
			out[name] = *c
		}
	}
	return out
}

func (fc *fastCompiler) named(name string) (*Checker, error) {
	if c, ok := fc.funcs[name]; ok {
		if *c == nil {
			return nil, fmt.Errorf("recursive $ref to %s", name)
		}
		return c, nil
	}
	slot := new(Checker)
	fc.funcs[name] = slot
	doc, ok := fc.docs[name]
	if !ok {
		delete(fc.funcs, name)
		return nil, fmt.Errorf("no schema %s", name)
	}
	c, err := fc.compile(doc)
	if err != nil {
		delete(fc.funcs, name)
		return nil, err
	}
	*slot = c
	return slot, nil
}

// annotations are keywords that never affect validity.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true, "default": true,
	"examples": true, "deprecated": true, "readOnly": true, "writeOnly": true, "x-errors": true,
}

func (fc *fastCompiler) compile(s any) (Checker, error) {
	switch t := s.(type) {
	case bool:
		return func(*fastjson.Value) bool { return t }, nil
	case map[string]any:
		var checks []Checker
		add := func(c Checker) { checks = append(checks, c) }
		for k, raw := range t {
			if annotations[k] {
				continue
			}
			switch k {
			case "type":
				typ, ok := raw.(string)
				if !ok {
					return nil, fmt.Errorf("type %v", raw)
				}
				if typ == "integer" && fc.inCond > 0 {
					return nil, fmt.Errorf("integer in an if: not exact")
				}
				c, err := typeCheck(typ)
				if err != nil {
					return nil, err
				}
				add(c)
			case "enum", "const":
				vals, ok := raw.([]any)
				if k == "const" {
					vals, ok = []any{raw}, true
				}
				if !ok {
					return nil, fmt.Errorf("enum %v", raw)
				}
				set := map[string]bool{}
				for _, e := range vals {
					s, ok := e.(string)
					if !ok {
						return nil, fmt.Errorf("non-string enum %v", e)
					}
					set[s] = true
				}
				add(func(v *fastjson.Value) bool {
					return v.Type() == fastjson.TypeString && set[string(v.GetStringBytes())]
				})
			case "required":
				names, ok := raw.([]any)
				if !ok {
					return nil, fmt.Errorf("required %v", raw)
				}
				req := make([]string, 0, len(names))
				for _, n := range names {
					req = append(req, n.(string))
				}
				add(func(v *fastjson.Value) bool {
					if v.Type() != fastjson.TypeObject {
						return true
					}
					o := v.GetObject()
					for _, n := range req {
						if o.Get(n) == nil {
							return false
						}
					}
					return true
				})
			case "properties", "additionalProperties":
				// Compiled together below.
			case "allOf":
				subs, ok := raw.([]any)
				if !ok {
					return nil, fmt.Errorf("allOf %v", raw)
				}
				for _, sub := range subs {
					c, err := fc.compile(sub)
					if err != nil {
						return nil, err
					}
					add(c)
				}
			case "if":
				fc.inCond++
				cond, err := fc.compile(raw)
				fc.inCond--
				if err != nil {
					return nil, err
				}
				then, els := Checker(func(*fastjson.Value) bool { return true }), Checker(func(*fastjson.Value) bool { return true })
				if x, ok := t["then"]; ok {
					if then, err = fc.compile(x); err != nil {
						return nil, err
					}
				}
				if x, ok := t["else"]; ok {
					if els, err = fc.compile(x); err != nil {
						return nil, err
					}
				}
				add(func(v *fastjson.Value) bool {
					if cond(v) {
						return then(v)
					}
					// Conditions hold only exact keywords: false is certain.
					return els(v)
				})
			case "then", "else":
				// With if.
			case "pattern":
				p, ok := raw.(string)
				if !ok {
					return nil, fmt.Errorf("pattern %v", raw)
				}
				re, err := regexp.Compile(p)
				if err != nil {
					return nil, err
				}
				add(func(v *fastjson.Value) bool {
					return v.Type() != fastjson.TypeString || re.Match(v.GetStringBytes())
				})
			case "minLength", "maxLength":
				n, ok := raw.(float64)
				if !ok {
					return nil, fmt.Errorf("%s %v", k, raw)
				}
				limit, isMin := int(n), k == "minLength"
				add(func(v *fastjson.Value) bool {
					if v.Type() != fastjson.TypeString {
						return true
					}
					l := utf8.RuneCount(v.GetStringBytes())
					if isMin {
						return l >= limit
					}
					return l <= limit
				})
			case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
				n, ok := raw.(float64)
				if !ok {
					return nil, fmt.Errorf("%s %v", k, raw)
				}
				kw := k
				add(func(v *fastjson.Value) bool {
					if v.Type() != fastjson.TypeNumber {
						return true
					}
					f := v.GetFloat64()
					switch kw {
					case "minimum":
						return f >= n
					case "maximum":
						return f <= n
					case "exclusiveMinimum":
						return f > n
					}
					return f < n
				})
			case "minItems", "maxItems":
				n, ok := raw.(float64)
				if !ok {
					return nil, fmt.Errorf("%s %v", k, raw)
				}
				limit, isMin := int(n), k == "minItems"
				add(func(v *fastjson.Value) bool {
					if v.Type() != fastjson.TypeArray {
						return true
					}
					l := len(v.GetArray())
					if isMin {
						return l >= limit
					}
					return l <= limit
				})
			case "items":
				item, err := fc.compile(raw)
				if err != nil {
					return nil, err
				}
				add(func(v *fastjson.Value) bool {
					if v.Type() != fastjson.TypeArray {
						return true
					}
					for _, x := range v.GetArray() {
						if !item(x) {
							return false
						}
					}
					return true
				})
			case "$ref":
				ref, ok := raw.(string)
				if !ok || !bytes.HasSuffix([]byte(ref), []byte(".json")) || bytes.ContainsAny([]byte(ref), "/#") {
					return nil, fmt.Errorf("$ref %v", raw)
				}
				slot, err := fc.named(ref[:len(ref)-len(".json")])
				if err != nil {
					return nil, err
				}
				add(func(v *fastjson.Value) bool { return (*slot)(v) })
			default:
				return nil, fmt.Errorf("keyword %s has no fast path", k)
			}
		}
		if c, err := fc.object(t); err != nil {
			return nil, err
		} else if c != nil {
			add(c)
		}
		return func(v *fastjson.Value) bool {
			for _, c := range checks {
				if !c(v) {
					return false
				}
			}
			return true
		}, nil
	}
	return nil, fmt.Errorf("schema %T", s)
}

// object compiles properties and additionalProperties (nil when neither is set).
func (fc *fastCompiler) object(t map[string]any) (Checker, error) {
	props, hasProps := t["properties"].(map[string]any)
	addl, hasAddl := t["additionalProperties"]
	if !hasProps && !hasAddl {
		return nil, nil
	}
	type prop struct {
		name  string
		check Checker
	}
	var list []prop
	for n, s := range props {
		c, err := fc.compile(s)
		if err != nil {
			return nil, err
		}
		list = append(list, prop{n, c})
	}
	if !hasAddl {
		// Only the listed properties matter: look each up.
		return func(v *fastjson.Value) bool {
			if v.Type() != fastjson.TypeObject {
				return true
			}
			o := v.GetObject()
			for _, p := range list {
				if x := o.Get(p.name); x != nil && !p.check(x) {
					return false
				}
			}
			return true
		}, nil
	}
	rest, err := fc.compile(addl)
	if err != nil {
		return nil, err
	}
	return func(v *fastjson.Value) bool {
		if v.Type() != fastjson.TypeObject {
			return true
		}
		ok := true
		v.GetObject().Visit(func(key []byte, x *fastjson.Value) {
			if !ok {
				return
			}
			for _, p := range list {
				if len(p.name) == len(key) && p.name == string(key) {
					ok = p.check(x)
					return
				}
			}
			ok = rest(x)
		})
		return ok
	}, nil
}

func typeCheck(typ string) (Checker, error) {
	switch typ {
	case "object":
		return func(v *fastjson.Value) bool { return v.Type() == fastjson.TypeObject }, nil
	case "array":
		return func(v *fastjson.Value) bool { return v.Type() == fastjson.TypeArray }, nil
	case "string":
		return func(v *fastjson.Value) bool { return v.Type() == fastjson.TypeString }, nil
	case "boolean":
		return func(v *fastjson.Value) bool { t := v.Type(); return t == fastjson.TypeTrue || t == fastjson.TypeFalse }, nil
	case "null":
		return func(v *fastjson.Value) bool { return v.Type() == fastjson.TypeNull }, nil
	case "number":
		return func(v *fastjson.Value) bool { return v.Type() == fastjson.TypeNumber }, nil
	case "integer":
		// Only plain digits are certainly integers; 1.0 and 1e2 go the full way.
		return func(v *fastjson.Value) bool {
			if v.Type() != fastjson.TypeNumber {
				return false
			}
			var buf [32]byte
			_, err := strconv.ParseInt(string(v.MarshalTo(buf[:0])), 10, 64)
			return err == nil
		}, nil
	}
	return nil, fmt.Errorf("type %s", typ)
}

// exact reports whether fastjson reads the document exactly as the full
// validator does: no duplicate keys (encoding/json keeps the last, fastjson
// the first), valid UTF-8 in strings and keys, and numbers float64 holds
// exactly enough (at most 15 significant digits).
func exact(v *fastjson.Value) bool {
	switch v.Type() {
	case fastjson.TypeObject:
		ok := true
		o := v.GetObject()
		if o.Len() > 64 {
			return false
		}
		var seen [64][]byte
		n := 0
		o.Visit(func(key []byte, x *fastjson.Value) {
			if !ok {
				return
			}
			if !utf8.Valid(key) {
				ok = false
				return
			}
			for _, k := range seen[:n] {
				if bytes.Equal(k, key) {
					ok = false
					return
				}
			}
			seen[n] = key
			n++
			ok = exact(x)
		})
		return ok
	case fastjson.TypeArray:
		for _, x := range v.GetArray() {
			if !exact(x) {
				return false
			}
		}
	case fastjson.TypeString:
		return utf8.Valid(v.GetStringBytes())
	case fastjson.TypeNumber:
		digits := 0
		var buf [32]byte
		for _, c := range v.MarshalTo(buf[:0]) {
			if c == 'e' || c == 'E' {
				break
			}
			if c >= '0' && c <= '9' {
				digits++
			}
		}
		return digits <= 15
	}
	return true
}

var parsers fastjson.ParserPool

// Valid reports whether body is certainly valid for c; false means "let the
// full validator decide".
func Valid(c Checker, body []byte) bool {
	if !json.Valid(body) {
		return false
	}
	p := parsers.Get()
	defer parsers.Put(p)
	doc, err := p.ParseBytes(body)
	if err != nil {
		return false
	}
	return exact(doc) && c(doc)
}
