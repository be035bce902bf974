package server

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/auth"
)

// Auth says which tokens a route accepts.
type Auth int

const (
	// AuthNone: no token needed (node descriptors, schemas, health).
	AuthNone Auth = iota
	// AuthAccount: the TokenAccount only; a TokenInstance gets 401 Invalid token.
	AuthAccount
	// AuthInstance: the TokenAccount, or the TokenInstance of the :instance in the path.
	AuthInstance
	// AuthAny: the TokenAccount or any TokenInstance (the handler scopes what it shows).
	AuthAny
)

const localPrincipal = "principal"

// PrincipalOf returns the authenticated caller of a request.
func PrincipalOf(c *fiber.Ctx) auth.Principal {
	p, _ := c.Locals(localPrincipal).(auth.Principal)
	return p
}

// tokenFrom reads the token from the `token` header, `Authorization: Bearer`,
// or `?token=`, in that order.
func tokenFrom(c *fiber.Ctx) string {
	if t := c.Get("token"); t != "" {
		return strings.TrimSpace(t)
	}
	if a := c.Get(fiber.HeaderAuthorization); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return c.Query("token")
}

// requireAuth returns the middleware for a route's Auth.
func (s *Server) requireAuth(a Auth) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if a == AuthNone {
			return c.Next()
		}
		tok := tokenFrom(c)
		p, ok := s.auth.Known(tok)
		if !ok {
			// Guessing tokens costs a database lookup each: an address
			// whose attempts keep failing is held off before the lookup.
			failKey := "fail:" + c.IP()
			if tok != "" && exhausted(s.failures, failKey) {
				_, _, reset := s.failures.Take(failKey)
				return tooMany(c, reset)
			}
			var err error
			if p, err = s.auth.Authenticate(c.UserContext(), tok); err != nil {
				if errors.Is(err, auth.ErrInvalidToken) {
					s.failures.Take(failKey)
				}
				return err
			}
		}
		switch a {
		case AuthAccount:
			if !p.Account {
				return auth.ErrInvalidToken
			}
		case AuthInstance:
			if err := p.CanUse(c.Params("instance")); err != nil {
				return err
			}
		}
		c.Locals(localPrincipal, p)
		return c.Next()
	}
}
