package ledger

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReconcileMatchesByReference(t *testing.T) {
	d, c := DirectionDebit, DirectionCredit
	for _, tc := range []struct {
		name         string
		ours, theirs []Record
		want         Reconciliation
	}{
		{name: "all match",
			ours:   []Record{{"A", 1, c}, {"B", 2, d}},
			theirs: []Record{{"B", 2, d}, {"A", 1, c}},
			want:   Reconciliation{Matched: 2}},
		{name: "missing on each side",
			ours:   []Record{{"A", 1, c}},
			theirs: []Record{{"B", 2, c}},
			want:   Reconciliation{MissingHere: []Record{{"B", 2, c}}, MissingThere: []Record{{"A", 1, c}}}},
		{name: "amount and direction differ",
			ours:   []Record{{"A", 1, c}, {"B", 5, d}},
			theirs: []Record{{"A", 2, d}, {"B", 5, c}},
			want: Reconciliation{Different: []Difference{
				{Reference: "A", Ours: Record{"A", 1, c}, Theirs: Record{"A", 2, d}, Reason: "amount,direction"},
				{Reference: "B", Ours: Record{"B", 5, d}, Theirs: Record{"B", 5, c}, Reason: "direction"},
			}}},
		{name: "one reference on several movements (payment and its fee)",
			ours:   []Record{{"T1", 1000, c}, {"T1", 6, d}},
			theirs: []Record{{"T1", 1000, c}},
			want:   Reconciliation{Matched: 1, MissingThere: []Record{{"T1", 6, d}}}},
		{name: "duplicates on their side",
			ours:   []Record{{"T1", 10, c}},
			theirs: []Record{{"T1", 10, c}, {"T1", 10, c}},
			want:   Reconciliation{Matched: 1, MissingHere: []Record{{"T1", 10, c}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reconcile(tc.ours, tc.theirs); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestFingerprintIsContentOnly(t *testing.T) {
	base := Transfer{ID: "t1", DebitAccountID: "a", CreditAccountID: "b", Amount: 5, Currency: "CNY", Code: CodeFee,
		Metadata: map[string]string{"x": "1", "y": "2"}}
	same := base
	same.Linked = true
	same.Metadata = map[string]string{"y": "2", "x": "1"}
	if !bytes.Equal(fingerprint(base), fingerprint(same)) {
		t.Fatal("metadata order or linked changed the fingerprint")
	}
	for name, mutate := range map[string]func(*Transfer){
		"amount":    func(t *Transfer) { t.Amount = 6 },
		"reference": func(t *Transfer) { t.Reference = "r" },
		"metadata":  func(t *Transfer) { t.Metadata = map[string]string{"x": "12"} },
		"pending":   func(t *Transfer) { t.Pending = true },
		// Length prefixes keep field boundaries: "ab"+"" is not "a"+"b".
		"boundaries": func(t *Transfer) { t.DebitAccountID, t.CreditAccountID = "ab", "" },
	} {
		other := base
		mutate(&other)
		if bytes.Equal(fingerprint(base), fingerprint(other)) {
			t.Errorf("%s did not change the fingerprint", name)
		}
	}
}

// TestEngineRollsBackAFailedChain checks the in-memory rules without a database.
func TestEngineRollsBackAFailedChain(t *testing.T) {
	accounts := map[string]*Account{
		"avail": {ID: "avail", Code: MerchantAvailable, Currency: "CNY", DebitsMustNotExceedCredits: true, CreditsPosted: 100},
		"fees":  {ID: "fees", Code: PlatformFees, Currency: "CNY"},
	}
	e := newEngine(time.Now(), accounts, map[string]*record{})
	mk := func(id string, amount int64, linked, pending bool) *entry {
		tr := Transfer{ID: id, DebitAccountID: "avail", CreditAccountID: "fees", Amount: amount, Currency: "CNY", Code: CodeFee, Linked: linked, Pending: pending}
		return &entry{t: tr, fp: fingerprint(tr)}
	}
	chain := []*entry{mk("a", 60, true, true), mk("b", 30, true, false), mk("c", 20, false, false), mk("d", 5, false, false)}
	e.request(chain)
	got := []Refusal{chain[0].result.Refusal, chain[1].result.Refusal, chain[2].result.Refusal, chain[3].result.Refusal}
	want := []Refusal{RefusedLinkedTransferFailed, RefusedLinkedTransferFailed, RefusedExceedsCredits, ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("refusals %v, want %v", got, want)
	}
	if a := accounts["avail"]; a.DebitsPosted != 5 || a.DebitsPending != 0 {
		t.Fatalf("avail after rollback: %+v", a)
	}
	// Only the refused transfer and d are written; a and b are forgotten.
	var ids []string
	for _, r := range e.inserts {
		ids = append(ids, fmt.Sprintf("%s:%s", r.ID, r.Status))
	}
	if !reflect.DeepEqual(ids, []string{"c:FAILED", "d:POSTED"}) {
		t.Fatalf("inserts %v", ids)
	}
	if e.known["a"] != nil || e.known["b"] != nil {
		t.Fatal("rolled back transfers are still known")
	}
}

func TestBatcherGroupsRequestsAndKeepsConcurrentBatchesApart(t *testing.T) {
	var (
		mu       sync.Mutex
		batches  [][]*call
		busy     = map[string]bool{} // accounts of the batches being committed
		overlaps int
	)
	var (
		b         *batcher
		submitted atomic.Int32
	)
	b = &batcher{workers: 2, maxBatch: 10, commit: func(take func() []*call) {
		// The transaction begins; meanwhile requests queue (a loaded machine may be slow to
		// start the submitting goroutines, so wait for a few).
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
			b.mu.Lock()
			queued := len(b.queue)
			b.mu.Unlock()
			if queued >= 3 || submitted.Load() == 60 {
				break
			}
		}
		calls := take()
		if calls == nil {
			return
		}
		mine := map[string]bool{}
		for _, c := range calls {
			for _, a := range c.accounts {
				mine[a] = true
			}
		}
		mu.Lock()
		batches = append(batches, calls)
		for a := range mine {
			if busy[a] {
				overlaps++
			}
			busy[a] = true
		}
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // and commits
		mu.Lock()
		for _, c := range calls {
			for _, a := range c.accounts {
				delete(busy, a)
			}
		}
		mu.Unlock()
		for _, c := range calls {
			c.results = make([]Result, len(c.transfers))
			close(c.done)
		}
	}}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := make([]Transfer, 1+i%4)
			for k := range ts {
				// Three hot accounts shared by many requests, plus one of their own.
				ts[k] = Transfer{DebitAccountID: fmt.Sprint("hot", i%3), CreditAccountID: fmt.Sprint("own", i)}
			}
			submitted.Add(1)
			rs, err := b.submit(context.Background(), ts)
			if err != nil || len(rs) != len(ts) {
				t.Errorf("request %d: %v, %d results", i, err, len(rs))
			}
		}()
	}
	wg.Wait()
	total, grouped := 0, false
	for _, calls := range batches {
		size := 0
		for _, c := range calls {
			size += len(c.transfers)
		}
		if size > 10 && len(calls) > 1 {
			t.Errorf("batch of %d transfers exceeds maxBatch", size)
		}
		grouped = grouped || len(calls) > 1
		total += len(calls)
	}
	if total != 60 || !grouped {
		t.Fatalf("%d requests committed in %d batches (grouped: %v)", total, len(batches), grouped)
	}
	if overlaps > 0 {
		t.Fatalf("concurrent batches shared accounts %d times", overlaps)
	}
	// Committers release a batch's accounts and end just after its results are out.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		running, queued, inflight, started := b.running, len(b.queue), len(b.inflight), len(b.started)
		b.mu.Unlock()
		if running == 0 && queued == 0 && inflight == 0 && started == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle batcher: %d committers, %d queued, %d accounts and %d batches in flight", running, queued, inflight, started)
		}
	}
}

// stuckBatcher commits requests at once, except a batch whose first request debits "stuck":
// that one waits until release is closed.
type stuckBatcher struct {
	*batcher
	release chan struct{}
}

func newStuckBatcher(stuckAfter time.Duration) *stuckBatcher {
	sb := &stuckBatcher{release: make(chan struct{})}
	sb.batcher = &batcher{workers: 2, maxBatch: 10, stuckAfter: stuckAfter, commit: func(take func() []*call) {
		calls := take()
		if calls == nil {
			return
		}
		if calls[0].accounts[0] == "stuck" {
			<-sb.release
		}
		for _, c := range calls {
			c.results = make([]Result, len(c.transfers))
			close(c.done)
		}
	}}
	return sb
}

// submit sends one transfer in the background; its error arrives on the channel.
func (sb *stuckBatcher) submit(debit, credit string) chan error {
	done := make(chan error, 1)
	go func() {
		_, err := sb.batcher.submit(context.Background(), []Transfer{{DebitAccountID: debit, CreditAccountID: credit}})
		done <- err
	}()
	return done
}

// submitStuck sends the batch that gets stuck and waits until it is in flight.
func (sb *stuckBatcher) submitStuck() chan error {
	done := sb.submit("stuck", "x")
	for inFlight := 0; inFlight == 0; time.Sleep(time.Millisecond) {
		sb.mu.Lock()
		inFlight = len(sb.started)
		sb.mu.Unlock()
	}
	return done
}

// waiting reports whether done stays silent for 100ms.
func waiting(done chan error) bool {
	select {
	case <-done:
		return false
	case <-time.After(100 * time.Millisecond):
		return true
	}
}

func committed(t *testing.T, done chan error, failure string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal(failure)
	}
}

// One committer at a time, unless a batch is stuck: then another takes what the stuck batch
// does not hold, and requests on the stuck batch's accounts keep waiting.
func TestBatcherStartsAnotherCommitterOnlyBesideAStuckBatch(t *testing.T) {
	for _, stuckAfter := range []time.Duration{time.Hour, 10 * time.Millisecond} {
		b := newStuckBatcher(stuckAfter)
		stuck := b.submitStuck()
		time.Sleep(2 * stuckAfter % time.Hour) // past stuckAfter, when it is short
		other, same := b.submit("a", "b"), b.submit("x", "y")
		left := []chan error{stuck, same}
		if stuckAfter == time.Hour {
			if !waiting(other) {
				t.Fatal("a second committer started beside a batch that is not stuck")
			}
			left = append(left, other)
		} else {
			committed(t, other, "nothing committed beside a stuck batch")
			if !waiting(same) {
				t.Fatal("a request on the stuck batch's account was committed beside it")
			}
		}
		close(b.release)
		for _, done := range left {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A request queued before a batch got stuck does not wait for it, even when nothing else
// arrives afterwards.
func TestBatcherHelpsRequestsQueuedBeforeABatchGotStuck(t *testing.T) {
	b := newStuckBatcher(50 * time.Millisecond)
	defer close(b.release)
	b.submitStuck()
	committed(t, b.submit("a", "b"), "a request on free accounts waited for the stuck batch")
}
