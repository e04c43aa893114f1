package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/page"
	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
	"github.com/paycenter/paycenter/server/internal/secret"
	"github.com/paycenter/paycenter/server/internal/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a test database with the real merchant domain as the webhook Targets.
type env struct {
	db        *sqlx.DB
	merchants *merchant.Service
	admin     context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	keyring, err := secret.ParseKeyring(secret.NewKeySpec("k1"))
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.DB(t)
	return &env{
		db:        db,
		merchants: merchant.NewService(merchant.NewStore(db), keyring),
		admin:     auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.KindAdmin}),
	}
}

// testApp is an app and what a consumer of its webhooks knows.
type testApp struct {
	ID, MerchantID, Secret string
}

// app creates a merchant with one app whose webhooks go to url ("" for none).
func (e *env) app(t *testing.T, url string) testApp {
	t.Helper()
	m, err := e.merchants.CreateMerchant(e.admin, "Property Co", "")
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.merchants.CreateApp(e.admin, m.ID, "billing", url)
	if err != nil {
		t.Fatal(err)
	}
	return testApp{ID: a.App.ID, MerchantID: m.ID, Secret: a.WebhookSecret}
}

func (e *env) setURL(t *testing.T, appID, url string) {
	t.Helper()
	if _, err := e.merchants.UpdateApp(e.admin, appID, merchant.AppUpdate{WebhookURL: &url}); err != nil {
		t.Fatal(err)
	}
}

// service returns a Service on the test database with fast polling, registering its
// metrics in a registry of its own.
func (e *env) service(t *testing.T, opts webhook.Options) (*webhook.Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	if opts.PollInterval == 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	return webhook.New(e.db, e.merchants, opts), reg
}

// run runs svc's dispatcher until the test ends.
func run(t *testing.T, svc *webhook.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
}

// enqueue commits events in one transaction.
func enqueue(t *testing.T, db *sqlx.DB, svc *webhook.Service, events ...webhook.Event) {
	t.Helper()
	err := pgdb.InTx(context.Background(), db, func(tx *sqlx.Tx) error {
		for _, e := range events {
			if err := svc.Enqueue(context.Background(), tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func paymentEvent(app testApp, id, tradeNo string) webhook.Event {
	return webhook.Event{ID: id, Type: webhook.PaymentSucceeded, AppID: app.ID, MerchantID: app.MerchantID,
		TradeNo: tradeNo, Data: json.RawMessage(`{"trade_no": "` + tradeNo + `", "amount": "100"}`)}
}

// all lists every event of the app matching f, through pagination.
func all(t *testing.T, svc *webhook.Service, appID string, f webhook.ListFilter) []webhook.EventWithAttempts {
	t.Helper()
	var out []webhook.EventWithAttempts
	token := ""
	for {
		evs, next, err := svc.List(context.Background(), appID, f, page.Request{Size: 100, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
		if next == "" {
			return out
		}
		token = next
	}
}

// event returns one event of the app.
func event(t *testing.T, svc *webhook.Service, appID, id string) webhook.EventWithAttempts {
	t.Helper()
	for _, e := range all(t, svc, appID, webhook.ListFilter{}) {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("event %s not listed", id)
	return webhook.EventWithAttempts{}
}

// eventually fails the test if cond is not true within 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settled waits for event id to have n attempts, the last with a recorded outcome.
func settled(t *testing.T, svc *webhook.Service, appID, id string, n int) webhook.EventWithAttempts {
	t.Helper()
	var e webhook.EventWithAttempts
	eventually(t, "attempt to be recorded", func() bool {
		e = event(t, svc, appID, id)
		return len(e.Attempts) == n && e.Attempts[n-1].Result != webhook.ResultSending && e.Status != webhook.StatusSending
	})
	return e
}

// quiet asserts that event id still has n attempts after several poll intervals.
func quiet(t *testing.T, svc *webhook.Service, appID, id string, n int) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	if got := len(event(t, svc, appID, id).Attempts); got != n {
		t.Fatalf("event %s has %d attempts, want still %d", id, got, n)
	}
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// delivery is one POST a receiver got.
type delivery struct {
	EventID string
	Body    []byte
	Header  http.Header
	SigErr  error
}

// receiver is an app's webhook endpoint: it verifies every request like a consumer and
// answers what respond says (200 when nil) for the n-th delivery (1-based) of an event.
type receiver struct {
	*httptest.Server
	secret  string
	now     func() time.Time
	respond func(w http.ResponseWriter, r *http.Request, eventID string, n int)

	mu         sync.Mutex
	deliveries []delivery
	count      map[string]int
	inflight   map[string]int
	overlap    []string // event ids delivered twice at once
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, eventID string, n int)) *receiver {
	rc := &receiver{respond: respond, now: time.Now, count: map[string]int{}, inflight: map[string]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("Paycenter-Event-Id")
	rc.mu.Lock()
	sigErr := webhook.Verify(rc.secret, r.Header.Get("Paycenter-Signature"), body, 0, rc.now())
	rc.deliveries = append(rc.deliveries, delivery{EventID: id, Body: body, Header: r.Header.Clone(), SigErr: sigErr})
	rc.count[id]++
	n := rc.count[id]
	rc.inflight[id]++
	if rc.inflight[id] > 1 {
		rc.overlap = append(rc.overlap, id)
	}
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inflight[id]--
		rc.mu.Unlock()
	}()
	if rc.respond != nil {
		rc.respond(w, r, id, n)
	}
}

// expect sets the secret (and clock) the receiver verifies signatures with.
func (rc *receiver) expect(secret string, now func() time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = secret
	if now != nil {
		rc.now = now
	}
}

func (rc *receiver) got() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.deliveries...)
}

func (rc *receiver) hits(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.count[id]
}

// refusedURL is a URL nothing listens on.
func refusedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hook"
}

// metric returns a metric's value by name and optional result label.
func metric(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := result == ""
			for _, l := range m.GetLabel() {
				match = match || (l.GetName() == "result" && l.GetValue() == result)
			}
			if !match {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{result=%q} not found", name, result)
	return 0
}
