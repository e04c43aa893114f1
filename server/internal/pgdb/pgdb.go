// Package pgdb opens paycenter's PostgreSQL database, runs transactions, and starts a private
// PostgreSQL cluster from the installed binaries when no database URL is configured.
package pgdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the "postgres" driver
)

// Open connects to url and checks the connection. Unless the URL says otherwise, parameters
// are sent in binary (lib/pq's binary_parameters), which sends a statement with arguments in
// one round trip instead of two (prepare, then execute).
func Open(ctx context.Context, url string, maxConns int) (*sqlx.DB, error) {
	db, err := sqlx.Open("postgres", withBinaryParameters(url))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if maxConns <= 0 {
		maxConns = 20
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}

// Beginner starts transactions; *sqlx.DB is one.
type Beginner interface {
	BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error)
}

// InTx runs fn in a transaction: it commits when fn returns nil and rolls back when fn
// returns an error or panics. A commit failure is returned, never swallowed. Functions
// registered with AfterCommit run after the commit.
func InTx(ctx context.Context, db Beginner, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	hooks := new([]func())
	afterCommit.Store(tx, hooks)
	defer afterCommit.Delete(tx)
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("roll back: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, hook := range *hooks {
		hook()
	}
	return nil
}

// afterCommit maps each transaction InTx is running to the functions to call once it commits.
var afterCommit sync.Map // *sqlx.Tx → *[]func()

// AfterCommit arranges for fn to run once tx has committed, when tx is a transaction InTx is
// running (fn runs in InTx's goroutine, before it returns; it must not block). It reports
// false, and fn never runs, for any other transaction. Use it for what only makes sense
// once the transaction's writes are visible, such as waking a worker to read them.
func AfterCommit(tx *sqlx.Tx, fn func()) bool {
	v, ok := afterCommit.Load(tx)
	if ok {
		hooks := v.(*[]func()) // only tx's goroutine appends
		*hooks = append(*hooks, fn)
	}
	return ok
}

func withBinaryParameters(raw string) string {
	if strings.Contains(raw, "binary_parameters=") {
		return raw
	}
	if u, err := neturl.Parse(raw); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("binary_parameters", "yes")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return raw + " binary_parameters=yes" // key=value connection strings
}
