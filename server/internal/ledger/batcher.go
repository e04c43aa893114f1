package ledger

import (
	"context"
	"sync"
	"time"
)

// call is one CreateTransfers request waiting for its batch.
type call struct {
	transfers []Transfer
	results   []Result
	err       error
	done      chan struct{}
}

// batcher group-commits concurrent requests. Requests are queued; committers take
// everything queued (up to maxBatch transfers, whole requests only) into one database
// transaction. Committers are started on demand, at most workers at a time, and end when the
// queue is empty, so the batcher owns no goroutine while idle and needs no Close: a request
// in the queue always has a committer coming for it.
type batcher struct {
	workers  int
	maxBatch int
	linger   time.Duration
	commit   func(calls []*call)

	mu      sync.Mutex
	queue   []*call
	running int
}

// submit queues transfers and waits for their results. When ctx ends first, the request may
// still be applied: its ids make a retry safe.
func (b *batcher) submit(ctx context.Context, transfers []Transfer) ([]Result, error) {
	c := &call{transfers: transfers, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if b.running < b.workers {
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

func (b *batcher) work() {
	for {
		calls := b.take()
		if calls == nil {
			return
		}
		b.commit(calls)
	}
}

// take removes the next batch from the queue, or returns nil (and retires the committer)
// when the queue is empty.
func (b *batcher) take() []*call {
	b.mu.Lock()
	if b.linger > 0 && len(b.queue) > 0 && b.queued() < b.maxBatch {
		// Give concurrent requests a moment to join a small batch.
		b.mu.Unlock()
		time.Sleep(b.linger)
		b.mu.Lock()
	}
	if len(b.queue) == 0 {
		b.running--
		b.mu.Unlock()
		return nil
	}
	n, size := 0, 0
	for n < len(b.queue) && (n == 0 || size+len(b.queue[n].transfers) <= b.maxBatch) {
		size += len(b.queue[n].transfers)
		n++
	}
	calls := make([]*call, n)
	copy(calls, b.queue)
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	b.mu.Unlock()
	return calls
}

func (b *batcher) queued() int {
	n := 0
	for _, c := range b.queue {
		n += len(c.transfers)
	}
	return n
}
