// Package logging builds statusflow's log/slog loggers: JSON by default (text
// on a terminal), the trace id on every record logged with a context that
// carries one, and secrets redacted whatever the caller passes.
//
// Redaction works on attribute keys: any attribute whose key looks like a
// secret ([IsSecretKey]: token, authorization, secret, password, apiKey,
// cookie, …, in any case and with any separators) is logged as [Redacted].
// String values that look like statusflow tokens (sfa_…, sfi_…) and
// "Bearer …" credentials are redacted under any key. The only way through is
// [Reveal], reserved for the one-time account-token announcement of API.md §1.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/statusflow/statusflow/internal/tracing"
)

// Redacted replaces every secret value.
const Redacted = "[REDACTED]"

// TraceIDKey is the attribute that carries the trace id.
const TraceIDKey = "traceId"

// New returns statusflow's logger writing to w. format is "json", "text" or
// "" (json, or text when w is a terminal).
func New(format string, w io.Writer) *slog.Logger {
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, nil)
	} else {
		h = slog.NewJSONHandler(w, nil)
	}
	return slog.New(NewHandler(h))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Revealed is a value the redactor lets through even under a secret-looking
// key. Build it with [Reveal].
type Revealed struct{ value string }

// Reveal marks a secret that must be logged: the account token generated on
// first start, shown once so the operator can keep it (API.md §1). Nothing
// else may use it.
func Reveal(value string) Revealed { return Revealed{value: value} }

// String is the value, so other handlers print it too.
func (r Revealed) String() string { return r.value }

// Handler wraps another slog.Handler: it adds the trace id of the record's
// context and redacts secrets before the wrapped handler sees the record.
type Handler struct {
	inner    slog.Handler
	hasTrace bool // a traceId attribute was already added with WithAttrs
}

// NewHandler wraps h.
func NewHandler(h slog.Handler) *Handler { return &Handler{inner: h} }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, redactString(r.Message), r.PC)
	hasTrace := h.hasTrace
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == TraceIDKey {
			hasTrace = true
		}
		out.AddAttrs(redact(a))
		return true
	})
	if !hasTrace && ctx != nil {
		if tc, ok := tracing.From(ctx); ok && tc.TraceID != "" {
			out.AddAttrs(slog.String(TraceIDKey, tc.TraceID))
		}
	}
	return h.inner.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	has := h.hasTrace
	for i, a := range attrs {
		has = has || a.Key == TraceIDKey
		red[i] = redact(a)
	}
	return &Handler{inner: h.inner.WithAttrs(red), hasTrace: has}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), hasTrace: h.hasTrace}
}

var secretWords = []string{"token", "authorization", "secret", "password", "passwd", "apikey", "cookie", "credential", "privatekey", "signature"}

// IsSecretKey reports whether an attribute key names a secret.
func IsSecretKey(key string) bool {
	k := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func redact(a slog.Attr) slog.Attr {
	if r, ok := a.Value.Any().(Revealed); ok && a.Value.Kind() == slog.KindAny {
		return slog.String(a.Key, r.value)
	}
	if IsSecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, m := range g {
			out[i] = redact(m)
		}
		return slog.Group(a.Key, out...)
	case slog.KindString:
		return slog.String(a.Key, redactString(v.String()))
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, redactString(err.Error()))
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			if red := redactString(s.String()); red != s.String() {
				return slog.String(a.Key, red)
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// tokenLike matches statusflow tokens, bearer credentials and token query
// parameters inside free text (error messages, URLs).
var tokenLike = regexp.MustCompile(`sf[ai]_[A-Za-z0-9_-]{16,}|(?i:bearer\s+)[^\s"',;]+|(?i:([?&](?:token|access_token|api_key|apikey)=))[^&\s"']+`)

func redactString(s string) string {
	// Cheap checks first: most values hold none of these.
	if !strings.Contains(s, "sfa_") && !strings.Contains(s, "sfi_") && !strings.Contains(s, "EARER") &&
		!strings.Contains(s, "earer") && !strings.Contains(s, "=") {
		return s
	}
	return tokenLike.ReplaceAllStringFunc(s, func(m string) string {
		if i := strings.IndexByte(m, '='); i >= 0 && (m[0] == '?' || m[0] == '&') {
			return m[:i+1] + Redacted
		}
		if len(m) > 7 && strings.EqualFold(m[:7], "bearer ") {
			return m[:7] + Redacted
		}
		return Redacted
	})
}
