package server

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/console"
)

// registerConsole serves the console at /console/ (GET / redirects there)
// and the API reference at /docs/, from files embedded in the binary.
func (s *Server) registerConsole() {
	files, err := console.Files()
	if err != nil {
		panic("console: " + err.Error()) // embedded at build time: cannot fail at run time
	}
	serve := func(c *fiber.Ctx) error {
		p := c.Path()
		switch p {
		case "/console", "/console/":
			p = "/console/index.html"
		case "/docs", "/docs/":
			p = "/docs/index.html"
		}
		f := files[p]
		if f == nil {
			return fiber.ErrNotFound
		}
		c.Set(fiber.HeaderContentType, f.ContentType)
		c.Set("X-Content-Type-Options", "nosniff")
		// index.html is revalidated (it names the other files); the rest is
		// cached for an hour: a new binary serves new files under the same
		// names, so no longer.
		if strings.HasSuffix(p, ".html") {
			c.Set(fiber.HeaderCacheControl, "no-cache")
			c.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")
			c.Set("Referrer-Policy", "no-referrer")
		} else {
			c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
		}
		c.Vary(fiber.HeaderAcceptEncoding)
		if strings.Contains(c.Get(fiber.HeaderAcceptEncoding), "gzip") {
			c.Set(fiber.HeaderContentEncoding, "gzip")
			return c.Send(f.Gzip)
		}
		return c.Send(f.Plain)
	}
	// GET / redirects to the console. It stays out of the route table: the
	// metrics tell unmatched requests by their route not being in it, and
	// Fiber reports "/" as the route of every unmatched request.
	s.app.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/console/", fiber.StatusFound) })
	s.Handle(Route{Method: "GET", Path: "/console/*", Auth: AuthNone, Tag: "console", Summary: "The web console (single page, embedded; sign in with a token). GET / redirects here.",
		Responses: Responses{200: ""}, ContentType: "*/*"}, serve)
	s.Handle(Route{Method: "GET", Path: "/docs/*", Auth: AuthNone, Tag: "console", Summary: "Interactive API reference of /openapi.json (Swagger UI, embedded)",
		Responses: Responses{200: ""}, ContentType: "*/*"}, serve)
}
