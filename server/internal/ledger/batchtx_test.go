package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
)

// A batch that owns its transaction sends BEGIN and COMMIT along with its statements: what
// it writes commits exactly when every statement (and COMMIT) succeeded, and its connection
// goes back to the pool outside any transaction either way.
func TestOwnTxCommitsOnlyWhatSucceeded(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Open(t, pgtest.URL(t), 1) // one connection: each case reuses the previous one's
	if _, err := db.ExecContext(ctx, `CREATE TABLE batch_probe (v int UNIQUE DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	read := func(b *batchTx, v string) error {
		rows, err := b.query(ctx, `INSERT INTO batch_probe VALUES (`+v+`) RETURNING v`)
		if err != nil {
			return err
		}
		return rows.Close()
	}
	errBoom := errors.New("boom")
	for _, c := range []struct {
		name    string
		fn      func(b *batchTx) error
		wantErr string // SQLSTATE, or "boom"
		want    int    // rows of batch_probe afterwards
	}{
		{"read and write", func(b *batchTx) error {
			if err := read(b, "1"); err != nil {
				return err
			}
			return b.write(ctx, `INSERT INTO batch_probe VALUES (2)`, 0)
		}, "", 2},
		{"no write: committed afterwards", func(b *batchTx) error { return read(b, "3") }, "", 3},
		{"failure after the first statement", func(b *batchTx) error {
			if err := read(b, "4"); err != nil {
				return err
			}
			return errBoom
		}, "boom", 3},
		{"the write's own check fails: COMMIT never runs", func(b *batchTx) error {
			if err := read(b, "5"); err != nil {
				return err
			}
			return b.write(ctx, `INSERT INTO batch_probe VALUES (6); SELECT ledger_assert(false, '40001', 'probe')`, 0)
		}, "40001", 3},
		{"COMMIT itself fails", func(b *batchTx) error {
			if err := read(b, "7"); err != nil {
				return err
			}
			return b.write(ctx, `INSERT INTO batch_probe VALUES (7)`, 0) // deferred unique check fails at COMMIT
		}, "23505", 3},
		{"nothing sent", func(b *batchTx) error { return errBoom }, "boom", 3},
	} {
		err := ownTx(ctx, db, c.fn)
		var pqErr *pq.Error
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr == "boom" && !errors.Is(err, errBoom):
			t.Errorf("%s: error %v, want boom", c.name, err)
		case c.wantErr != "" && c.wantErr != "boom" && (!errors.As(err, &pqErr) || string(pqErr.Code) != c.wantErr):
			t.Errorf("%s: error %v, want SQLSTATE %s", c.name, err, c.wantErr)
		}
		var n int
		var inTx bool
		// The pool's only connection: a transaction left open would show as a stale now().
		if err := db.QueryRowContext(ctx, `SELECT count(*), now() <> statement_timestamp() FROM batch_probe`).Scan(&n, &inTx); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n != c.want || inTx {
			t.Errorf("%s: %d rows (want %d), connection inside a transaction: %v", c.name, n, c.want, inTx)
		}
	}
}

// oneConnLedger is a Service whose pool has one connection, so that every batch runs on the
// connection a test inspects, with two accounts to move money between.
type oneConnLedger struct {
	db    *sqlx.DB
	s     *Service
	admin context.Context
	from  string
	to    string
}

func newOneConnLedger(t *testing.T) *oneConnLedger {
	t.Helper()
	l := &oneConnLedger{db: pgtest.Open(t, pgtest.URL(t), 1)}
	l.s = NewService(l.db, Options{})
	l.admin = auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.KindAdmin})
	for _, acc := range []struct {
		id   *string
		code AccountCode
	}{{&l.from, ExternalFunding}, {&l.to, PlatformFees}} {
		a, err := l.s.CreateAccount(l.admin, AccountSpec{Code: acc.code, Currency: "CNY"})
		if err != nil {
			t.Fatal(err)
		}
		*acc.id = a.ID
	}
	return l
}

// transfer moves 100 fen in a group-commit batch.
func (l *oneConnLedger) transfer(t *testing.T, id string) {
	t.Helper()
	rs, err := l.s.CreateTransfers(l.admin, []Transfer{{ID: id, DebitAccountID: l.from, CreditAccountID: l.to,
		Amount: 100, Currency: "CNY", Code: CodeRecharge}})
	if err != nil || rs[0].Refusal != "" {
		t.Fatalf("transfer %s: %v %+v", id, err, rs)
	}
}

// A group-commit batch EXECUTEs statements prepared on its connection. A connection that
// lost them (DISCARD ALL) costs one retry, and one that has them but was forgotten is not
// prepared twice.
func TestOwnTxSurvivesLostAndForgottenPreparedStatements(t *testing.T) {
	l := newOneConnLedger(t)
	ctx := context.Background()
	l.transfer(t, "t1")
	if _, err := l.db.ExecContext(ctx, `DISCARD ALL`); err != nil {
		t.Fatal(err)
	}
	l.transfer(t, "t2")
	prepared.mu.Lock()
	clear(prepared.m)
	prepared.mu.Unlock()
	l.transfer(t, "t3")
	b, err := l.s.Balance(l.admin, l.to, time.Time{})
	if err != nil || b.Account.CreditsPosted != 300 {
		t.Fatalf("balance %+v, %v: want 300 credited", b, err)
	}
}

// A connection keeps the plans of its batch statements. Made while the ledger was nearly
// empty, they must still read by primary key once it is not.
func TestBatchStatementsKeepUsingTheirKeys(t *testing.T) {
	l := newOneConnLedger(t)
	ctx := context.Background()
	l.transfer(t, "first") // plans the statements while the ledger holds no transfer
	if _, err := l.db.ExecContext(ctx, `INSERT INTO ledger_transfers (transfer_id, debit_account_id, credit_account_id,
			amount, currency, code, reference, metadata, pending, post_pending, void_pending, timeout_seconds, status,
			error, error_message, fingerprint, created_at)
		SELECT 'bulk_' || g, $1, $2, 0, 'CNY', 'RECHARGE', '', '{}', false, false, false, 0, 'FAILED', 'INVALID', '', '\x00', now()
		FROM generate_series(1, 20000) g`, l.from, l.to); err != nil {
		t.Fatal(err)
	}
	for _, explain := range []string{
		`EXPLAIN EXECUTE ` + readTransfersStmt + `(ARRAY['first'])`,
		`EXPLAIN EXECUTE ` + lockAccountsStmt + `(ARRAY['` + l.from + `'])`,
	} {
		rows, err := l.db.QueryContext(ctx, batchBegin+explain)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			t.Fatal(err)
		}
		if _, err := l.db.ExecContext(ctx, `ROLLBACK`); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan.String(), "Index Scan") || strings.Contains(plan.String(), "Seq Scan") {
			t.Errorf("%s:\n%s", explain, plan.String())
		}
	}
}
