package status

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/store"
)

// idempotencyStore is what [Idempotent] needs from the store.
type idempotencyStore interface {
	IdempotencyClaim(ctx context.Context, p *store.IdempotencyClaimParams) (bool, *store.IdempotencyRecord, error)
	IdempotencyGet(ctx context.Context, instance, key string) (*store.IdempotencyRecord, error)
	IdempotencyComplete(ctx context.Context, instance, key, claimID string, result []byte, expiresAt time.Time) error
	IdempotencyRelease(ctx context.Context, instance, key, claimID string) error
}

// Idempotency defaults.
const (
	// IdempotencyWindowDefault is how long a key keeps its first result.
	IdempotencyWindowDefault = 24 * time.Hour
	// IdempotencyLeaseDefault is how long a running first request holds its
	// key before another may take it over (the first one's process died).
	IdempotencyLeaseDefault = 10 * time.Minute
	// IdempotencyWaitDefault is how long a duplicate waits for the first
	// request's result before answering [errcode.ErrIdempotencyInProgress].
	IdempotencyWaitDefault = 60 * time.Second
	// IdempotencyPollDefault is how often a waiting duplicate looks again.
	IdempotencyPollDefault = 25 * time.Millisecond
)

// IdempotencyConfig is the policy of [Idempotent].
type IdempotencyConfig struct {
	// Window is how long a key keeps its first result. Defaults to 24 h.
	Window time.Duration
	// Lease is how long a pending claim holds a key. Defaults to 10 min.
	Lease time.Duration
	// Wait bounds how long a duplicate waits for the first result. Defaults to 60 s.
	Wait time.Duration
	// Poll is the interval between looks while waiting. Defaults to 25 ms.
	Poll time.Duration
}

// WithDefaults returns a copy with zero fields set to their defaults.
func (c IdempotencyConfig) WithDefaults() IdempotencyConfig {
	if c.Window <= 0 {
		c.Window = IdempotencyWindowDefault
	}
	if c.Lease <= 0 {
		c.Lease = IdempotencyLeaseDefault
	}
	if c.Wait <= 0 {
		c.Wait = IdempotencyWaitDefault
	}
	if c.Poll <= 0 {
		c.Poll = IdempotencyPollDefault
	}
	return c
}

// Idempotent implements [Idempotency] on the database, so it holds across
// processes sharing one database:
//
//   - the first request claims the key with an INSERT only one can win,
//     runs, and stores its result for the window;
//   - a duplicate with the same request hash gets that result (Replayed set,
//     nothing published again); while the first is still running it polls
//     until the result is there, the key is released, or Wait passes
//     ([errcode.ErrIdempotencyInProgress]);
//   - a different hash is [errcode.ErrIdempotencyKeyReused];
//   - a failed first attempt releases the key, so a retry runs.
type Idempotent struct {
	store idempotencyStore
	cfg   IdempotencyConfig
	now   func() time.Time
}

// NewIdempotent returns the database-backed [Idempotency].
func NewIdempotent(st idempotencyStore, cfg IdempotencyConfig) *Idempotent {
	return &Idempotent{store: st, cfg: cfg.WithDefaults(), now: func() time.Time { return time.Now().UTC() }}
}

// Do implements [Idempotency].
func (i *Idempotent) Do(ctx context.Context, instance, key, requestHash string, run func(ctx context.Context) (*Result, error)) (*Result, error) {
	claimID := uuid.NewString()
	deadline := time.Now().Add(i.cfg.Wait)
	claim := true
	for {
		var rec *store.IdempotencyRecord
		if claim {
			claimed, r, err := i.store.IdempotencyClaim(ctx, &store.IdempotencyClaimParams{
				Instance: instance, Key: key, RequestHash: requestHash, ClaimID: claimID, Now: i.now(), Lease: i.cfg.Lease,
			})
			if err != nil {
				return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
			}
			if claimed {
				return i.runClaimed(ctx, instance, key, claimID, run)
			}
			rec = r
		} else {
			// Waiting: read, never write, so the first request's own writes
			// are not slowed down by its duplicates.
			r, err := i.store.IdempotencyGet(ctx, instance, key)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
			}
			rec = r
		}
		// Claim again only when the key is free or its holder's lease ran out.
		claim = rec == nil || !rec.ExpiresAt.After(i.now())
		if rec != nil {
			if rec.RequestHash != requestHash {
				return nil, errcode.ErrIdempotencyKeyReused
			}
			if rec.State == store.IdempotencyDone {
				return replay(rec)
			}
		}
		if time.Now().After(deadline) {
			return nil, errcode.ErrIdempotencyInProgress
		}
		t := time.NewTimer(i.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", ctx.Err())
		case <-t.C:
		}
	}
}

func (i *Idempotent) runClaimed(ctx context.Context, instance, key, claimID string, run func(ctx context.Context) (*Result, error)) (*Result, error) {
	bg := context.WithoutCancel(ctx)
	res, err := run(ctx)
	if err != nil {
		// Let a retry run: the first attempt published nothing to remember.
		_ = i.store.IdempotencyRelease(bg, instance, key, claimID)
		return nil, err
	}
	b, merr := json.Marshal(res)
	if merr == nil {
		if cerr := i.store.IdempotencyComplete(bg, instance, key, claimID, b, i.now().Add(i.cfg.Window)); cerr != nil && !errors.Is(cerr, store.ErrNotFound) {
			return res, nil // published; only the replay record is lost
		}
	}
	return res, nil
}

func replay(rec *store.IdempotencyRecord) (*Result, error) {
	var res Result
	if err := json.Unmarshal(rec.Result, &res); err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	res.Replayed = true
	return &res, nil
}
