// Package auth checks statusflow's tokens (API.md §2) for every front door:
// HTTP headers, NATS trigger headers and the execute path share it.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/logging"
	"github.com/statusflow/statusflow/internal/store"
)

// Errors, with the literal messages of API.md §2; the front doors map their
// codes (the server's HTTP table, the bus's DLQ status).
var (
	// ErrMissingToken: no token was sent.
	ErrMissingToken = errcode.New(errcode.CodeTokenMissing, "Missing token")
	// ErrInvalidToken: the token is unknown, or an instance token was used
	// where only the account token is accepted.
	ErrInvalidToken = errcode.New(errcode.CodeTokenInvalid, "Invalid token")
	// ErrWrongInstance: an instance token was used on another instance.
	ErrWrongInstance = errcode.New(errcode.CodeWrongInstance, "Instance token does not match this instance")
)

// Principal is who a token belongs to.
type Principal struct {
	// Account is true for the TokenAccount.
	Account bool
	// Instance is the instance of a TokenInstance.
	Instance string
}

// CanUse reports whether the principal may act on the instance.
func (p Principal) CanUse(instance string) error {
	if p.Account || p.Instance == instance {
		return nil
	}
	return ErrWrongInstance
}

// HashToken is how tokens are stored: SHA-256, hex. Tokens are 256-bit random
// values, so a fast hash is enough; there is nothing to brute-force.
func HashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// NewToken returns a fresh random token with a readable prefix
// ("sfa_" for the account, "sfi_" for instances).
func NewToken(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

type tokenStore interface {
	InstanceGetByTokenHash(ctx context.Context, hash string) (*store.Instance, error)
}

// Authenticator resolves tokens.
type Authenticator struct {
	accountHash string
	store       tokenStore
	now         func() time.Time

	mu    sync.Mutex
	known map[string]knownToken // instance token hash → instance
	// gen counts Forget calls: a lookup that started before one never
	// caches its answer, so a request racing a delete cannot put the
	// deleted instance's token back.
	gen uint64
}

type knownToken struct {
	instance string
	until    time.Time
}

// knownTTL is how long a resolved instance token is trusted without asking
// the database again. Deleting an instance through this process forgets its
// token at once ([Authenticator.Forget], called by the delete handler); a
// replica that shares the database and is not told stops accepting it
// within knownTTL.
const knownTTL = 10 * time.Second

// New returns an authenticator for the account token's hash.
func New(accountHash string, st tokenStore) *Authenticator {
	return &Authenticator{accountHash: accountHash, store: st, now: time.Now, known: map[string]knownToken{}}
}

// Forget drops cached tokens of an instance (call it when the instance is
// deleted): its token stops working at once, also on a new instance created
// later with the same name.
func (a *Authenticator) Forget(instance string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	for h, k := range a.known {
		if k.instance == instance {
			delete(a.known, h)
		}
	}
}

// AccountHash is the TokenAccount's hash.
func (a *Authenticator) AccountHash() string { return a.accountHash }

// Known resolves a token without a database lookup: the account token, or
// an instance token resolved recently. ok is false when only
// [Authenticator.Authenticate] can tell.
func (a *Authenticator) Known(tok string) (p Principal, ok bool) {
	if tok == "" {
		return Principal{}, false
	}
	h := HashToken(tok)
	if subtle.ConstantTimeCompare([]byte(h), []byte(a.accountHash)) == 1 {
		return Principal{Account: true}, true
	}
	now := a.now()
	a.mu.Lock()
	k, ok := a.known[h]
	a.mu.Unlock()
	if ok && now.Before(k.until) {
		return Principal{Instance: k.instance}, true
	}
	return Principal{}, false
}

// Authenticate resolves a token: the account's hash is compared in constant
// time; instance tokens are found by their hash (the lookup key is the hash,
// never the token) and the stored hash compared in constant time again.
func (a *Authenticator) Authenticate(ctx context.Context, tok string) (Principal, error) {
	if tok == "" {
		return Principal{}, ErrMissingToken
	}
	h := HashToken(tok)
	if subtle.ConstantTimeCompare([]byte(h), []byte(a.accountHash)) == 1 {
		return Principal{Account: true}, nil
	}
	now := a.now()
	a.mu.Lock()
	k, ok := a.known[h]
	gen := a.gen
	a.mu.Unlock()
	if ok && now.Before(k.until) {
		return Principal{Instance: k.instance}, nil
	}
	in, err := a.store.InstanceGetByTokenHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrInvalidToken
	}
	if err != nil {
		return Principal{}, err
	}
	if subtle.ConstantTimeCompare([]byte(in.TokenHash), []byte(h)) != 1 {
		return Principal{}, ErrInvalidToken
	}
	a.mu.Lock()
	if len(a.known) > 10000 {
		a.known = map[string]knownToken{}
	}
	if a.gen == gen {
		a.known[h] = knownToken{instance: in.Name, until: now.Add(knownTTL)}
	}
	a.mu.Unlock()
	return Principal{Instance: in.Name}, nil
}

// settingAccountTokenHash is where the generated TokenAccount's hash is kept.
const settingAccountTokenHash = "account_token_sha256"

type settingsStore interface {
	SettingGet(ctx context.Context, key string) (string, error)
	SettingInsert(ctx context.Context, key, value string) error
}

// AccountTokenHash returns the hash of the TokenAccount. A configured token
// wins. Otherwise the first start generates one, logs it once (the only time
// it is ever shown, as API.md §1 asks) and keeps only its hash; later starts
// reuse the hash.
func AccountTokenHash(ctx context.Context, st settingsStore, configured string, log *slog.Logger) (string, error) {
	if configured != "" {
		return HashToken(configured), nil
	}
	if h, err := st.SettingGet(ctx, settingAccountTokenHash); err == nil {
		return h, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	tok := NewToken("sfa_")
	if err := st.SettingInsert(ctx, settingAccountTokenHash, HashToken(tok)); errors.Is(err, store.ErrConflict) {
		return st.SettingGet(ctx, settingAccountTokenHash) // another process won the race
	} else if err != nil {
		return "", err
	}
	// The one secret ever logged: logging.Reveal lets it past the redactor.
	log.Warn("generated the account token; it is shown only this once, keep it (or set STATUSFLOW_ACCOUNT_TOKEN)", "accountToken", logging.Reveal(tok))
	return HashToken(tok), nil
}
