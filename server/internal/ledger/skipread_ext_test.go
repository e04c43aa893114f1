package ledger_test

import (
	"math"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycenter/paycenter/server/internal/ledger"
	"github.com/paycenter/paycenter/server/internal/pgdb"
)

// TestBatchesSkipTheirReadOnlyWhenNothingChanged: a group-commit batch on accounts this
// server wrote last skips its read, and one whose accounts changed elsewhere since (a
// payment's transaction, a freeze), or that reuses a transfer id, is decided on what it then
// reads, exactly as if it had never skipped anything.
func TestBatchesSkipTheirReadOnlyWhenNothingChanged(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	db, svc, admin := inProcess(t, ledger.Options{Registerer: reg})
	open := func(spec ledger.AccountSpec) string {
		a, err := svc.CreateAccount(admin, spec)
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	funding := open(ledger.AccountSpec{Code: ledger.ExternalFunding, Currency: "CNY"})
	avail := open(ledger.AccountSpec{MerchantID: "mch_1", Code: ledger.MerchantAvailable, Currency: "CNY",
		Limits: ledger.Limits{DebitsMustNotExceedCredits: true}})
	move := func(tid, from, to string, amount int64) ledger.Transfer {
		return ledger.Transfer{ID: tid, DebitAccountID: from, CreditAccountID: to, Amount: amount, Currency: "CNY", Code: ledger.CodeAdjustment}
	}
	create := func(ts ...ledger.Transfer) []ledger.Result {
		t.Helper()
		rs, err := svc.CreateTransfers(admin, ts)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	reads := map[string]float64{}
	// wantReads checks how the batches since the last call went.
	wantReads := func(step string, done, skipped, missed float64) {
		t.Helper()
		now := batchReads(t, reg)
		got := [3]float64{now["done"] - reads["done"], now["skipped"] - reads["skipped"], now["missed"] - reads["missed"]}
		if got != [3]float64{done, skipped, missed} {
			t.Fatalf("%s: batches read/skipped/missed %v, want %v", step, got, [3]float64{done, skipped, missed})
		}
		reads = now
	}
	balance := func() int64 {
		t.Helper()
		a, err := svc.Account(admin, avail)
		if err != nil {
			t.Fatal(err)
		}
		return a.Balance()
	}

	create(move("fund", funding, avail, 100))
	wantReads("first batch on the accounts", 1, 0, 0)
	back := move("back", avail, funding, 10)
	rs := create(back)
	wantReads("same accounts again", 0, 1, 0)
	stored, err := svc.Transfer(admin, "back")
	if err != nil || rs[0].Refusal != "" || !rs[0].Transfer.CreatedAt.Equal(stored.CreatedAt) || time.Since(stored.CreatedAt) > time.Minute {
		t.Fatalf("skipped read: result %+v, stored %+v %v: the result must show the stored, current timestamp", rs[0], stored, err)
	}

	// recache waits until accounts found changed may be remembered again, and has a batch
	// read and remember them.
	recache := func(step string) {
		t.Helper()
		time.Sleep(2 * ledger.ContendedFor)
		create(move(id("recache"), funding, avail, 1))
		wantReads(step+", once the account is no longer contended", 1, 0, 0)
	}

	// A payment's transaction spends 60 of the 90: the server still remembers 90.
	err = pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		rs, err := svc.Post(ctx, tx, []ledger.Transfer{move("payment", avail, funding, 60)})
		if err != nil {
			return err
		}
		return ledger.FirstRefusal(rs)
	})
	if err != nil {
		t.Fatal(err)
	}
	if rs := create(move("overdraw", avail, funding, 50)); rs[0].Refusal != ledger.RefusedExceedsCredits {
		t.Fatalf("spending 50 of 30: %+v", rs[0])
	}
	wantReads("after a payment's transaction", 1, 0, 1)
	create(move("read-first", funding, avail, 1))
	wantReads("right after a miss", 1, 0, 0)
	recache("after a payment's transaction")
	if b := balance(); b != 32 {
		t.Fatalf("balance %d, want 32", b)
	}

	// A freeze, while the server remembers the account unfrozen, then the other way round.
	if _, err := svc.Freeze(admin, avail, "audit"); err != nil {
		t.Fatal(err)
	}
	if rs := create(move("to-frozen", funding, avail, 5)); rs[0].Refusal != ledger.RefusedAccountFrozen {
		t.Fatalf("frozen account: %+v", rs[0])
	}
	wantReads("after a freeze", 1, 0, 1)
	time.Sleep(2 * ledger.ContendedFor)
	if rs := create(move("still-frozen", funding, avail, 5)); rs[0].Refusal != ledger.RefusedAccountFrozen {
		t.Fatalf("frozen account: %+v", rs[0])
	}
	wantReads("frozen, once no longer contended", 1, 0, 0)
	if _, err := svc.Unfreeze(admin, avail); err != nil {
		t.Fatal(err)
	}
	if rs := create(move("unfrozen", funding, avail, 5)); rs[0].Refusal != "" {
		t.Fatalf("unfrozen account: %+v", rs[0])
	}
	wantReads("after the unfreeze", 1, 0, 1)
	recache("after the unfreeze")

	// A retried id returns its original result.
	again := create(back)
	if !again[0].Replayed || !again[0].Transfer.CreatedAt.Equal(stored.CreatedAt) {
		t.Fatalf("retried transfer: %+v, want the original of %s", again[0], stored.CreatedAt)
	}
	wantReads("a retried id", 1, 0, 1)
	recache("after a retried id")
	// An id taken by other content fails its chain without recording the chain's other
	// transfer, which then applies once the money is there.
	spend := move("spend", avail, funding, 1000)
	chain := []ledger.Transfer{move("back", avail, funding, 11), spend}
	chain[0].Linked = true
	rs = create(chain...)
	if rs[0].Refusal != ledger.RefusedExistsWithDifferentContent || rs[1].Refusal != ledger.RefusedLinkedTransferFailed {
		t.Fatalf("chain with a taken id: %+v", rs)
	}
	wantReads("a taken id", 1, 0, 1)
	recache("after a taken id")
	create(move("top-up", funding, avail, 1000))
	if rs := create(spend); rs[0].Refusal != "" || rs[0].Replayed {
		t.Fatalf("the chain's other transfer, retried once funded: %+v", rs[0])
	}
	wantReads("nothing changed elsewhere", 0, 2, 0)
	if b := balance(); b != 40 {
		t.Fatalf("balance %d, want 40", b)
	}
}

// batchReads returns paycenter_ledger_batch_reads_total by its read label.
func batchReads(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, read := range []string{"done", "skipped", "missed"} {
		if v := metricValue(t, reg, "paycenter_ledger_batch_reads_total", map[string]string{"read": read}); !math.IsNaN(v) {
			out[read] = v
		}
	}
	return out
}
