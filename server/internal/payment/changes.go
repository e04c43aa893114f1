package payment

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// changesChannel is the PostgreSQL notification channel on which a trigger (migration 00006)
// sends a payment's trade_no whenever its status, refunded amount or duplicate flag changes,
// whichever replica changed it.
const changesChannel = "paycenter_payment_changed"

// Changes wakes this replica's WatchPayment streams when PostgreSQL reports that their payment
// changed: one LISTEN connection per replica, instead of every open cashier page polling the
// database. A zero Changes is not usable; see NewChanges.
type Changes struct {
	dsn    string
	logger *slog.Logger

	listening chan struct{} // closed once LISTEN took effect
	live      atomic.Bool   // listening now (false while the connection is down)

	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// NewChanges returns Changes that will listen on the database of dsn once Run is called.
func NewChanges(dsn string, logger *slog.Logger) *Changes {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Changes{dsn: dsn, logger: logger, listening: make(chan struct{}), subs: map[string]map[chan struct{}]struct{}{}}
}

// Listening is closed once Run's LISTEN took effect: changes made from then on wake watchers.
func (c *Changes) Listening() <-chan struct{} { return c.listening }

// Live reports whether changes wake watchers now; while it is false (not yet listening, or
// the connection was lost) watchers must poll.
func (c *Changes) Live() bool { return c != nil && c.live.Load() }

// Subscribe returns a channel that receives after payment tradeNo changes (several changes
// may arrive as one), and the function that ends the subscription.
func (c *Changes) Subscribe(tradeNo string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.subs[tradeNo] == nil {
		c.subs[tradeNo] = map[chan struct{}]struct{}{}
	}
	c.subs[tradeNo][ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.subs[tradeNo], ch)
		if len(c.subs[tradeNo]) == 0 {
			delete(c.subs, tradeNo)
		}
	}
}

// wake signals the subscribers of tradeNo, or all of them when tradeNo is "".
func (c *Changes) wake(tradeNo string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	signal := func(subs map[chan struct{}]struct{}) {
		for ch := range subs {
			select {
			case ch <- struct{}{}:
			default: // already signalled, not yet read
			}
		}
	}
	if tradeNo != "" {
		signal(c.subs[tradeNo])
		return
	}
	for _, subs := range c.subs {
		signal(subs)
	}
}

// Run listens until ctx ends. Whenever the connection is (re)established every subscriber is
// woken, because notifications sent while it was down are lost.
func (c *Changes) Run(ctx context.Context) {
	l := pq.NewListener(c.dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if ev == pq.ListenerEventDisconnected {
			c.live.Store(false)
		}
		switch {
		case ev == pq.ListenerEventConnectionAttemptFailed && ctx.Err() == nil:
			c.logger.Warn("payment changes: cannot connect to listen", "error", err)
		case ev == pq.ListenerEventDisconnected && ctx.Err() == nil:
			c.logger.Warn("payment changes: listening connection lost", "error", err)
		}
	})
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stop()
	defer l.Close()
	defer c.live.Store(false)
	// Listen blocks until the server confirms (reconnecting as needed) or Close is called.
	if err := l.Listen(changesChannel); err != nil {
		if ctx.Err() == nil {
			c.logger.Error("payment changes: LISTEN failed; watchers poll instead", "error", err)
		}
		return
	}
	c.live.Store(true)
	close(c.listening)
	c.wake("") // anything that changed before LISTEN took effect
	ping := time.NewTicker(time.Minute)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n, ok := <-l.Notify:
			switch {
			case !ok:
				return
			case n == nil: // reconnected: notifications may have been missed
				c.live.Store(true)
				c.wake("")
			default:
				c.wake(n.Extra)
			}
		case <-ping.C:
			// Find a silently dead connection (a quiet channel looks the same).
			go func() { _ = l.Ping() }()
		}
	}
}
