package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/statusflow/statusflow/internal/logging"
	"github.com/statusflow/statusflow/internal/tracing"
)

func TestHandler_Redacts(t *testing.T) {
	t.Parallel()
	const tok = "sfa_0123456789abcdefghijABCDEFGHIJ_-xyz"
	cases := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"SecretKey", func(l *slog.Logger) { l.Info("x", "token", "plain-secret-value") }},
		{"CamelCaseKey", func(l *slog.Logger) { l.Info("x", "accountToken", "plain-secret-value") }},
		{"HeaderKey", func(l *slog.Logger) { l.Info("x", "Authorization", "Bearer plain-secret-value") }},
		{"DashedKey", func(l *slog.Logger) { l.Info("x", "webhook-secret", "plain-secret-value") }},
		{"Password", func(l *slog.Logger) { l.Info("x", "db_password", "plain-secret-value") }},
		{"WithAttrs", func(l *slog.Logger) { l.With("token", "plain-secret-value").Info("x") }},
		{"InGroup", func(l *slog.Logger) { l.Info("x", slog.Group("req", "secret", "plain-secret-value")) }},
		{"TokenInValue", func(l *slog.Logger) { l.Info("x", "err", errors.New("bad token "+tok)) }},
		{"TokenInMessage", func(l *slog.Logger) { l.Info("got " + tok) }},
		{"BearerInValue", func(l *slog.Logger) { l.Info("x", "header", "Bearer plain-secret-value") }},
		{"QueryToken", func(l *slog.Logger) { l.Info("x", "url", "/api/x?a=1&token=plain-secret-value") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tc.log(logging.New("json", &buf))
			out := buf.String()
			if strings.Contains(out, "plain-secret-value") || strings.Contains(out, tok) {
				t.Fatalf("secret logged: %s", out)
			}
			if !strings.Contains(out, logging.Redacted) {
				t.Fatalf("no redaction marker: %s", out)
			}
		})
	}
}

func TestHandler_Reveal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logging.New("json", &buf).Warn("generated the account token", "accountToken", logging.Reveal("sfa_shown-once-value-0123456789"))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["accountToken"] != "sfa_shown-once-value-0123456789" {
		t.Fatalf("revealed value not logged: %s", buf.String())
	}
}

func TestHandler_TraceID(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*slog.Logger, *bytes.Buffer) {
		t.Helper()
		var buf bytes.Buffer
		return logging.New("json", &buf), &buf
	}
	tc := tracing.New()
	ctx := tracing.With(context.Background(), tc)

	t.Run("FromContext", func(t *testing.T) {
		t.Parallel()
		l, buf := setup(t)
		l.InfoContext(ctx, "hello", "a", 1)
		if !strings.Contains(buf.String(), `"traceId":"`+tc.TraceID+`"`) {
			t.Fatalf("no trace id: %s", buf.String())
		}
	})
	t.Run("NotTwice", func(t *testing.T) {
		t.Parallel()
		l, buf := setup(t)
		l.With("traceId", tc.TraceID).InfoContext(ctx, "hello")
		if n := strings.Count(buf.String(), "traceId"); n != 1 {
			t.Fatalf("traceId %d times: %s", n, buf.String())
		}
	})
	t.Run("NoContext", func(t *testing.T) {
		t.Parallel()
		l, buf := setup(t)
		l.Info("hello")
		if strings.Contains(buf.String(), "traceId") {
			t.Fatalf("unexpected trace id: %s", buf.String())
		}
	})
	t.Run("Text", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		logging.New("text", &buf).InfoContext(ctx, "hello", "password", "hunter2")
		if !strings.Contains(buf.String(), "traceId="+tc.TraceID) || strings.Contains(buf.String(), "hunter2") {
			t.Fatalf("text: %s", buf.String())
		}
	})
}

func TestIsSecretKey(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"token": true, "Token": true, "accountToken": true, "X-Api-Key": true, "authorization": true,
		"signingSecret": true, "webhook-signature": true, "instance": false, "traceId": false, "messageId": false, "err": false,
	} {
		if got := logging.IsSecretKey(key); got != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func BenchmarkHandler_Info(b *testing.B) {
	l := logging.New("json", io.Discard)
	ctx := tracing.With(context.Background(), tracing.New())
	b.ReportAllocs()
	for b.Loop() {
		l.InfoContext(ctx, "status published", "instance", "sales", "messageId", "3EB0A1B2C3D4E5F6A7B8C9", "type", "text")
	}
}

func BenchmarkBareJSONHandler_Info(b *testing.B) {
	l := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.InfoContext(ctx, "status published", "instance", "sales", "messageId", "3EB0A1B2C3D4E5F6A7B8C9", "type", "text", "traceId", "4bf92f3577b34da6a3ce929d0e0e4736")
	}
}
