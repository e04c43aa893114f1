package ledger

import (
	"context"
	"sync"
	"time"
)

// call is one CreateTransfers request waiting for its batch.
type call struct {
	transfers []Transfer
	// accounts are the accounts the request names (post and void name theirs only through
	// the pending transfer, which the batcher does not read: they count as none).
	accounts []string
	results  []Result
	err      error
	done     chan struct{}
}

// batcher group-commits concurrent requests. Requests are queued; a committer begins a
// transaction, then takes everything queued (up to maxBatch transfers, whole requests only)
// and applies it as one batch, while the next batch gathers. Committers start on demand and
// end when nothing is left for them, so the batcher owns no goroutine while idle and needs no
// Close: a queued request always has a committer coming for it.
//
// When a worthwhile batch is waiting, more committers start, up to workers, and they do not fight
// over locks: a committer takes only requests whose accounts no other batch in flight holds,
// so concurrent batches touch disjoint accounts and commit in parallel, and a request on a
// busy account waits in the queue for the next batch. That is only scheduling: the accounts
// are locked either way.
type batcher struct {
	workers  int
	maxBatch int
	linger   time.Duration
	// commit runs one batch: it starts a transaction, then calls take for the requests to
	// apply. take returns nil when there is nothing left to take.
	commit func(take func() []*call)

	mu       sync.Mutex
	queue    []*call
	queued   int            // transfers in queue
	inflight map[string]int // accounts → batches in flight that name them
	running  int
}

// submit queues transfers and waits for their results. When ctx ends first, the request may
// still be applied: its ids make a retry safe.
func (b *batcher) submit(ctx context.Context, transfers []Transfer) ([]Result, error) {
	c := &call{transfers: transfers, accounts: accountsOf(transfers), done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	b.queued += len(transfers)
	// Another committer helps once a worthwhile batch waits (so requests need not wait out
	// the running batch's durable commit) and only with requests it can take now.
	if b.running == 0 || (b.running < b.workers && b.queued >= parallelBatch && b.free(c)) {
		b.running++
		go b.work()
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.results, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func accountsOf(transfers []Transfer) []string {
	out := make([]string, 0, 2*len(transfers))
	for _, t := range transfers {
		for _, id := range []string{t.DebitAccountID, t.CreditAccountID} {
			if id != "" {
				out = append(out, id)
			}
		}
	}
	return out
}

// parallelBatch is how many queued transfers justify another committer: enough that its
// transaction is worth its round trips, few enough that a committer starts while the first is
// still waiting for its commit to be durable.
const parallelBatch = 16

// free reports whether no batch in flight names any of c's accounts.
func (b *batcher) free(c *call) bool {
	for _, id := range c.accounts {
		if b.inflight[id] > 0 {
			return false
		}
	}
	return true
}

func (b *batcher) work() {
	for {
		b.mu.Lock()
		takeable := false
		for _, c := range b.queue {
			if takeable = b.free(c); takeable {
				break
			}
		}
		if !takeable {
			// What is left waits for accounts of a batch in flight, whose committer takes it
			// next.
			b.running--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		var taken []*call
		b.commit(func() []*call {
			taken = b.take()
			return taken
		})
		b.release(taken)
	}
}

// take removes the next batch from the queue: queued requests in order, skipping those whose
// accounts another batch in flight holds. It returns nil when nothing can be taken.
func (b *batcher) take() []*call {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.linger > 0 && len(b.queue) > 0 && b.queued < b.maxBatch {
		// Give concurrent requests a moment to join a small batch.
		b.mu.Unlock()
		time.Sleep(b.linger)
		b.mu.Lock()
	}
	var calls []*call
	size, kept := 0, 0
	for _, c := range b.queue {
		if (len(calls) > 0 && size+len(c.transfers) > b.maxBatch) || !b.free(c) {
			b.queue[kept] = c
			kept++
			continue
		}
		calls = append(calls, c)
		size += len(c.transfers)
	}
	clear(b.queue[kept:])
	b.queue = b.queue[:kept]
	b.queued -= size
	if b.inflight == nil {
		b.inflight = map[string]int{}
	}
	for _, c := range calls {
		for _, id := range c.accounts {
			b.inflight[id]++
		}
	}
	return calls
}

// release marks a committed batch's accounts free again.
func (b *batcher) release(calls []*call) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range calls {
		for _, id := range c.accounts {
			if b.inflight[id]--; b.inflight[id] <= 0 {
				delete(b.inflight, id)
			}
		}
	}
}
