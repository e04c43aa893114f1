package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/ledger"
	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
)

// TestPostSharesTheCallersTransaction drives the in-process API the way payments do: the
// ledger's writes commit or roll back with the caller's own.
func TestPostSharesTheCallersTransaction(t *testing.T) {
	t.Parallel()
	db, svc, admin := inProcess(t, ledger.Options{})

	book := func(tid string, amount int64, fail error) (clearing, avail ledger.Account, err error) {
		err = pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
			if clearing, err = svc.EnsureAccount(ctx, tx, "mch_1", ledger.ChannelClearingAlipay, "CNY"); err != nil {
				return err
			}
			if avail, err = svc.EnsureAccount(ctx, tx, "mch_1", ledger.MerchantAvailable, "CNY"); err != nil {
				return err
			}
			results, err := svc.Post(ctx, tx, []ledger.Transfer{{ID: tid, DebitAccountID: clearing.ID, CreditAccountID: avail.ID,
				Amount: amount, Currency: "CNY", Code: ledger.CodePayment, Reference: "T" + tid}})
			if err != nil {
				return err
			}
			if err := ledger.FirstRefusal(results); err != nil {
				return err
			}
			return fail // the caller's own failure after booking
		})
		return
	}

	// The caller rolls back: neither the accounts nor the transfer exist.
	_, _, err := book("pay-1", 100, errors.New("payment update lost the race"))
	if err == nil {
		t.Fatal("expected the caller's error")
	}
	var n int
	if err := db.Get(&n, `SELECT (SELECT count(*) FROM ledger_accounts) + (SELECT count(*) FROM ledger_transfers)`); err != nil || n != 0 {
		t.Fatalf("rolled back booking left %d rows (%v)", n, err)
	}
	// The caller commits.
	clearing, avail, err := book("pay-1", 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !avail.DebitsMustNotExceedCredits || clearing.DebitsMustNotExceedCredits {
		t.Fatalf("default limits: available %+v clearing %+v", avail, clearing)
	}
	// Retrying the booking (e.g. a duplicate callback) applies nothing twice.
	if _, again, err := book("pay-1", 100, nil); err != nil || again.ID != avail.ID {
		t.Fatalf("retry: %v, account %s vs %s", err, again.ID, avail.ID)
	}
	a, err := svc.Account(admin, avail.ID)
	if err != nil || a.Balance() != 100 {
		t.Fatalf("available %+v %v, want balance 100", a, err)
	}
	// A refusal is an error the caller can recognise.
	err = pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		rs, err := svc.Post(ctx, tx, []ledger.Transfer{{ID: "refund-1", DebitAccountID: avail.ID, CreditAccountID: clearing.ID,
			Amount: 1000, Currency: "CNY", Code: ledger.CodeRefund, Pending: true}})
		if err != nil {
			return err
		}
		return ledger.FirstRefusal(rs)
	})
	var refusal *ledger.RefusalError
	if !errors.As(err, &refusal) || refusal.Result.Refusal != ledger.RefusedExceedsCredits || !errors.Is(err, ledger.ErrRefused) {
		t.Fatalf("refusal: %v", err)
	}

	// In-process posts and group-committed requests on the same accounts lock in one order:
	// run both at once (money goes back and forth so both directions are exercised).
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				tid := fmt.Sprintf("mix-%d-%d", g, i)
				tr := ledger.Transfer{ID: tid, DebitAccountID: clearing.ID, CreditAccountID: avail.ID, Amount: 1, Currency: "CNY", Code: ledger.CodePayment}
				if i%2 == 1 {
					tr.DebitAccountID, tr.CreditAccountID, tr.Code = avail.ID, clearing.ID, ledger.CodeRefund
				}
				var rs []ledger.Result
				var err error
				if g%2 == 0 {
					rs, err = svc.CreateTransfers(admin, []ledger.Transfer{tr})
				} else {
					err = pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error { rs, err = svc.Post(ctx, tx, []ledger.Transfer{tr}); return err })
				}
				if err != nil || rs[0].Refusal != "" {
					t.Errorf("%s: %v %+v", tid, err, rs)
				}
			}
		}()
	}
	wg.Wait()
	if a, _ := svc.Account(admin, avail.ID); a.Balance() != 100 {
		t.Fatalf("balance %d after balanced traffic, want 100", a.Balance())
	}
}

// inProcess returns a database of its own with merchant mch_1, a Service on it and an admin
// context; when the test ends it proves the books still add up.
func inProcess(t *testing.T, opts ledger.Options) (*sqlx.DB, *ledger.Service, context.Context) {
	t.Helper()
	db := pgtest.DB(t)
	svc := ledger.NewService(db, opts)
	if _, err := db.Exec(`INSERT INTO merchants (merchant_id, name, status) VALUES ('mch_1', 'One', 'ACTIVE')`); err != nil {
		t.Fatal(err)
	}
	admin := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindAdmin})
	t.Cleanup(func() {
		rep, err := svc.CheckInvariants(admin)
		if err != nil || len(rep.Violations) > 0 {
			t.Errorf("invariants: %v %v", rep, err)
		}
	})
	return db, svc, admin
}
