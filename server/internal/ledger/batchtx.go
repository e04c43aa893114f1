package ledger

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// batchTx sends the statements of one batch. Within a caller's transaction (Post,
// settlement) it is that transaction. A group-commit batch owns its transaction instead, on a
// connection of its own, and saves two round trips: BEGIN travels with the batch's first
// statement and COMMIT with its write. Every statement of a batch is a simple query for that
// reason (values inlined, see sqlList and writeBatch). On a busy machine each round trip costs
// the committer about a millisecond of waiting to be scheduled, all of it with the batch's
// accounts locked and its callers waiting.
type batchTx struct {
	q sqlx.QueryerContext
	// begin: BEGIN has yet to be sent, with the next statement. commit: the write ends the
	// transaction. committed: it did.
	begin, commit, committed bool
}

// callerTx sends a batch's statements in the caller's transaction.
func callerTx(tx *sqlx.Tx) *batchTx { return &batchTx{q: tx} }

// query runs a simple query (no arguments) in the transaction.
func (b *batchTx) query(ctx context.Context, query string) (*sqlx.Rows, error) {
	if b.begin {
		query = "BEGIN READ WRITE; " + query
		b.begin = false
	}
	return b.q.QueryxContext(ctx, query)
}

// write runs the batch's last statement, which commits an owned transaction. Its rows are
// read to the end: a failed COMMIT shows only there.
func (b *batchTx) write(ctx context.Context, query string) error {
	if b.commit {
		query += "; COMMIT"
	}
	rows, err := b.query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
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
	b := &batchTx{q: conn, begin: true, commit: true}
	defer func() {
		if p := recover(); p != nil {
			discard(conn)
			panic(p)
		}
	}()
	err = fn(b)
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
