package pgtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestDatabasesAreMigratedAndIsolated(t *testing.T) {
	a, b := pgtest.DB(t), pgtest.DB(t)
	ctx := context.Background()
	if _, err := a.ExecContext(ctx, `INSERT INTO merchants (merchant_id, name, status) VALUES ('m1', 'A', 'ACTIVE')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.GetContext(ctx, &n, `SELECT count(*) FROM merchants`); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("second database sees %d merchants of the first", n)
	}
}

func TestInTxCommitsOrRollsBack(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	insert := func(id string) func(tx *sqlx.Tx) error {
		return func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO merchants (merchant_id, name, status) VALUES ($1, 'A', 'ACTIVE')`, id)
			return err
		}
	}
	if err := pgdb.InTx(ctx, db, insert("ok")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if err := insert("rolled-back")(tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx returned %v, want boom", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
			_ = insert("panicked")(tx)
			panic("boom")
		})
	}()
	// A deferred constraint that fails at COMMIT: the commit error must surface.
	err = pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE t (id int UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP`); err != nil {
			return err
		}
		if err := insert("commit-fails")(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (1), (1)`)
		return err
	})
	if err == nil {
		t.Fatal("InTx swallowed a failing commit")
	}
	var ids []string
	if err := db.SelectContext(ctx, &ids, `SELECT merchant_id FROM merchants ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != "ok" {
		t.Fatalf("merchants after transactions = %v, want only [ok]", ids)
	}
}
