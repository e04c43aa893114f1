package ledger

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// batchTx sends the statements of one batch. Within a caller's transaction (Post,
// settlement) it is that transaction. A group-commit batch owns its transaction instead, on a
// connection of its own, and saves two round trips: BEGIN travels with the batch's first
// statement and COMMIT with its write. Every statement of a batch is a simple query for that
// reason (values inlined, see statement). On a busy machine each round trip costs
// the committer about a millisecond of waiting to be scheduled, all of it with the batch's
// accounts locked and its callers waiting.
//
// A group-commit batch also EXECUTEs statements prepared on its connection (batchStatements)
// with generic plans, where a caller's transaction sends their text: PostgreSQL then plans
// them once per connection instead of once per batch. Planning the write alone took a third
// of a millisecond per batch; measured with `make bench-ledger`, PostgreSQL's CPU per
// transfer fell by 5–15% at 1 transfer per RPC and by a quarter at 100.
type batchTx struct {
	q sqlx.QueryerContext
	// begin: BEGIN has yet to be sent, with the next statement. commit: the write ends the
	// transaction. committed: it did.
	begin, commit, committed bool
	// prepared: the connection holds the batch statements (batchStatements), so they are
	// EXECUTEd, with plans PostgreSQL keeps, instead of sent and planned each time.
	prepared bool
}

// batchBegin begins a group-commit batch's transaction. Its settings hold for that
// transaction only. plan_cache_mode: the prepared statements take arrays, which would
// otherwise get custom plans, planned every time. enable_seqscan: a connection keeps the
// plans of its first batch until the next ANALYZE, and planned while the ledger is nearly
// empty (a new deployment, the benchmark's start) they would scan whole tables for as long:
// measured once, 1600 instead of 27000 transfers/s. Every batch statement reads by primary
// key, so its plans use the keys whatever the tables held when they were made.
const batchBegin = "BEGIN READ WRITE; SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off; "

// owned reports whether the batch owns its transaction (a group-commit batch).
func (b *batchTx) owned() bool { return b.commit }

// callerTx sends a batch's statements in the caller's transaction.
func callerTx(tx *sqlx.Tx) *batchTx { return &batchTx{q: tx} }

// query runs a simple query (no arguments) in the transaction.
func (b *batchTx) query(ctx context.Context, query string) (*sqlx.Rows, error) {
	if b.begin {
		query = batchBegin + query
		b.begin = false
	}
	return b.q.QueryxContext(ctx, query)
}

// write runs the batch's last statements, which commit an owned transaction. With dest, it
// scans into dest the first row of the result that follows skip results. Everything is read
// to the end: a failed COMMIT shows only there.
func (b *batchTx) write(ctx context.Context, query string, skip int, dest ...any) error {
	if b.commit {
		query += "; COMMIT"
	}
	rows, err := b.query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for range skip {
		for rows.Next() {
		}
		if !rows.NextResultSet() {
			return errors.Join(rows.Err(), errMissingResult)
		}
	}
	if len(dest) > 0 {
		if !rows.Next() {
			return errors.Join(rows.Err(), errMissingResult)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return err
	}
	b.committed = b.commit
	return nil
}

// ownTx runs fn as a transaction of its own on one connection of pool: see batchTx. A
// transaction fn leaves open (it wrote nothing) is committed here; one that failed is rolled
// back, and its connection is discarded when even that fails.
func ownTx(ctx context.Context, pool *sqlx.DB, fn func(b *batchTx) error) (err error) {
	conn, err := pool.Connx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer conn.Close()
	key, err := prepareBatch(ctx, conn)
	if err != nil {
		discard(conn)
		return fmt.Errorf("prepare ledger statements: %w", err)
	}
	b := &batchTx{q: conn, begin: true, commit: true, prepared: true}
	defer func() {
		if p := recover(); p != nil {
			discard(conn)
			panic(p)
		}
	}()
	err = fn(b)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "26000" {
		// A statement is gone (DISCARD ALL, say): forget this connection; the retry takes
		// another, or prepares this one again.
		prepared.forget(key)
		discard(conn)
	}
	switch {
	case b.begin || b.committed: // nothing was sent, or everything was
		return err
	case err == nil:
		if _, err = conn.ExecContext(ctx, "COMMIT"); err != nil {
			discard(conn)
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	default:
		// The transaction may be open, aborted or (when COMMIT itself failed) over; ROLLBACK
		// ends the first two and only warns about the third.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rbErr := conn.ExecContext(rctx, "ROLLBACK"); rbErr != nil {
			discard(conn)
			return errors.Join(err, fmt.Errorf("roll back: %w", rbErr))
		}
		return err
	}
}

// prepareBatch makes sure conn holds the batch statements (batchStatements), and returns the
// driver connection for prepared.forget.
func prepareBatch(ctx context.Context, conn *sqlx.Conn) (key any, err error) {
	_ = conn.Raw(func(dc any) error { key = dc; return nil })
	if prepared.has(key) {
		return key, nil
	}
	// New to us, but perhaps not to PostgreSQL (prepared forgets).
	var have []string
	if err := conn.SelectContext(ctx, &have, `SELECT name FROM pg_prepared_statements`); err != nil {
		return key, err
	}
	var q strings.Builder
	for _, name := range slices.Sorted(maps.Keys(batchStatements)) {
		if !slices.Contains(have, name) {
			q.WriteString("PREPARE " + name + " AS " + batchStatements[name] + ";\n")
		}
	}
	if q.Len() > 0 {
		if _, err := conn.ExecContext(ctx, q.String()); err != nil {
			return key, err
		}
	}
	prepared.add(key)
	return key, nil
}

// prepared remembers the driver connections that hold the batch statements. The pool closes
// connections without telling, so it forgets everything once it holds maxPreparedConns.
var prepared = &preparedConns{}

const maxPreparedConns = 1000

type preparedConns struct {
	mu sync.Mutex
	m  map[any]bool
}

func (p *preparedConns) has(conn any) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[conn]
}

func (p *preparedConns) add(conn any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxPreparedConns {
		p.m = map[any]bool{}
	}
	p.m[conn] = true
}

func (p *preparedConns) forget(conn any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, conn)
}

// discard keeps conn out of the pool: it may still be inside a transaction.
func discard(conn *sqlx.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}

// inlineQuery is a query whose $n placeholders are replaced by SQL literals, for statements
// that must be simple queries.
type inlineQuery struct {
	parts  []string // text around the placeholders
	params []int    // parts[i] is followed by argument params[i] (0-based)
}

var placeholder = regexp.MustCompile(`\$([0-9]+)`)

// statement returns batch statement name (batchStatements) with args as literals: an EXECUTE
// of it where the connection holds it, its text otherwise.
func (b *batchTx) statement(name string, args ...any) (string, error) {
	q := inlineStatements[name]
	if b.prepared {
		q = executeStatements[name]
	}
	return q.render(args...)
}

// inlineStatements and executeStatements are batchStatements ready to render: their text,
// and "EXECUTE name($1, ...)".
var inlineStatements, executeStatements = func() (inline, execute map[string]inlineQuery) {
	inline, execute = map[string]inlineQuery{}, map[string]inlineQuery{}
	for name, text := range batchStatements {
		inline[name] = parseInline(text)
		params := make([]string, slices.Max(inline[name].params)+1) // $1 may appear more than once
		for i := range params {
			params[i] = "$" + strconv.Itoa(i+1)
		}
		execute[name] = parseInline("EXECUTE " + name + "(" + strings.Join(params, ", ") + ")")
	}
	return inline, execute
}()

func parseInline(query string) inlineQuery {
	var q inlineQuery
	last := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(query, -1) {
		n, _ := strconv.Atoi(query[m[2]:m[3]])
		q.parts = append(q.parts, query[last:m[0]])
		q.params = append(q.params, n-1)
		last = m[1]
	}
	q.parts = append(q.parts, query[last:])
	return q
}

// render returns the query with args as literals: times as timestamptz, integers, and
// driver values (pq arrays) as quoted strings for the query's own casts.
func (q inlineQuery) render(args ...any) (string, error) {
	var b strings.Builder
	for i, part := range q.parts {
		b.WriteString(part)
		if i == len(q.params) {
			break
		}
		lit, err := literal(args[q.params[i]])
		if err != nil {
			return "", fmt.Errorf("argument $%d: %w", q.params[i]+1, err)
		}
		b.WriteString(lit)
	}
	return b.String(), nil
}

func literal(arg any) (string, error) {
	switch v := arg.(type) {
	case time.Time:
		return pq.QuoteLiteral(v.UTC().Format(time.RFC3339Nano)) + "::timestamptz", nil
	case int:
		return strconv.Itoa(v), nil
	case driver.Valuer:
		val, err := v.Value()
		if err != nil {
			return "", err
		}
		switch val := val.(type) {
		case nil:
			return "NULL", nil
		case string:
			return pq.QuoteLiteral(val), nil
		case []byte:
			return pq.QuoteLiteral(string(val)), nil
		}
		return "", fmt.Errorf("cannot inline %T", val)
	}
	return "", fmt.Errorf("cannot inline %T", arg)
}
