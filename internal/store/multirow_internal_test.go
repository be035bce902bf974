package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// openPostgres opens a store on a fresh PostgreSQL database, dropped at
// cleanup (storetest's, which this package's own tests cannot import).
func openPostgres(t *testing.T) (*Store, string) {
	t.Helper()
	admin := os.Getenv("STATUSFLOW_TEST_POSTGRES")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "sf_test_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("postgres: create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err == nil {
			db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
			db.Close()
		}
	})
	url := "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
	s, err := Open(context.Background(), url, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

func TestMergeInserts(t *testing.T) {
	t.Parallel()
	q := func(sql string, args ...any) *pgx.QueuedQuery { return &pgx.QueuedQuery{SQL: sql, Arguments: args} }
	ev := func(id string, seq int64) *pgx.QueuedQuery {
		return q(eventInsert.one, id, seq, "p", "status.published", "t", "", "", int64(1), "{}")
	}
	st := func(id string) *pgx.QueuedQuery {
		return q(statusRecord.one, "p", id, "text", "", "t", "{}", int64(1), true)
	}
	t.Run("OnePerTableInFirstRowOrder", func(t *testing.T) {
		t.Parallel()
		got := mergeInserts([]*pgx.QueuedQuery{st("m1"), ev("e1", 1), st("m2"), ev("e2", 2), q(`COMMIT`)})
		if len(got) != 3 || got[0].SQL != statusRecord.many || got[1].SQL != eventInsert.many || got[2].SQL != `COMMIT` {
			t.Fatalf("merged into %v", sqls(got))
		}
		if ids := got[0].Arguments[1]; !reflect.DeepEqual(ids, []string{"m1", "m2"}) {
			t.Errorf("status message ids %v", ids)
		}
		if seqs := got[1].Arguments[1]; !reflect.DeepEqual(seqs, []int64{1, 2}) {
			t.Errorf("event seqs %v", seqs)
		}
	})
	t.Run("NothingMovesAcrossAnUnknownStatement", func(t *testing.T) {
		t.Parallel()
		lock := q(`SELECT pg_advisory_xact_lock(1)`)
		got := mergeInserts([]*pgx.QueuedQuery{ev("e1", 1), lock, ev("e2", 2), ev("e3", 3)})
		if len(got) != 3 || got[0].SQL != eventInsert.one || got[1] != lock || got[2].SQL != eventInsert.many {
			t.Fatalf("merged into %v", sqls(got))
		}
	})
	t.Run("UnexpectedTypeStaysSingle", func(t *testing.T) {
		t.Parallel()
		odd := q(eventInsert.one, "e2", "not a number", "p", "x", "", "", "", int64(1), "{}")
		got := mergeInserts([]*pgx.QueuedQuery{ev("e1", 1), st("m1"), odd, ev("e3", 3), st("m2")})
		want := []string{eventInsert.one, eventInsert.one, eventInsert.one, statusRecord.many}
		if !reflect.DeepEqual(sqls(got), want) {
			t.Fatalf("merged into %v, want %v", sqls(got), want)
		}
		for i, id := range []string{"e1", "e2", "e3"} {
			if got[i].Arguments[0] != id {
				t.Errorf("row %d is %v, want %s", i, got[i].Arguments[0], id)
			}
		}
	})
}

func sqls(qs []*pgx.QueuedQuery) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.SQL
	}
	return out
}

// publication is what one publication writes on PostgreSQL's raw batch
// path: the sandbox's record, the status row, its event and an outbox row.
func publication(s *Store, i int, outboxID string) *writeReq {
	now := time.UnixMilli(1_700_000_000_000 + int64(i))
	id := fmt.Sprint("m", i)
	ctx := WithWriteLane(context.Background(), fmt.Sprint("trace", i), "p")
	return &writeReq{ctx: ctx, done: make(chan writeResult, 1), pipelined: true, instance: "p",
		fn: func(ctx context.Context, tx *sql.Tx) error {
			if _, err := s.TxExec(ctx, tx, sandboxRecord.one, sandboxArgs(&SandboxStatus{Instance: "p", MessageID: id, Type: "text", Message: "{}", Proto: []byte{byte(i)}, MediaBytes: int64(i), Revoked: i%2 == 0, CreatedAt: now})...); err != nil {
				return err
			}
			if err := s.StatusRecordTx(ctx, tx, &Status{Instance: "p", MessageID: id, Type: "text", Source: "s", TraceID: fmt.Sprint("t", i), CreatedAt: now, Unconfirmed: i%3 == 0}); err != nil {
				return err
			}
			if err := s.EventInsertTx(ctx, tx, &Event{ID: fmt.Sprint("e", i), Seq: int64(1000 + i), Instance: "p", Type: "status.published", TraceID: fmt.Sprint("t", i), Time: now, Body: fmt.Sprintf(`{"i":%d}`, i)}); err != nil {
				return err
			}
			return s.OutboxInsertTx(ctx, tx, &Delivery{ID: outboxID, WebhookID: "w", Instance: "p", EventID: fmt.Sprint("e", i), EventType: "status.published",
				EventTime: now, Body: "{}", State: "pending", Attempt: i % 4, MaxAttempts: 8, ScheduledAt: now, CreatedAt: now})
		}}
}

// dump returns every row the publications write, as text, in key order.
func dump(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT instance, message_id, type, message, message_proto, media_mimetype, media_bytes, media_sha256, revoked, created_at FROM sandbox_statuses ORDER BY message_id`,
		`SELECT instance, message_id, type, source, trace_id, origin, created_at, revoked_at, confirmed FROM statuses ORDER BY message_id`,
		// seqs come from transaction ids: compared by their order
		`SELECT id, rank() OVER (PARTITION BY instance ORDER BY seq), instance, type, trace_id, source, platform, time, body FROM events ORDER BY id`,
		`SELECT id, webhook_id, instance, event_id, event_type, event_time, body, state, attempt, max_attempts, scheduled_at, locked_until, created_at FROM webhook_deliveries ORDER BY id`,
	} {
		rows, err := s.DB.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals...))
		}
		rows.Close()
	}
	return out
}

// A batch's merged multi-row INSERTs write exactly the rows the same writes
// write one by one.
func TestCommitBatch_MultiRowMatchesSingle(t *testing.T) {
	t.Parallel()
	batched, _ := openPostgres(t)
	single, _ := openPostgres(t)
	const n = 12
	var batch []*writeReq
	for i := range n {
		batch = append(batch, publication(batched, i, fmt.Sprint("d", i)))
	}
	batched.commitBatch(batched.lanes[0], batch)
	for i, r := range batch {
		if err := (<-r.done).err; err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if st := batched.WriteStats(); st.Batches != 1 || st.Replays != 0 {
		t.Fatalf("writer stats %+v: want one batch, not replayed", st)
	}
	for i := range n {
		r := publication(single, i, fmt.Sprint("d", i))
		single.commitBatch(single.lanes[0], []*writeReq{r})
		if err := (<-r.done).err; err != nil {
			t.Fatalf("write %d alone: %v", i, err)
		}
	}
	got, want := dump(t, batched), dump(t, single)
	if len(want) != 4*n {
		t.Fatalf("%d rows written one by one, want %d", len(want), 4*n)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batched rows differ:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// One write of a merged batch fails (its outbox row's id is taken): the
// batch is replayed one write per transaction, that write alone gets
// ErrConflict and writes nothing, the others commit.
func TestCommitBatch_OneFailureAmongMultiRow(t *testing.T) {
	t.Parallel()
	s, _ := openPostgres(t)
	const n, bad = 10, 6
	var batch []*writeReq
	for i := range n {
		id := fmt.Sprint("d", i)
		if i == bad {
			id = "d2" // taken by write 2 of the same batch
		}
		batch = append(batch, publication(s, i, id))
	}
	s.commitBatch(s.lanes[0], batch)
	for i, r := range batch {
		err := (<-r.done).err
		if i == bad {
			if !errors.Is(err, ErrConflict) {
				t.Errorf("write %d: %v, want ErrConflict", i, err)
			}
		} else if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if st := s.WriteStats(); st.Replays != 1 {
		t.Errorf("writer stats %+v: want the batch replayed", st)
	}
	rows := dump(t, s)
	if len(rows) != 4*(n-1) {
		t.Fatalf("%d rows, want %d (every write but the failed one)", len(rows), 4*(n-1))
	}
	for _, r := range rows {
		if strings.Contains(r, fmt.Sprint("m", bad)) || strings.Contains(r, fmt.Sprint("e", bad, " ")) {
			t.Errorf("the failed write left %s", r)
		}
	}
}

// An event committed while an older transaction that wrote one is still
// open is not returned until that transaction ends: a reader's cursor could
// otherwise pass the older event's (lower) seq before it commits.
//
// The open transaction is kept as short as it can be: its id holds back the
// event log of every database on the server (see "Event seqs"), including
// those of the tests running beside it.
func TestEventList_NothingPastAnOpenTransaction(t *testing.T) {
	t.Parallel()
	s, _ := openPostgres(t)
	ctx := context.Background()
	older, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer older.Rollback()
	if err := s.EventInsertTx(ctx, older, &Event{ID: "first", Instance: "p", Type: "x", Time: time.Now(), Body: "{}"}); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePipelined(WithWriteLane(ctx, "trace", "p"), func(ctx context.Context, tx *sql.Tx) error {
		return s.EventInsertTx(ctx, tx, &Event{ID: "second", Instance: "p", Type: "x", Time: time.Now(), Body: "{}"})
	}); err != nil {
		t.Fatal(err)
	}
	list, cut, _, err := s.eventList(ctx, &EventListParams{Instance: "p"})
	if err != nil || cut == 0 || len(list) != 0 {
		t.Fatalf("while the older transaction is open: %d events, cut %v, %v; want none, cut", len(list), cut != 0, err)
	}
	if err := older.Commit(); err != nil {
		t.Fatal(err)
	}
	list, err = s.EventList(ctx, &EventListParams{Instance: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "first" || list[1].ID != "second" || list[0].Seq >= list[1].Seq {
		t.Fatalf("after its commit: %v, want first then second", eventIDs(list))
	}
}

// Writers on both lanes and a reader paging with a cursor at the same time:
// the reader sees every event exactly once, in increasing seq order.
func TestEventList_CursorSkipsNothingUnderConcurrentBatches(t *testing.T) {
	t.Parallel()
	s, _ := openPostgres(t)
	ctx := context.Background()
	const writers, each = 8, 150
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				err := s.WritePipelined(WithWriteLane(ctx, id, "p"), func(ctx context.Context, tx *sql.Tx) error {
					return s.EventInsertTx(ctx, tx, &Event{ID: id, Instance: "p", Type: "x", Time: time.Now(), Body: "{}"})
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	var cursor int64
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		page, err := s.EventList(ctx, &EventListParams{Instance: "p", AfterSeq: cursor, Limit: 37})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Seq <= cursor || seen[e.ID] {
				t.Fatalf("event %s (seq %d) after cursor %d, seen before: %v", e.ID, e.Seq, cursor, seen[e.ID])
			}
			seen[e.ID], cursor = true, e.Seq
		}
		if finished && len(page) == 0 {
			break
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("the reader saw %d of %d events", len(seen), writers*each)
	}
	if st := s.WriteStats(); st.Batches >= int64(writers*each) {
		t.Logf("writer stats %+v: no batching happened, the test proves less", st)
	}
}

func eventIDs(list []*Event) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.ID
	}
	return out
}

// Audiences are kept in memory; a change on another store sharing the
// database reaches this one through LISTEN/NOTIFY.
func TestSandboxAudience_ChangedByAnotherReplica(t *testing.T) {
	t.Parallel()
	a, url := openPostgres(t)
	b, err := Open(context.Background(), url, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := a.SandboxAudienceGet(ctx, "p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before any: %v", err)
	}
	if err := a.SandboxAudiencePut(ctx, "p", &SandboxAudience{Mode: "contacts", Recipients: []string{"1"}}); err != nil {
		t.Fatal(err)
	}
	// Wait for a's listener, then read into its memory.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := a.SandboxAudienceGet(ctx, "p")
		if err != nil || got.Mode != "contacts" {
			t.Fatalf("a's own change: %+v, %v", got, err)
		}
		if _, ok, _ := a.audiences.get("p"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a never kept the audience in memory (listener not listening)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.SandboxAudiencePut(ctx, "p", &SandboxAudience{Mode: "only", Recipients: []string{"2", "3"}}); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := a.SandboxAudienceGet(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode == "only" {
			if !reflect.DeepEqual(got.Recipients, []string{"2", "3"}) {
				t.Fatalf("recipients %v", got.Recipients)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b's change never reached a")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
