package pgdb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Functions registered with AfterCommit run once the transaction's writes are visible to
// everyone, and never for a transaction that rolls back or that InTx does not run.
func TestAfterCommitRunsOnlyAfterACommit(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE after_commit_test (n int)`); err != nil {
		t.Fatal(err)
	}
	visible := func() int {
		var n int
		if err := db.GetContext(ctx, &n, `SELECT count(*) FROM after_commit_test`); err != nil {
			t.Error(err)
		}
		return n
	}

	var seen []int
	err := pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO after_commit_test VALUES (1)`); err != nil {
			return err
		}
		if !pgdb.AfterCommit(tx, func() { seen = append(seen, visible()) }) {
			t.Error("AfterCommit refused a transaction InTx runs")
		}
		if len(seen) != 0 {
			t.Error("the function ran before the commit")
		}
		return nil
	})
	if err != nil || len(seen) != 1 || seen[0] != 1 {
		t.Fatalf("InTx = %v; the function ran %d times, seeing %v rows (want once, seeing 1)", err, len(seen), seen)
	}

	boom := errors.New("boom")
	err = pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		pgdb.AfterCommit(tx, func() { t.Error("the function ran for a transaction that rolled back") })
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want %v", err, boom)
	}

	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if pgdb.AfterCommit(tx, func() { t.Error("the function ran for a transaction InTx does not run") }) {
		t.Fatal("AfterCommit accepted a transaction InTx does not run")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
