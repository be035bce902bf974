package server

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// storedHeaders are the request headers whose values end up in the
// database, events or logs (idempotency keys, trace context, inbound hook
// message ids). They must be valid UTF-8; every header must be free of NUL.
var storedHeaders = []string{"Idempotency-Key", "traceparent", "tracestate", "webhook-id", "webhook-timestamp", "webhook-signature", "Prefer"}

// hygiene refuses, before routing, any request whose path (raw or decoded),
// query parameter names or values, or stored headers contain a NUL byte or
// invalid UTF-8: no such string ever reaches a handler, the database (where
// PostgreSQL refuses them with an error) or a log. Bodies get the same check
// from the schema validator (schemas.Validator.Check).
func hygiene(c *fiber.Ctx) error {
	uri := c.Request().URI()
	if bad(uri.PathOriginal()) || bad(uri.Path()) {
		return newError(fiber.StatusBadRequest, "Invalid request: the path contains a NUL byte or invalid UTF-8")
	}
	var where string
	uri.QueryArgs().VisitAll(func(k, v []byte) {
		if where == "" && (bad(k) || bad(v)) {
			where = string(k)
		}
	})
	if where != "" {
		if !utf8.ValidString(where) || bytes.IndexByte([]byte(where), 0) >= 0 {
			where = "a query parameter"
		} else {
			where = "query parameter " + strconv.Quote(where)
		}
		return newError(fiber.StatusBadRequest, "Invalid request: "+where+" contains a NUL byte or invalid UTF-8")
	}
	// Fiber's Body() inflates gzip, deflate and brotli bodies in full, with
	// no bound: 1 MiB of gzip becomes 1 GiB in memory. No client of this API
	// needs compressed request bodies.
	if ce := c.Request().Header.Peek(fiber.HeaderContentEncoding); len(ce) > 0 && !bytes.EqualFold(bytes.TrimSpace(ce), []byte("identity")) {
		return newError(fiber.StatusUnsupportedMediaType, "Content-Encoding is not supported: send the body uncompressed")
	}
	for _, h := range storedHeaders {
		if bad(c.Request().Header.Peek(h)) {
			return newError(fiber.StatusBadRequest, "Invalid request: header "+h+" contains a NUL byte or invalid UTF-8")
		}
	}
	return c.Next()
}

func bad(b []byte) bool { return bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(b) }

// smallBody is the body limit of routes whose payload is a few short
// fields (instance creation, delete, inbound hook creation): 4 KiB holds
// the longest valid one several times over.
const smallBody = 4 << 10

// bodyLimit refuses a body larger than max with 413 before any other work.
func bodyLimit(max int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if c.Request().Header.ContentLength() > max || len(c.Body()) > max {
			return newError(fiber.StatusRequestEntityTooLarge, "Request body too large: this endpoint takes at most "+strconv.Itoa(max)+" bytes")
		}
		return c.Next()
	}
}

// queryLimit reads an optional `limit` query parameter: def when absent, a
// 400 when it is not a whole number from 1 to max (never silently ignored).
func queryLimit(c *fiber.Ctx, def, max int) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, newError(fiber.StatusBadRequest, "Invalid limit: use a number from 1 to "+strconv.Itoa(max))
	}
	return n, nil
}
