package store

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Multi-row INSERTs for PostgreSQL batches.
//
// A batch of 30 publications queues ~120 single-row INSERTs (two events,
// the status row, the sandbox's record). PostgreSQL parses, binds, plans and
// executes each one; sent as one statement per table whose rows travel as
// arrays (INSERT … SELECT * FROM unnest($1::text[], $2::int8[], …)) the
// batch costs one execution per table instead. Only the flush of a batch
// of several writes merges (see mergeInserts); a write replayed alone runs
// its single-row statement, so its own error (a taken key, ErrConflict)
// reaches it.

// insertSQL is a single-row INSERT and its multi-row form.
type insertSQL struct {
	// one is the single-row statement, the one callers pass to TxExec
	// (VALUES ($1, …), then suffix).
	one string
	// many inserts rows given as one array per column (PostgreSQL only).
	many string
	// kinds is each column's array element kind, see colKind.
	kinds []colKind
}

// colKind is how a column's values travel as an array.
type colKind uint8

const (
	colText colKind = iota // string → text[]
	colInt                 // int, int32 or int64 → int8[] (assigned to bigint or integer)
	colBool                // bool → bool[]
)

// multiInserts are the statements mergeInserts knows, by their one.
var multiInserts = map[string]*insertSQL{}

// newInsert declares a single-row INSERT into table with cols (name and
// kind) that batches may merge; suffix follows the VALUES (ON CONFLICT …).
func newInsert(table string, cols []string, kinds []colKind, suffix string) *insertSQL {
	if len(cols) != len(kinds) {
		panic("store: newInsert " + table + ": one kind per column")
	}
	params := make([]string, len(cols))
	arrays := make([]string, len(cols))
	for i, k := range kinds {
		n := "$" + strconv.Itoa(i+1)
		params[i] = n
		arrays[i] = n + "::" + [...]string{colText: "text[]", colInt: "int8[]", colBool: "bool[]"}[k]
	}
	head := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) `
	in := &insertSQL{
		one:   head + `VALUES (` + strings.Join(params, ", ") + `)` + suffix,
		many:  head + `SELECT * FROM unnest(` + strings.Join(arrays, ", ") + `)` + suffix,
		kinds: kinds,
	}
	return newInsertSQL(in)
}

// newInsertSQL declares an INSERT written by hand that batches may merge:
// its one and many forms take the same parameters, one per kind.
func newInsertSQL(in *insertSQL) *insertSQL {
	multiInserts[in.one] = in
	return in
}

// mergeInserts returns qs with the single-row INSERTs of each known
// statement merged into one multi-row INSERT. Statements it does not know
// stay where they are and no INSERT moves across one; between two of them,
// each merged statement takes the place of its first row (the tables have
// no foreign keys or triggers, so the order between tables does not
// matter). Rows keep their order within a table.
func mergeInserts(qs []*pgx.QueuedQuery) []*pgx.QueuedQuery {
	if len(qs) < 2 {
		return qs
	}
	out := make([]*pgx.QueuedQuery, 0, len(qs))
	type group struct {
		in   *insertSQL
		rows [][]any
		at   int // index in out
	}
	var groups []*group
	end := func() {
		for _, g := range groups {
			if len(g.rows) == 1 {
				continue // already in out as it was
			}
			if args, ok := columns(g.in.kinds, g.rows); ok {
				out[g.at] = &pgx.QueuedQuery{SQL: g.in.many, Arguments: args}
				continue
			}
			// A value of an unexpected type: the rows go one by one.
			rest := make([]*pgx.QueuedQuery, 0, len(g.rows)-1)
			for _, r := range g.rows[1:] {
				rest = append(rest, &pgx.QueuedQuery{SQL: g.in.one, Arguments: r})
			}
			out[g.at] = &pgx.QueuedQuery{SQL: g.in.one, Arguments: g.rows[0]}
			out = append(out[:g.at+1], append(rest, out[g.at+1:]...)...)
			for _, h := range groups {
				if h.at > g.at {
					h.at += len(rest)
				}
			}
		}
		groups = groups[:0]
	}
	for _, q := range qs {
		in := multiInserts[q.SQL]
		if in == nil || q.Fn != nil || len(q.Arguments) != len(in.kinds) {
			end()
			out = append(out, q)
			continue
		}
		var g *group
		for _, h := range groups {
			if h.in == in {
				g = h
				break
			}
		}
		if g == nil {
			g = &group{in: in, at: len(out)}
			groups = append(groups, g)
			out = append(out, q)
		}
		g.rows = append(g.rows, q.Arguments)
	}
	end()
	return out
}

// columns turns rows into one typed slice per column; ok is false when a
// value is not of its column's kind.
func columns(kinds []colKind, rows [][]any) (args []any, ok bool) {
	args = make([]any, len(kinds))
	for c, k := range kinds {
		switch k {
		case colText:
			vs := make([]string, len(rows))
			for i, r := range rows {
				if vs[i], ok = r[c].(string); !ok {
					return nil, false
				}
			}
			args[c] = vs
		case colInt:
			vs := make([]int64, len(rows))
			for i, r := range rows {
				switch v := r[c].(type) {
				case int64:
					vs[i] = v
				case int:
					vs[i] = int64(v)
				case int32:
					vs[i] = int64(v)
				default:
					return nil, false
				}
			}
			args[c] = vs
		case colBool:
			vs := make([]bool, len(rows))
			for i, r := range rows {
				if vs[i], ok = r[c].(bool); !ok {
					return nil, false
				}
			}
			args[c] = vs
		}
	}
	return args, true
}
