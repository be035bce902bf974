package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Idempotency record states.
const (
	// IdempotencyPending: the first request holds the key and is running.
	IdempotencyPending = "pending"
	// IdempotencyDone: the first request finished; Result holds its answer.
	IdempotencyDone = "done"
)

// IdempotencyRecord is one Idempotency-Key of an instance.
type IdempotencyRecord struct {
	Instance    string
	Key         string
	RequestHash string
	ClaimID     string
	State       string
	Result      []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// IdempotencyClaimParams claims a key.
type IdempotencyClaimParams struct {
	Instance    string
	Key         string
	RequestHash string
	// ClaimID identifies the claimant; Complete and Release only act on their own claim.
	ClaimID string
	Now     time.Time
	// Lease is how long a pending claim holds the key before another request
	// may take it over (its owner died).
	Lease time.Duration
}

// IdempotencyClaim tries to take a key. Exactly one of concurrent callers
// wins (an INSERT on the primary key); the others get claimed=false and the
// record that holds the key (nil when it vanished meanwhile: try again). An
// expired record (a finished key older than its window, or a pending claim
// past its lease) is removed and the claim retried once.
func (s *Store) IdempotencyClaim(ctx context.Context, p *IdempotencyClaimParams) (claimed bool, rec *IdempotencyRecord, err error) {
	now := millis(p.Now)
	for attempt := 0; ; attempt++ {
		res, err := s.Exec(ctx, `INSERT INTO idempotency_keys (instance, idem_key, request_hash, claim_id, state, result, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, '', $6, $7) ON CONFLICT (instance, idem_key) DO NOTHING`,
			p.Instance, p.Key, p.RequestHash, p.ClaimID, IdempotencyPending, now, millis(p.Now.Add(p.Lease)))
		if err != nil && !isUniqueViolation(err) {
			return false, nil, err
		}
		if err == nil {
			if n, _ := res.RowsAffected(); n == 1 {
				return true, nil, nil
			}
		}
		rec, err = s.IdempotencyGet(ctx, p.Instance, p.Key)
		if errors.Is(err, ErrNotFound) {
			return false, nil, nil
		}
		if err != nil || attempt > 0 || millis(rec.ExpiresAt) > now {
			return false, rec, err
		}
		if _, err := s.Exec(ctx, `DELETE FROM idempotency_keys WHERE instance = $1 AND idem_key = $2 AND expires_at <= $3`, p.Instance, p.Key, now); err != nil {
			return false, nil, err
		}
	}
}

// IdempotencyGet returns a key's record, or [ErrNotFound].
func (s *Store) IdempotencyGet(ctx context.Context, instance, key string) (*IdempotencyRecord, error) {
	var r IdempotencyRecord
	var result string
	var created, expires int64
	err := s.DB.QueryRowContext(ctx, `SELECT instance, idem_key, request_hash, claim_id, state, result, created_at, expires_at FROM idempotency_keys WHERE instance = $1 AND idem_key = $2`, instance, key).
		Scan(&r.Instance, &r.Key, &r.RequestHash, &r.ClaimID, &r.State, &result, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.Result, r.CreatedAt, r.ExpiresAt = []byte(result), fromMillis(created), fromMillis(expires)
	return &r, nil
}

// IdempotencyComplete stores the first result of a claimed key and keeps it
// until expiresAt. [ErrNotFound] when the claim is no longer ours.
func (s *Store) IdempotencyComplete(ctx context.Context, instance, key, claimID string, result []byte, expiresAt time.Time) error {
	return s.execOne(ctx, `UPDATE idempotency_keys SET state = $4, result = $5, expires_at = $6 WHERE instance = $1 AND idem_key = $2 AND claim_id = $3`,
		instance, key, claimID, IdempotencyDone, string(result), millis(expiresAt))
}

// IdempotencyRelease deletes our pending claim so that a retry can run.
func (s *Store) IdempotencyRelease(ctx context.Context, instance, key, claimID string) error {
	_, err := s.Exec(ctx, `DELETE FROM idempotency_keys WHERE instance = $1 AND idem_key = $2 AND claim_id = $3 AND state = $4`,
		instance, key, claimID, IdempotencyPending)
	return err
}

// IdempotencyDeleteExpired removes every expired record and returns how many.
func (s *Store) IdempotencyDeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= $1`, millis(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
