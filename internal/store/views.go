package store

import (
	"context"
	"database/sql"
	"time"
)

// View is one viewer's first receipt for a status.
type View struct {
	Instance  string
	MessageID string
	// Viewer is the viewer's JID as WhatsApp reported it (a phone-number JID
	// or a LID).
	Viewer string
	// Kind is "read" or "played".
	Kind     string
	ViewedAt time.Time
}

// ViewInsert records a view unless the viewer already has one for the
// status; inserted says which.
func (s *Store) ViewInsert(ctx context.Context, v *View) (inserted bool, err error) {
	err = s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.TxExec(ctx, tx, `INSERT INTO status_views (instance, message_id, viewer, kind, viewed_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (instance, message_id, viewer) DO NOTHING`, v.Instance, v.MessageID, v.Viewer, v.Kind, millis(v.ViewedAt))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		inserted = n == 1
		return nil
	})
	return inserted, err
}

// ViewCount returns how many viewers a status has.
func (s *Store) ViewCount(ctx context.Context, instance, messageID string) (int64, error) {
	var n int64
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM status_views WHERE instance = $1 AND message_id = $2`, instance, messageID).Scan(&n)
	return n, err
}

// ViewListParams page through a status's viewers in the order they viewed it.
type ViewListParams struct {
	Instance  string
	MessageID string
	// Limit is the page size (see pageLimit); After is the last view of the
	// previous page.
	Limit int
	After *View
}

// ViewList returns a page of a status's viewers, first viewer first.
func (s *Store) ViewList(ctx context.Context, p *ViewListParams) ([]*View, error) {
	q := `SELECT viewer, kind, viewed_at FROM status_views WHERE instance = $1 AND message_id = $2`
	args := []any{p.Instance, p.MessageID}
	if p.After != nil {
		q += ` AND (viewed_at > $3 OR (viewed_at = $3 AND viewer > $4))`
		args = append(args, millis(p.After.ViewedAt), p.After.Viewer)
	}
	args = append(args, pageLimit(p.Limit))
	q += ` ORDER BY viewed_at, viewer LIMIT $` + itoa(len(args))
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*View
	for rows.Next() {
		v := &View{Instance: p.Instance, MessageID: p.MessageID}
		var at int64
		if err := rows.Scan(&v.Viewer, &v.Kind, &at); err != nil {
			return nil, err
		}
		v.ViewedAt = fromMillis(at)
		out = append(out, v)
	}
	return out, rows.Err()
}
