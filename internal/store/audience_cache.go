package store

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The sandbox's audiences, kept in memory.
//
// The sandbox engine reads its instance's audience on every publication (as
// the whatsmeow engine reads its contacts); on PostgreSQL that one-row
// SELECT was a round trip per request, ~18 % of the Go process's CPU and
// a backend wake-up each in cmd/benchpg. Audiences change rarely (PUT
// /api/instance/audience, deleting an instance), so reads are served from
// memory and every change drops the instance's entry:
//
//   - on this process, right after the change commits (a read after the
//     change returned sees it);
//   - on every other replica sharing the PostgreSQL database, through
//     PostgreSQL's LISTEN/NOTIFY: the change's transaction sends a
//     notification on audienceChannel (delivered to listeners when, and only
//     if, it commits) and each replica's listener drops the entry. Between
//     the commit and its delivery (a network hop, milliseconds) another
//     replica may still publish with the previous audience, as it would
//     have had the PUT arrived a moment later.
//
// The memory is only used while it can be told of changes: on SQLite always
// (one process owns the file), on PostgreSQL while the listener is
// connected and listening. When the listener loses its connection the
// memory is emptied and reads go to the database until it listens again. A
// TTL was the other choice: simpler, but a replica would then publish with
// a stale audience for up to the TTL after every change, and a short one
// brings most reads back.
//
// A read that races a change cannot put the old audience back: each change
// bumps a generation, and a value read from the database is kept only if
// no change happened since the read began.

// audienceChannel is the PostgreSQL notification channel of audience
// changes; the payload is the instance name.
const audienceChannel = "statusflow_audience"

type audienceCache struct {
	mu      sync.Mutex
	valid   bool   // changes reach invalidate (see above)
	gen     uint64 // bumped by every change
	m       map[string]*SandboxAudience
	started bool // PostgreSQL: the listener runs
	stop    context.CancelFunc
	done    chan struct{}
}

// get returns the kept audience of instance (nil when it has none) and
// whether there was an entry; gen is the generation to pass to put after
// reading the database.
func (c *audienceCache) get(instance string) (a *SandboxAudience, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid {
		a, ok = c.m[instance]
	}
	return a, ok, c.gen
}

// put keeps a (nil: no audience) for instance, read at generation gen.
func (c *audienceCache) put(gen uint64, instance string, a *SandboxAudience) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || c.gen != gen {
		return
	}
	if c.m == nil {
		c.m = make(map[string]*SandboxAudience)
	}
	c.m[instance] = a
}

// invalidate forgets instance's audience.
func (c *audienceCache) invalidate(instance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, instance)
}

// setValid empties the memory and starts (or stops) using it.
func (c *audienceCache) setValid(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
	c.valid = v
}

// audiencesKept starts keeping audiences in memory: at once on SQLite, on
// PostgreSQL by starting the listener (on the first read, so a store that
// never reads an audience holds no extra connection).
func (s *Store) audiencesKept() {
	c := &s.audiences
	c.mu.Lock()
	if c.started || s.pgConfig == nil {
		c.mu.Unlock()
		return
	}
	c.started = true
	ctx, cancel := context.WithCancel(context.Background())
	c.stop, c.done = cancel, make(chan struct{})
	c.mu.Unlock()
	go s.listenAudiences(ctx, c.done)
}

// listenAudiences keeps a connection listening on audienceChannel and drops
// the entry of each notified instance; while it is not listening the
// memory is not used.
func (s *Store) listenAudiences(ctx context.Context, done chan struct{}) {
	defer close(done)
	wait := 100 * time.Millisecond
	for {
		conn, err := pgx.ConnectConfig(ctx, s.pgConfig.Copy())
		if err == nil {
			if _, err = conn.Exec(ctx, `LISTEN `+audienceChannel); err == nil {
				// Changes committed before LISTEN were not notified: start empty.
				s.audiences.setValid(true)
				wait = 100 * time.Millisecond
				for {
					n, err := conn.WaitForNotification(ctx)
					if err != nil {
						break
					}
					s.audiences.invalidate(n.Payload)
				}
				s.audiences.setValid(false)
			}
			conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// stopAudiences stops the listener.
func (s *Store) stopAudiences() {
	c := &s.audiences
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.stop = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// notifyAudience, inside a change's transaction on PostgreSQL, tells every
// replica's listener to forget instance's audience once it commits.
func (s *Store) notifyAudience(ctx context.Context, tx *sql.Tx, instance string) error {
	if s.Dialect != Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, audienceChannel, instance)
	return err
}
