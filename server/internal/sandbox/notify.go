package sandbox

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Fault makes the sandbox misbehave while delivering notifications, the way
// real gateways occasionally do, so merchants can prove they cope. Faults
// combine: Drop with Forge sends only the forged copy.
type Fault struct {
	// Delay holds the notification back before its first attempt.
	Delay time.Duration
	// Duplicate delivers this many extra copies (same notification id,
	// single attempt each) right after the genuine one.
	Duplicate int
	// Reorder holds the notification back until a later notification of the
	// same sandbox has been attempted (or Options.ReorderHold has passed), so
	// later events arrive before earlier ones.
	Reorder bool
	// Drop never delivers the genuine notification.
	Drop bool
	// Forge also delivers, first and once, a copy whose signature does not
	// verify, as an attacker posting to the notify URL would.
	Forge bool
}

func (f Fault) merge(g Fault) Fault {
	return Fault{
		Delay:     max(f.Delay, g.Delay),
		Duplicate: max(f.Duplicate, g.Duplicate),
		Reorder:   f.Reorder || g.Reorder,
		Drop:      f.Drop || g.Drop,
		Forge:     f.Forge || g.Forge,
	}
}

// Delivery records one attempt (or a drop) of a notification.
type Delivery struct {
	NotificationID string    `json:"notification_id"`
	OutTradeNo     string    `json:"out_trade_no"`
	Event          string    `json:"event"`
	URL            string    `json:"url"`
	Attempt        int       `json:"attempt"` // 1 for the first try of a copy
	Forged         bool      `json:"forged,omitempty"`
	Duplicate      bool      `json:"duplicate,omitempty"`
	Dropped        bool      `json:"dropped,omitempty"` // never sent, by Fault.Drop
	StatusCode     int       `json:"status_code,omitempty"`
	Error          string    `json:"error,omitempty"`
	Accepted       bool      `json:"accepted"` // the merchant answered in the channel's success format
	At             time.Time `json:"at"`
}

// message is one notification to a merchant. build is called for every
// attempt so that signatures and timestamps are fresh (WeChat Pay's SDK
// rejects timestamps older than five minutes).
type message struct {
	id         string
	outTradeNo string
	event      string
	url        string
	build      func(ctx context.Context, forged bool) (*http.Request, error)
	accepted   func(status int, body []byte) bool
}

type delivery struct {
	msg       *message
	nseq      int64 // order of the notification
	seq       int64 // order of this copy, to break ties between equal due times
	due       time.Time
	attempts  int
	forged    bool
	duplicate bool
	noRetry   bool // forged copies and duplicates get one attempt
	held      bool // waiting for a later notification (Fault.Reorder)
}

// maxHistory bounds the delivery log of a long-running sandbox.
const maxHistory = 2000

// notifier delivers notifications from one goroutine, in due-time order,
// retrying on the channel's schedule. Its mutex is a leaf: it never calls
// back into the sandbox while holding it.
type notifier struct {
	log      *slog.Logger
	client   *http.Client
	schedule []time.Duration
	hold     time.Duration

	mu         sync.Mutex
	queue      []*delivery
	busy       bool
	nseq, seq  int64
	nextFaults []Fault
	tradeFault map[string]Fault
	history    []Delivery
	changed    chan struct{} // closed and replaced whenever the state changes

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func newNotifier(log *slog.Logger, client *http.Client, schedule []time.Duration, hold time.Duration) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{
		log: log, client: client, schedule: schedule, hold: hold,
		tradeFault: map[string]Fault{},
		changed:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		ctx:        ctx, cancel: cancel,
		done: make(chan struct{}),
	}
	go n.run()
	return n
}

// close stops delivery, aborting an attempt in flight, and waits for the
// goroutine to end. Undelivered notifications are discarded.
func (n *notifier) close() {
	n.once.Do(func() {
		n.cancel()
		<-n.done
	})
}

func (n *notifier) faultNext(f Fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nextFaults = append(n.nextFaults, f)
}

func (n *notifier) faultTrade(outTradeNo string, f Fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f == (Fault{}) {
		delete(n.tradeFault, outTradeNo)
		return
	}
	n.tradeFault[outTradeNo] = f
}

func (n *notifier) deliveries() []Delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Delivery{}, n.history...)
}

// waitIdle returns once nothing is queued or in flight, or ctx ends.
func (n *notifier) waitIdle(ctx context.Context) error {
	for {
		n.mu.Lock()
		idle := len(n.queue) == 0 && !n.busy
		changed := n.changed
		n.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// enqueue schedules msg, applying the pending faults.
func (n *notifier) enqueue(msg *message) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.tradeFault[msg.outTradeNo]
	if len(n.nextFaults) > 0 {
		f = f.merge(n.nextFaults[0])
		n.nextFaults = n.nextFaults[1:]
	}
	n.nseq++
	now := time.Now()
	due := now.Add(f.Delay)
	if f.Reorder {
		due = due.Add(n.hold)
	}
	push := func(forged, duplicate bool) {
		n.seq++
		n.queue = append(n.queue, &delivery{
			msg: msg, nseq: n.nseq, seq: n.seq, due: due,
			forged: forged, duplicate: duplicate, noRetry: forged || duplicate, held: f.Reorder,
		})
	}
	if f.Forge {
		push(true, false)
	}
	if f.Drop {
		n.record(Delivery{
			NotificationID: msg.id, OutTradeNo: msg.outTradeNo, Event: msg.event, URL: msg.url,
			Dropped: true, At: now,
		})
		n.log.Info("sandbox notification dropped on purpose", "id", msg.id, "event", msg.event, "out_trade_no", msg.outTradeNo)
	} else {
		push(false, false)
		for range f.Duplicate {
			push(false, true)
		}
	}
	n.signal()
}

// record appends to the bounded history. Callers hold n.mu.
func (n *notifier) record(d Delivery) {
	if len(n.history) == maxHistory {
		n.history = append(n.history[:0], n.history[1:]...)
	}
	n.history = append(n.history, d)
	n.broadcast()
}

// broadcast wakes waitIdle callers. Callers hold n.mu.
func (n *notifier) broadcast() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// signal wakes the delivery goroutine. Callers hold n.mu.
func (n *notifier) signal() {
	n.broadcast()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the first due delivery, or says how long to wait
// for the next one (negative when the queue is empty).
func (n *notifier) take(now time.Time) (*delivery, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.queue) == 0 {
		return nil, -1
	}
	sort.Slice(n.queue, func(i, j int) bool {
		a, b := n.queue[i], n.queue[j]
		if !a.due.Equal(b.due) {
			return a.due.Before(b.due)
		}
		return a.seq < b.seq
	})
	d := n.queue[0]
	if wait := d.due.Sub(now); wait > 0 {
		return nil, wait
	}
	n.queue = n.queue[1:]
	n.busy = true
	return d, 0
}

func (n *notifier) run() {
	defer close(n.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		d, wait := n.take(time.Now())
		if d != nil {
			n.attempt(d)
			continue
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-n.ctx.Done():
			timer.Stop()
			return
		case <-n.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// attemptTimeout bounds one delivery so a hanging merchant cannot stall the
// queue for long.
const attemptTimeout = 10 * time.Second

func (n *notifier) attempt(d *delivery) {
	status, errText, ok := n.send(d)

	n.mu.Lock()
	defer n.mu.Unlock()
	n.busy = false
	d.attempts++
	n.record(Delivery{
		NotificationID: d.msg.id, OutTradeNo: d.msg.outTradeNo, Event: d.msg.event, URL: d.msg.url,
		Attempt: d.attempts, Forged: d.forged, Duplicate: d.duplicate,
		StatusCode: status, Error: errText, Accepted: ok, At: time.Now(),
	})
	if d.attempts == 1 {
		// A later notification has gone out: release the ones held for it.
		for _, q := range n.queue {
			if q.held && q.nseq < d.nseq {
				q.held, q.due = false, time.Now()
			}
		}
	}
	attrs := []any{"id", d.msg.id, "event", d.msg.event, "out_trade_no", d.msg.outTradeNo,
		"attempt", d.attempts, "status", status, "forged", d.forged}
	switch {
	case ok:
		n.log.Debug("sandbox notification accepted", attrs...)
	case d.noRetry || d.attempts > len(n.schedule) || n.ctx.Err() != nil:
		n.log.Warn("sandbox notification not accepted, giving up", append(attrs, "error", errText)...)
	default:
		d.due = time.Now().Add(n.schedule[d.attempts-1])
		d.held = false
		n.queue = append(n.queue, d)
		n.log.Info("sandbox notification not accepted, will retry", append(attrs, "error", errText, "retry_at", d.due)...)
	}
}

// send performs one HTTP attempt without holding the lock.
func (n *notifier) send(d *delivery) (status int, errText string, ok bool) {
	ctx, cancel := context.WithTimeout(n.ctx, attemptTimeout)
	defer cancel()
	req, err := d.msg.build(ctx, d.forged)
	if err != nil {
		return 0, err.Error(), false
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, err.Error(), false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, err.Error(), false
	}
	return resp.StatusCode, "", d.msg.accepted(resp.StatusCode, body)
}
