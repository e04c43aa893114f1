package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/page"
	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
)

// staticTargets sends every app's webhooks to one URL.
type staticTargets struct{ url, secret string }

func (s staticTargets) WebhookTarget(context.Context, string) (string, string, error) {
	return s.url, s.secret, nil
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// setup returns a Service on a fresh database holding one pending event "evt_1" of app_1.
func setup(t *testing.T, url string, clk *testClock) (*Service, *sqlx.DB) {
	t.Helper()
	db := pgtest.DB(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `INSERT INTO merchants (merchant_id, name, status) VALUES ('mch_1', 'A', 'ACTIVE')`); err != nil {
		t.Fatal(err)
	}
	svc := New(db, staticTargets{url: url, secret: "whsec_test"}, Options{Now: clk.Now, PollInterval: 10 * time.Millisecond})
	err := pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		return svc.Enqueue(ctx, tx, Event{ID: "evt_1", Type: PaymentSucceeded, AppID: "app_1", MerchantID: "mch_1", TradeNo: "T1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, db
}

func get(t *testing.T, svc *Service) EventWithAttempts {
	t.Helper()
	evs, _, err := svc.List(context.Background(), "app_1", ListFilter{}, page.Request{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("List = %v, %v", evs, err)
	}
	return evs[0]
}

// A dispatcher that dies mid-attempt leaves the event SENDING under a lease: nobody else
// sends it (not even on Redeliver) until the lease ends; then it is retried as the next attempt
// and the lost one shows as interrupted.
func TestLostAttemptIsRetriedAfterItsLease(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	rc := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(rc.Close)
	clk := &testClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	svc, _ := setup(t, rc.URL, clk)
	ctx := context.Background()

	claimed, err := svc.store.claim(ctx, svc.now(), svc.lease, 10) // then the dispatcher dies
	if err != nil || len(claimed) != 1 || claimed[0].Attempts != 1 {
		t.Fatalf("claim = %+v, %v", claimed, err)
	}
	if e := get(t, svc); e.Status != StatusSending || len(e.Attempts) != 1 || e.Attempts[0].Error != "in progress" {
		t.Fatalf("claimed event = %+v", e)
	}
	e, err := svc.Redeliver(ctx, "app_1", "evt_1")
	if err != nil || e.Status != StatusSending {
		t.Fatalf("Redeliver during an attempt = %+v, %v; want it unchanged", e, err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- svc.Run(runCtx) }()
	defer func() { stop(); <-done }()

	clk.Advance(svc.lease - time.Second)
	time.Sleep(100 * time.Millisecond)
	if hits.Load() != 0 {
		t.Fatal("an event under lease was sent")
	}
	clk.Advance(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for e = get(t, svc); e.Status != StatusDelivered; e = get(t, svc) {
		if time.Now().After(deadline) {
			t.Fatalf("event not retried after its lease: %+v", e)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if hits.Load() != 1 || len(e.Attempts) != 2 || e.Attempts[1].Result != ResultDelivered ||
		e.Attempts[0].Result != ResultSending || e.Attempts[0].Error != "no outcome recorded: the dispatcher stopped during the attempt" {
		t.Fatalf("after the lease: %d requests, %+v", hits.Load(), e.Attempts)
	}
}

// A dispatcher that records its outcome after its lease ran out and another attempt began
// writes its attempt row but cannot move the event: the newer attempt decides.
func TestStaleAttemptCannotOverwriteTheNewerOne(t *testing.T) {
	t.Parallel()
	clk := &testClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	svc, _ := setup(t, "http://127.0.0.1:9/", clk)
	ctx := context.Background()
	first, err := svc.store.claim(ctx, svc.now(), svc.lease, 1)
	if err != nil || len(first) != 1 {
		t.Fatal(first, err)
	}
	clk.Advance(svc.lease + time.Second)
	second, err := svc.store.claim(ctx, svc.now(), svc.lease, 1)
	if err != nil || len(second) != 1 || second[0].Attempts != 2 {
		t.Fatalf("reclaim = %+v, %v", second, err)
	}
	if err := svc.store.finish(ctx, first[0], outcome{result: ResultDelivered, httpStatus: 200, status: StatusDelivered, at: svc.now()}); err != nil {
		t.Fatal(err)
	}
	if e := get(t, svc); e.Status != StatusSending || e.Attempts[0].Result != ResultDelivered {
		t.Fatalf("after the stale outcome: %+v", e)
	}
	next := svc.now().Add(time.Minute)
	if err := svc.store.finish(ctx, second[0], outcome{result: ResultHTTPError, httpStatus: 500, errText: "HTTP 500", status: StatusPending, next: &next, at: svc.now()}); err != nil {
		t.Fatal(err)
	}
	if e := get(t, svc); e.Status != StatusPending || !e.NextAttemptAt.Equal(next) || e.Attempts[1].HTTPStatus != 500 {
		t.Fatalf("after the current outcome: %+v", e)
	}
}

func TestCleanKeepsErrorTextStorable(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"plain":    {"HTTP 500: oops", "HTTP 500: oops"},
		"controls": {"a\x00b\nc", "a b c"},
		"invalid":  {"a\xffb", "a?b"},
	} {
		if got := clean(tc.in); got != tc.want {
			t.Errorf("%s: clean(%q) = %q, want %q", name, tc.in, got, tc.want)
		}
	}
	long := clean(string(make([]rune, 600)) + "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé")
	if len(long) > maxErrorText {
		t.Errorf("clean kept %d bytes", len(long))
	}
}
