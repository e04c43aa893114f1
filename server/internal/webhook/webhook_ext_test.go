package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/page"
	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/webhook"
)

func TestEventIsDeliveredOnlyIfItsTransactionCommitsAndOnlyOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, nil)
	app := e.app(t, rc.URL+"/hooks")
	rc.expect(app.Secret, nil)
	svc, reg := e.service(t, webhook.Options{})
	ctx := context.Background()

	boom := errors.New("payment update failed")
	err := pgdb.InTx(ctx, e.db, func(tx *sqlx.Tx) error {
		if err := svc.Enqueue(ctx, tx, paymentEvent(app, "evt_rolled_back", "T0")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v", err)
	}
	enqueue(t, e.db, svc, paymentEvent(app, "evt_committed", "T1"))
	// A retried transaction enqueues the same event id again (other data, even): no-op.
	again := paymentEvent(app, "evt_committed", "T1")
	again.Data = json.RawMessage(`{"other": true}`)
	enqueue(t, e.db, svc, again)

	run(t, svc)
	got := settled(t, svc, app.ID, "evt_committed", 1)
	quiet(t, svc, app.ID, "evt_committed", 1)

	if got.Status != webhook.StatusDelivered || got.Attempts[0].HTTPStatus != 200 || got.Attempts[0].Result != webhook.ResultDelivered || got.Attempts[0].Error != "" {
		t.Fatalf("event = %+v, want DELIVERED with one 200 attempt", got)
	}
	if evs := all(t, svc, app.ID, webhook.ListFilter{}); len(evs) != 1 {
		t.Fatalf("listed %d events, want 1 (rolled back and duplicate enqueues add none)", len(evs))
	}
	ds := rc.got()
	if len(ds) != 1 {
		t.Fatalf("receiver got %d deliveries, want 1", len(ds))
	}
	d := ds[0]
	if d.SigErr != nil {
		t.Fatalf("signature does not verify with the app's secret: %v", d.SigErr)
	}
	if d.EventID != "evt_committed" || d.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers = %v", d.Header)
	}
	var body struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		CreatedAt string          `json:"created_at"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(d.Body, &body); err != nil {
		t.Fatalf("body %s: %v", d.Body, err)
	}
	if _, err := time.Parse(time.RFC3339, body.CreatedAt); err != nil || body.ID != "evt_committed" || body.Type != "payment.succeeded" ||
		string(body.Data) != `{"trade_no":"T1","amount":"100"}` {
		t.Fatalf("body = %s", d.Body)
	}
	if got.Payload != string(d.Body) {
		t.Fatalf("listed payload %s differs from the body sent %s", got.Payload, d.Body)
	}
	if v := metric(t, reg, "paycenter_webhook_attempts_total", "delivered"); v != 1 {
		t.Fatalf("delivered attempts metric = %v, want 1", v)
	}
}

func TestEnqueueRejectsMalformedEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	app := e.app(t, "")
	svc, _ := e.service(t, webhook.Options{})
	valid := paymentEvent(app, "evt_1", "T1")
	for name, mutate := range map[string]func(*webhook.Event){
		"no id":         func(ev *webhook.Event) { ev.ID = "" },
		"long id":       func(ev *webhook.Event) { ev.ID = strings.Repeat("x", 129) },
		"unknown type":  func(ev *webhook.Event) { ev.Type = "payment.paid" },
		"no app":        func(ev *webhook.Event) { ev.AppID = "" },
		"no merchant":   func(ev *webhook.Event) { ev.MerchantID = "" },
		"data not JSON": func(ev *webhook.Event) { ev.Data = json.RawMessage(`{"a":`) },
		"valid":         nil,
	} {
		t.Run(name, func(t *testing.T) {
			ev := valid
			if mutate != nil {
				mutate(&ev)
			}
			err := pgdb.InTx(context.Background(), e.db, func(tx *sqlx.Tx) error {
				return svc.Enqueue(context.Background(), tx, ev)
			})
			if (err == nil) != (mutate == nil) {
				t.Fatalf("Enqueue = %v", err)
			}
		})
	}
}

func TestFailedAttemptsAreRecordedAndRetriedOnTheSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newClock()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		switch n {
		case 1:
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	app := e.app(t, refusedURL(t))
	rc.expect(app.Secret, clk.Now)
	svc, reg := e.service(t, webhook.Options{Now: clk.Now}) // the real ~24 h schedule
	enqueue(t, e.db, svc, paymentEvent(app, "evt_1", "T1"))
	run(t, svc)

	got := settled(t, svc, app.ID, "evt_1", 1)
	if a := got.Attempts[0]; a.Result != webhook.ResultNetworkError || a.HTTPStatus != 0 || !strings.Contains(a.Error, "refused") {
		t.Fatalf("attempt 1 = %+v, want a refused connection", a)
	}
	e.setURL(t, app.ID, rc.URL) // the app comes back, answering 500, 503, then 204
	for n := 1; n <= 3; n++ {
		prev := got.Attempts[n-1]
		wait := webhook.DefaultSchedule[n-1]
		if got.Status != webhook.StatusPending || !got.NextAttemptAt.Equal(prev.At.Add(wait)) {
			t.Fatalf("after attempt %d: status %s, next %v, want PENDING at %v", n, got.Status, got.NextAttemptAt, prev.At.Add(wait))
		}
		clk.Advance(wait - time.Second)
		quiet(t, svc, app.ID, "evt_1", n) // not due yet
		clk.Advance(time.Second)
		got = settled(t, svc, app.ID, "evt_1", n+1)
		if at := got.Attempts[n].At; !at.Equal(prev.At.Add(wait)) {
			t.Fatalf("attempt %d at %v, want %v", n+1, at, prev.At.Add(wait))
		}
	}

	want := []struct {
		result webhook.Result
		status int
		err    string
	}{
		{webhook.ResultNetworkError, 0, "refused"},
		{webhook.ResultHTTPError, 500, "HTTP 500: down for maintenance"},
		{webhook.ResultHTTPError, 503, "HTTP 503"},
		{webhook.ResultDelivered, 204, ""},
	}
	for i, w := range want {
		a := got.Attempts[i]
		if a.Number != i+1 || a.Result != w.result || a.HTTPStatus != w.status || !strings.Contains(a.Error, w.err) || (w.err == "") != (a.Error == "") {
			t.Errorf("attempt %d = %+v, want %+v", i+1, a, w)
		}
	}
	if got.Status != webhook.StatusDelivered || !got.NextAttemptAt.IsZero() {
		t.Fatalf("event = %s next %v, want DELIVERED", got.Status, got.NextAttemptAt)
	}
	if n := rc.hits("evt_1"); n != 3 {
		t.Fatalf("receiver got %d requests, want 3", n)
	}
	for _, d := range rc.got() {
		if d.SigErr != nil {
			t.Fatalf("a retry's signature does not verify: %v", d.SigErr)
		}
	}
	for result, n := range map[string]float64{"network_error": 1, "http_error": 2, "delivered": 1, "no_url": 0} {
		if v := metric(t, reg, "paycenter_webhook_attempts_total", result); v != n {
			t.Errorf("attempts{result=%q} = %v, want %v", result, v, n)
		}
	}
}

func TestDefaultScheduleSpansADay(t *testing.T) {
	var total time.Duration
	for _, d := range webhook.DefaultSchedule {
		total += d
	}
	if len(webhook.DefaultSchedule) != 15 || total < 24*time.Hour || total > 25*time.Hour {
		t.Fatalf("%d retries over %v, want WeChat's 15 over about 24h", len(webhook.DefaultSchedule), total)
	}
}

func TestExhaustedEventFailsAndRedeliverContinuesNumbering(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newClock()
	var up atomic.Bool
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		if !up.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	app := e.app(t, rc.URL)
	rc.expect(app.Secret, clk.Now)
	svc, _ := e.service(t, webhook.Options{Now: clk.Now, Schedule: []time.Duration{time.Minute, time.Minute}})
	enqueue(t, e.db, svc, paymentEvent(app, "evt_1", "T1"))
	run(t, svc)
	ctx := context.Background()

	settled(t, svc, app.ID, "evt_1", 1)
	// Redelivering a pending event attempts it now and keeps its schedule.
	if ev, err := svc.Redeliver(ctx, app.ID, "evt_1"); err != nil || ev.Status != webhook.StatusPending || len(ev.Attempts) != 1 {
		t.Fatalf("Redeliver pending = %+v, %v", ev, err)
	}
	settled(t, svc, app.ID, "evt_1", 2)
	clk.Advance(time.Minute)
	got := settled(t, svc, app.ID, "evt_1", 3)
	if got.Status != webhook.StatusFailed || !got.NextAttemptAt.IsZero() {
		t.Fatalf("after the last scheduled attempt: %s next %v, want FAILED", got.Status, got.NextAttemptAt)
	}
	clk.Advance(24 * time.Hour)
	quiet(t, svc, app.ID, "evt_1", 3)

	up.Store(true)
	ev, err := svc.Redeliver(ctx, app.ID, "evt_1")
	if err != nil || ev.Status != webhook.StatusPending || len(ev.Attempts) != 3 {
		t.Fatalf("Redeliver failed event = %+v, %v", ev, err)
	}
	got = settled(t, svc, app.ID, "evt_1", 4)
	if got.Status != webhook.StatusDelivered || got.Attempts[3].Number != 4 || got.Attempts[3].Result != webhook.ResultDelivered {
		t.Fatalf("after redelivery: %+v", got)
	}

	// A delivered event can be sent again (the app lost it); it gets one attempt.
	up.Store(false)
	if _, err := svc.Redeliver(ctx, app.ID, "evt_1"); err != nil {
		t.Fatal(err)
	}
	got = settled(t, svc, app.ID, "evt_1", 5)
	if got.Status != webhook.StatusFailed || got.Attempts[4].HTTPStatus != http.StatusBadGateway {
		t.Fatalf("after a failed re-send: %+v", got)
	}
	clk.Advance(24 * time.Hour)
	quiet(t, svc, app.ID, "evt_1", 5)
	for i, a := range got.Attempts {
		if a.Number != i+1 {
			t.Fatalf("attempt numbers %v do not continue", got.Attempts)
		}
	}
	if n := rc.hits("evt_1"); n != 5 {
		t.Fatalf("receiver got %d requests, want 5", n)
	}
}

func TestAppWithoutWebhookURLFailsAtOnceUntilRedelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	app := e.app(t, "")
	svc, reg := e.service(t, webhook.Options{})
	enqueue(t, e.db, svc, paymentEvent(app, "evt_1", "T1"))
	run(t, svc)

	got := settled(t, svc, app.ID, "evt_1", 1)
	if a := got.Attempts[0]; got.Status != webhook.StatusFailed || a.Result != webhook.ResultNoURL || a.Error != "the app has no webhook URL" {
		t.Fatalf("event = %+v, want FAILED with a no-URL attempt", got)
	}
	if v := metric(t, reg, "paycenter_webhook_attempts_total", "no_url"); v != 1 {
		t.Fatalf("no_url attempts = %v", v)
	}
	rc := newReceiver(t, nil)
	rc.expect(app.Secret, nil)
	e.setURL(t, app.ID, rc.URL)
	if _, err := svc.Redeliver(context.Background(), app.ID, "evt_1"); err != nil {
		t.Fatal(err)
	}
	if got := settled(t, svc, app.ID, "evt_1", 2); got.Status != webhook.StatusDelivered {
		t.Fatalf("after setting a URL and redelivering: %s", got.Status)
	}
}

func TestRedirectsSlowAndVerboseAnswersAreContained(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	elsewhere := newReceiver(t, nil)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		switch id {
		case "evt_redirect":
			http.Redirect(w, r, elsewhere.URL, http.StatusFound)
		case "evt_verbose":
			w.WriteHeader(http.StatusInternalServerError)
			for range 1 << 10 {
				fmt.Fprint(w, strings.Repeat("\x00é", 512))
			}
		case "evt_slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	})
	app := e.app(t, rc.URL)
	svc, _ := e.service(t, webhook.Options{Timeout: 300 * time.Millisecond, Schedule: []time.Duration{time.Hour}})
	enqueue(t, e.db, svc, paymentEvent(app, "evt_redirect", "T1"), paymentEvent(app, "evt_verbose", "T2"),
		paymentEvent(app, "evt_slow", "T3"))
	run(t, svc)

	if a := settled(t, svc, app.ID, "evt_redirect", 1).Attempts[0]; a.HTTPStatus != http.StatusFound || !strings.Contains(a.Error, "not followed") {
		t.Errorf("redirect attempt = %+v", a)
	}
	if n := len(elsewhere.got()); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
	a := settled(t, svc, app.ID, "evt_verbose", 1).Attempts[0]
	if a.HTTPStatus != 500 || len(a.Error) > 512 || strings.ContainsRune(a.Error, 0) || !strings.HasPrefix(a.Error, "HTTP 500: ") {
		t.Errorf("verbose attempt error (%d bytes) = %q", len(a.Error), a.Error)
	}
	if a := settled(t, svc, app.ID, "evt_slow", 1).Attempts[0]; a.Result != webhook.ResultNetworkError || a.Duration > 5*time.Second {
		t.Errorf("slow attempt = %+v, want a network error after the 300ms timeout", a)
	}
}

func TestTwoDispatchersDeliverEveryEventWithoutOverlap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const events = 200
	flaky := func(id string) bool { return strings.HasSuffix(id, "0") } // first attempt fails
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		time.Sleep(time.Millisecond)
		if flaky(id) && n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	app := e.app(t, rc.URL)
	rc.expect(app.Secret, nil)
	opts := webhook.Options{Workers: 3, Schedule: []time.Duration{20 * time.Millisecond}}
	a, regA := e.service(t, opts)
	b, regB := e.service(t, opts)
	var evs []webhook.Event
	for i := range events {
		evs = append(evs, paymentEvent(app, fmt.Sprintf("evt_%03d", i), fmt.Sprintf("T%03d", i)))
	}
	enqueue(t, e.db, a, evs...)
	run(t, a)
	run(t, b)

	eventually(t, "every event delivered", func() bool {
		return len(all(t, a, app.ID, webhook.ListFilter{Status: webhook.StatusDelivered})) == events
	})
	time.Sleep(50 * time.Millisecond)
	rc.mu.Lock()
	overlap, count := rc.overlap, maps.Clone(rc.count)
	rc.mu.Unlock()
	if len(overlap) > 0 {
		t.Fatalf("events delivered twice at once: %v", overlap)
	}
	for _, ev := range all(t, a, app.ID, webhook.ListFilter{}) {
		want := 1
		if flaky(ev.ID) {
			want = 2
		}
		if count[ev.ID] != want || len(ev.Attempts) != want {
			t.Errorf("%s: %d requests, %d attempts recorded, want %d", ev.ID, count[ev.ID], len(ev.Attempts), want)
		}
	}
	da := metric(t, regA, "paycenter_webhook_attempts_total", "delivered")
	db := metric(t, regB, "paycenter_webhook_attempts_total", "delivered")
	if da+db != events || da == 0 || db == 0 {
		t.Fatalf("dispatchers delivered %v and %v, want both a share of %d", da, db, events)
	}
}

func TestListIsScopedToTheAppFilteredAndPaged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newClock()
	// The receiver accepts T1's events and refuses the rest (retried in an hour).
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		if !strings.HasSuffix(id, "_T1") {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	app, other := e.app(t, rc.URL), e.app(t, "")
	svc, _ := e.service(t, webhook.Options{Now: clk.Now, Schedule: []time.Duration{time.Hour}})
	var ids []string
	for _, tn := range []string{"T1", "T2", "T3", "T4", "T5"} {
		ev := paymentEvent(app, "evt_pay_"+tn, tn)
		enqueue(t, e.db, svc, ev)
		ids = append(ids, ev.ID)
	}
	refund := webhook.Event{ID: "evt_refund_T1", Type: webhook.RefundSucceeded, AppID: app.ID, MerchantID: app.MerchantID,
		TradeNo: "T1", RefundNo: "R1", Data: json.RawMessage(`{"refund_no":"R1"}`)}
	enqueue(t, e.db, svc, refund)
	ids = append(ids, refund.ID)
	enqueue(t, e.db, svc, paymentEvent(other, "evt_other", "T9"))
	run(t, svc)
	for _, id := range ids {
		settled(t, svc, app.ID, id, 1)
	}
	slices.Reverse(ids) // newest first

	ctx := context.Background()
	appCtx := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindApp, AppID: app.ID, MerchantID: app.MerchantID})
	h := webhook.NewHandler(svc)
	var listed []string
	token := ""
	for page := 0; ; page++ {
		res, err := h.List(appCtx, &paycenterv1.ListWebhookDeliveriesRequest{PageSize: 4, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if page == 0 && len(res.GetEvents()) != 4 {
			t.Fatalf("first page has %d events, want 4", len(res.GetEvents()))
		}
		for _, ev := range res.GetEvents() {
			listed = append(listed, ev.GetEventId())
		}
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	if !slices.Equal(listed, ids) {
		t.Fatalf("listed %v, want the app's events newest first %v", listed, ids)
	}

	res, err := h.List(appCtx, &paycenterv1.ListWebhookDeliveriesRequest{TradeNo: "T1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetEvents()) != 2 || res.GetEvents()[0].GetRefundNo() != "R1" {
		t.Fatalf("trade_no T1 lists %v", res.GetEvents())
	}
	ev := res.GetEvents()[1]
	if ev.GetStatus() != paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_DELIVERED || ev.GetType() != "payment.succeeded" ||
		len(ev.GetAttempts()) != 1 || ev.GetAttempts()[0].GetHttpStatus() != 200 || ev.GetAttempts()[0].GetAttempt() != 1 ||
		ev.GetCreateTime() == nil || ev.GetNextAttemptTime() != nil || !strings.Contains(ev.GetPayload(), `"id":"evt_pay_T1"`) {
		t.Fatalf("event proto = %v", ev)
	}
	for status, want := range map[paycenterv1.WebhookEventStatus]int{
		paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_DELIVERED: 2,
		paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_PENDING:   4,
		paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_FAILED:    0,
	} {
		res, err := h.List(appCtx, &paycenterv1.ListWebhookDeliveriesRequest{Status: status})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetEvents()) != want {
			t.Errorf("status %s lists %d events, want %d", status, len(res.GetEvents()), want)
		}
		for _, ev := range res.GetEvents() {
			if ev.GetStatus() != status {
				t.Errorf("status %s lists an event %s", status, ev.GetStatus())
			}
		}
	}
	if evs := all(t, svc, other.ID, webhook.ListFilter{}); len(evs) != 1 || evs[0].ID != "evt_other" {
		t.Fatalf("the other app lists %v", evs)
	}

	// Another app's event is not found, and nothing about it changes.
	if _, err := h.Redeliver(appCtx, &paycenterv1.RedeliverWebhookRequest{EventId: "evt_other"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("Redeliver of another app's event = %v, want NOT_FOUND", err)
	}
	if _, err := h.Redeliver(appCtx, &paycenterv1.RedeliverWebhookRequest{EventId: "evt_nope"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("Redeliver of an unknown event = %v, want NOT_FOUND", err)
	}
	red, err := h.Redeliver(appCtx, &paycenterv1.RedeliverWebhookRequest{EventId: "evt_pay_T2"})
	if err != nil || red.GetEvent().GetStatus() != paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_PENDING || len(red.GetEvent().GetAttempts()) != 1 {
		t.Fatalf("Redeliver = %v, %v", red, err)
	}

	for name, call := range map[string]struct {
		field string
		call  func() error
	}{
		"page size": {"page_size", func() error {
			_, err := h.List(appCtx, &paycenterv1.ListWebhookDeliveriesRequest{PageSize: 101})
			return err
		}},
		"page token": {"page_token", func() error {
			_, err := h.List(appCtx, &paycenterv1.ListWebhookDeliveriesRequest{PageToken: "bm90LWEtbnVtYmVy"})
			return err
		}},
		"status": {"status", func() error {
			_, err := h.List(appCtx, &paycenterv1.ListWebhookDeliveriesRequest{Status: 42})
			return err
		}},
		"trade_no": {"trade_no", func() error {
			_, err := h.List(appCtx, &paycenterv1.ListWebhookDeliveriesRequest{TradeNo: strings.Repeat("9", 65)})
			return err
		}},
		"event id": {"event_id", func() error {
			_, err := h.Redeliver(appCtx, &paycenterv1.RedeliverWebhookRequest{})
			return err
		}},
		"service status": {"status", func() error {
			_, _, err := svc.List(ctx, app.ID, webhook.ListFilter{Status: webhook.StatusSending}, page.Request{})
			return err
		}},
	} {
		var fe *errs.FieldError
		if err := call.call(); !errors.As(err, &fe) || fe.Field != call.field {
			t.Errorf("%s: error %v, want INVALID_ARGUMENT on %s", name, err, call.field)
		}
	}
	admin := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindAdmin})
	if _, err := h.List(admin, &paycenterv1.ListWebhookDeliveriesRequest{}); !errors.Is(err, errs.ErrPermissionDenied) {
		t.Errorf("admin List = %v, want PERMISSION_DENIED (deliveries belong to an app)", err)
	}
	if _, err := h.List(ctx, &paycenterv1.ListWebhookDeliveriesRequest{}); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Errorf("anonymous List = %v, want UNAUTHENTICATED", err)
	}
}

func TestBacklogMetricsReportUnfinishedEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newClock()
	rc := newReceiver(t, nil)
	app := e.app(t, rc.URL)
	svc, reg := e.service(t, webhook.Options{Now: clk.Now})
	if metric(t, reg, "paycenter_webhook_backlog", "") != 0 || metric(t, reg, "paycenter_webhook_oldest_pending_age_seconds", "") != 0 {
		t.Fatal("an empty outbox has a backlog")
	}
	enqueue(t, e.db, svc, paymentEvent(app, "evt_1", "T1"))
	clk.Advance(90 * time.Second)
	enqueue(t, e.db, svc, paymentEvent(app, "evt_2", "T2"), paymentEvent(app, "evt_3", "T3"))
	if v := metric(t, reg, "paycenter_webhook_backlog", ""); v != 3 {
		t.Fatalf("backlog = %v, want 3", v)
	}
	if v := metric(t, reg, "paycenter_webhook_oldest_pending_age_seconds", ""); v != 90 {
		t.Fatalf("oldest pending age = %v, want 90", v)
	}
	// Nothing dispatched them: all three are due, the first for 90 s.
	if v := metric(t, reg, "paycenter_webhook_oldest_overdue_seconds", ""); v != 90 {
		t.Fatalf("oldest overdue = %v, want 90", v)
	}
	run(t, svc)
	eventually(t, "the backlog to drain", func() bool { return metric(t, reg, "paycenter_webhook_backlog", "") == 0 })
	if v := metric(t, reg, "paycenter_webhook_oldest_pending_age_seconds", ""); v != 0 {
		t.Fatalf("oldest pending age = %v after draining, want 0", v)
	}
	if v := metric(t, reg, "paycenter_webhook_oldest_overdue_seconds", ""); v != 0 {
		t.Fatalf("oldest overdue = %v after draining, want 0", v)
	}
}

// An event waiting out its back-off is old but not overdue; it is overdue once its retry time
// passes without an attempt.
func TestOverdueCountsOnlyMissedAttempts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newClock()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, eventID string, n int) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	app := e.app(t, rc.URL)
	svc, reg := e.service(t, webhook.Options{Now: clk.Now, Schedule: []time.Duration{time.Minute}})
	enqueue(t, e.db, svc, paymentEvent(app, "evt_1", "T1"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	eventually(t, "the first attempt", func() bool { return metric(t, reg, "paycenter_webhook_attempts_total", "http_error") == 1 })
	cancel() // the dispatcher stops
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Second)
	if old, overdue := metric(t, reg, "paycenter_webhook_oldest_pending_age_seconds", ""), metric(t, reg, "paycenter_webhook_oldest_overdue_seconds", ""); old != 50 || overdue != 0 {
		t.Fatalf("during the back-off: pending age %v (want 50), overdue %v (want 0)", old, overdue)
	}
	clk.Advance(40 * time.Second) // the retry was due 30 s ago
	if v := metric(t, reg, "paycenter_webhook_oldest_overdue_seconds", ""); v != 30 {
		t.Fatalf("overdue = %v, want 30", v)
	}
}

// A committed event goes out at once: it wakes its replica's idle dispatcher instead of
// waiting for the next poll.
func TestCommittedEventWakesAnIdleDispatcher(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, nil)
	app := e.app(t, rc.URL+"/hooks")
	rc.expect(app.Secret, nil)
	svc, _ := e.service(t, webhook.Options{PollInterval: time.Hour})
	run(t, svc)
	time.Sleep(50 * time.Millisecond) // the first look finds nothing; the next poll is an hour away
	enqueue(t, e.db, svc, paymentEvent(app, "evt_woken", "T1"))
	if got := settled(t, svc, app.ID, "evt_woken", 1); got.Status != webhook.StatusDelivered {
		t.Fatalf("event = %+v, want DELIVERED", got)
	}
}
