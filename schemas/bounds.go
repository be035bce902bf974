package schemas

import (
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/statusflow/statusflow/internal/errcode"
)

// The bounds check runs before any other work on a body, on every front
// door: one pass over the bytes that stops at the first string, array or
// object past its limit, or at a NUL character or invalid UTF-8. The full
// validator then only ever sees documents of the size a valid one can have,
// so an invalid body costs about what a valid one does (a 1 MB body with a
// 480 000-item waveform took 6 s of validator time before this check; it now
// stops after 65 items).
//
// The limits come from the same schema documents (maxItems, maxLength, the
// number of declared properties of a closed object, with their x-errors
// messages); where a schema sets none, the generic limits below apply.
const (
	// MaxDepth is the deepest nesting of arrays and objects accepted.
	MaxDepth = 32
	// maxArrayItems is the longest array accepted where a schema sets no maxItems.
	maxArrayItems = 1024
	// maxObjectMembers is the most members of an object whose schema leaves it open.
	maxObjectMembers = 256
	// maxStringChars is the longest string (in characters) where a schema sets no maxLength.
	maxStringChars = 65536
	// maxKeyChars is the longest object key.
	maxKeyChars = 256
	// maxNumberBytes is the longest number literal; longer ones only cost big-number arithmetic.
	maxNumberBytes = 64
)

// limits are the bounds of one place of a document.
type limits struct {
	maxItems, maxLength, maxMembers int
	itemsMsg, lengthMsg             string
	props                           map[string]*limits
	items                           *limits
}

var generic = &limits{maxItems: maxArrayItems, maxLength: maxStringChars, maxMembers: maxObjectMembers}

func (l *limits) child(key string) *limits {
	if l != nil && l.props != nil {
		if c, ok := l.props[key]; ok {
			return c
		}
	}
	return generic
}

func (l *limits) elem() *limits {
	if l != nil && l.items != nil {
		return l.items
	}
	return generic
}

// compileLimits reads the unconditional limits of a schema: its own
// keywords, its properties and items, and what a $ref or allOf member adds.
// Limits under if/then/else only tighten a case, so the unconditional ones
// (always at least as loose) are the bound.
func compileLimits(docs map[string]any, s any, seen map[string]bool) *limits {
	m, ok := s.(map[string]any)
	if !ok {
		return generic
	}
	l := &limits{maxItems: maxArrayItems, maxLength: maxStringChars, maxMembers: maxObjectMembers}
	msg := func(keyword string) string {
		xe, _ := m["x-errors"].(map[string]any)
		r, _ := xe[keyword].(map[string]any)
		s, _ := r["message"].(string)
		return s
	}
	if n, ok := m["maxItems"].(float64); ok && int(n) < l.maxItems {
		l.maxItems, l.itemsMsg = int(n), msg("maxItems")
	}
	if n, ok := m["maxLength"].(float64); ok && int(n) < l.maxLength {
		l.maxLength, l.lengthMsg = int(n), msg("maxLength")
	}
	if props, ok := m["properties"].(map[string]any); ok {
		l.props = map[string]*limits{}
		for k, p := range props {
			l.props[k] = compileLimits(docs, p, seen)
		}
		if ap, ok := m["additionalProperties"].(bool); ok && !ap && m["patternProperties"] == nil && len(props) < l.maxMembers {
			l.maxMembers = len(props)
		}
	}
	if it, ok := m["items"]; ok {
		l.items = compileLimits(docs, it, seen)
	}
	if ref, ok := m["$ref"].(string); ok {
		name := strings.TrimSuffix(path.Base(strings.TrimPrefix(ref, Base)), ".json")
		if d, ok := docs[name]; ok && !seen[name] {
			seen[name] = true
			r := compileLimits(docs, d, seen)
			delete(seen, name)
			l = r // our schemas put nothing beside a $ref but annotations
		}
	}
	return l
}

// Check runs the bounds check of the named schema on a body (see the top of
// bounds.go). It returns a *errcode.Error with [errcode.CodeInvalid] for a body
// past a bound, nil otherwise; syntax errors are left to the parser.
func (v *Validator) Check(name string, body []byte) error {
	return checkBounds(v.limits[name], body)
}

func checkBounds(l *limits, body []byte) error {
	if l == nil {
		l = generic
	}
	s := &scanner{b: body}
	s.ws()
	err := s.value(l, 0)
	if err == errSyntax {
		return nil
	}
	return err
}

// errSyntax stops the scan: the JSON parser reports syntax errors in its words.
var errSyntax = &errcode.Error{Code: errcode.CodeInvalid, Message: "syntax"}

type scanner struct {
	b    []byte
	i    int
	path []string
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) where() string {
	if len(s.path) == 0 {
		return "body"
	}
	return strings.Join(s.path, "/")
}

func (s *scanner) fail(custom, format string, args ...any) error {
	if custom != "" {
		return errcode.Errorf(errcode.CodeInvalid, "%s", custom)
	}
	return errcode.Errorf(errcode.CodeInvalid, "Invalid request body: "+s.where()+": "+format, args...)
}

func (s *scanner) value(l *limits, depth int) error {
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch c := s.b[s.i]; {
	case c == '{':
		if depth >= MaxDepth {
			return errcode.Errorf(errcode.CodeInvalid, "Invalid request body: nested deeper than %d levels", MaxDepth)
		}
		return s.object(l, depth+1)
	case c == '[':
		if depth >= MaxDepth {
			return errcode.Errorf(errcode.CodeInvalid, "Invalid request body: nested deeper than %d levels", MaxDepth)
		}
		return s.array(l, depth+1)
	case c == '"':
		_, err := s.str(l.maxLength, l.lengthMsg, "length must be <= %d, but got more")
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.i
		for s.i < len(s.b) && strings.IndexByte("+-.0123456789eE", s.b[s.i]) >= 0 {
			s.i++
		}
		if s.i-start > maxNumberBytes {
			return s.fail("", "number longer than %d characters", maxNumberBytes)
		}
		return nil
	default:
		for s.i < len(s.b) && s.b[s.i] >= 'a' && s.b[s.i] <= 'z' {
			s.i++
		}
		return nil
	}
}

func (s *scanner) object(l *limits, depth int) error {
	s.i++ // {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for n := 1; ; n++ {
		if n > l.maxMembers {
			if l.maxMembers < maxObjectMembers {
				return s.fail("", "at most %d fields allowed, but found more", l.maxMembers)
			}
			return s.fail("", "at most %d fields allowed", l.maxMembers)
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errSyntax
		}
		key, err := s.str(maxKeyChars, "", "field name longer than %d characters")
		if err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errSyntax
		}
		s.i++
		s.ws()
		s.path = append(s.path, key)
		if err := s.value(l.child(key), depth); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.ws()
		if s.i >= len(s.b) {
			return errSyntax
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

func (s *scanner) array(l *limits, depth int) error {
	s.i++ // [
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	el := l.elem()
	for n := 0; ; n++ {
		if n >= l.maxItems {
			return s.fail(l.itemsMsg, "maximum %d items required, but found more", l.maxItems)
		}
		s.ws()
		s.path = append(s.path, strconv.Itoa(n))
		if err := s.value(el, depth); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.ws()
		if s.i >= len(s.b) {
			return errSyntax
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// str scans a string literal, counting characters the way maxLength does (a
// \u escape of a surrogate pair is one character) and refusing \u0000. It
// returns the raw key text (escapes left as written; used for paths and the
// limits lookup, where our field names never need escapes).
func (s *scanner) str(max int, custom, format string) (string, error) {
	s.i++ // opening quote
	start := s.i
	n := 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := string(s.b[start:s.i])
			s.i++
			return raw, nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return "", errSyntax
			}
			if s.b[s.i+1] == 'u' {
				if s.i+6 > len(s.b) {
					return "", errSyntax
				}
				u, err := strconv.ParseUint(string(s.b[s.i+2:s.i+6]), 16, 16)
				if err != nil {
					return "", errSyntax
				}
				if u == 0 {
					return "", s.fail("", "NUL characters (\\u0000) are not allowed")
				}
				if u < 0xDC00 || u > 0xDFFF { // a low surrogate completes the pair already counted
					n++
				}
				s.i += 6
			} else {
				n++
				s.i += 2
			}
		case c < 0x20:
			return "", errSyntax
		case c < 0x80:
			n++
			s.i++
		default:
			// UTF-8 is checked here, inside strings, as the scan goes (a
			// non-ASCII byte outside a string is a syntax error anyway), so a
			// body refused early is never read to its end.
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size <= 1 {
				return "", errcode.Errorf(errcode.CodeInvalid, "Invalid request body: not valid UTF-8")
			}
			n++
			s.i += size
		}
		if n > max {
			return "", s.fail(custom, format, max)
		}
	}
	return "", errSyntax
}
