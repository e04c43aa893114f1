package alipay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/channel/alipay"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/sandbox"
)

// Every method Alipay supports: prepay, the payer pays, the notification is parsed and
// acknowledged, Query agrees, Close of the paid trade is refused without refunding, a
// partial refund succeeds and is notified, and QueryRefund agrees.
func TestPayCloseRefundByMethod(t *testing.T) {
	t.Parallel()
	for _, method := range []channel.Method{channel.MethodQR, channel.MethodPCPage, channel.MethodWAP, channel.MethodApp} {
		t.Run(string(method), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			ctx := context.Background()
			tradeNo := "T" + string(method[0]) + "1001"

			a := e.prepay(t, method, tradeNo, 1234)
			switch method {
			case channel.MethodQR:
				if a.QRCode == "" || a.PayURL != "" || a.AppParams != "" {
					t.Fatalf("QR action: %+v", a)
				}
			case channel.MethodPCPage, channel.MethodWAP:
				if !strings.HasPrefix(a.PayURL, e.srv.URL+sandbox.AlipayGatewayPath+"?") || a.QRCode != "" {
					t.Fatalf("%s action: %+v", method, a)
				}
			case channel.MethodApp:
				if !strings.Contains(a.AppParams, "method=alipay.trade.app.pay") || a.PayURL != "" {
					t.Fatalf("APP action: %+v", a)
				}
			}
			e.open(t, method, a)
			if q, err := e.ch.Query(ctx, e.cfg, tradeNo); err != nil || q.State != channel.TradePending {
				t.Fatalf("query before payment: %+v, %v", q, err)
			}
			if err := e.sb.Pay(tradeNo); err != nil {
				t.Fatalf("sandbox Pay: %v", err)
			}
			info := e.trade(t, tradeNo)

			n := e.nextOK(t)
			if n.Trade == nil || n.Refund != nil {
				t.Fatalf("payment notification: %+v", n)
			}
			if tr := *n.Trade; tr.State != channel.TradeSucceeded || tr.TradeNo != tradeNo || tr.Amount != 1234 ||
				tr.Currency != "CNY" || tr.TransactionID != info.ChannelNo || tr.PaidAt.IsZero() {
				t.Fatalf("notified trade: %+v (sandbox trade_no %s)", tr, info.ChannelNo)
			}
			q, err := e.ch.Query(ctx, e.cfg, tradeNo)
			if err != nil || q.State != channel.TradeSucceeded || q.Amount != 1234 || q.TransactionID != info.ChannelNo || q.PaidAt.IsZero() {
				t.Fatalf("query after payment: %+v, %v", q, err)
			}

			// Closing a paid trade must not cancel it: Alipay's cancel would refund it.
			if err := e.ch.Close(ctx, e.cfg, tradeNo); !errors.Is(err, channel.ErrTradePaid) {
				t.Fatalf("close of a paid trade: %v, want ErrTradePaid", err)
			}
			if info := e.trade(t, tradeNo); info.Status != "TRADE_SUCCESS" || info.Refunded != 0 || len(info.Refunds) != 0 {
				t.Fatalf("close touched the paid trade: %+v", info)
			}

			refundNo := "R" + tradeNo
			rf, err := e.ch.Refund(ctx, e.cfg, channel.RefundRequest{
				TradeNo: tradeNo, RefundNo: refundNo, Amount: 234, TotalAmount: 1234, Currency: "CNY",
				Reason: "broken pipe", NotifyURL: e.notifyURL(),
			})
			if err != nil || rf.State != channel.RefundSucceeded || rf.RefundNo != refundNo || rf.Amount != 234 {
				t.Fatalf("refund: %+v, %v", rf, err)
			}
			rn := e.nextOK(t)
			if rn.Refund == nil || rn.Trade != nil || rn.Refund.RefundNo != refundNo || rn.Refund.TradeNo != tradeNo ||
				rn.Refund.State != channel.RefundSucceeded {
				t.Fatalf("refund notification: %+v", rn)
			}
			qr, err := e.ch.QueryRefund(ctx, e.cfg, tradeNo, refundNo)
			if err != nil || qr.State != channel.RefundSucceeded || qr.Amount != 234 || qr.RefundNo != refundNo {
				t.Fatalf("query refund: %+v, %v", qr, err)
			}
			// The same refund again is the same refund: nothing moves.
			again, err := e.ch.Refund(ctx, e.cfg, channel.RefundRequest{TradeNo: tradeNo, RefundNo: refundNo, Amount: 234, TotalAmount: 1234})
			if err != nil || again.State == channel.RefundFailed {
				t.Fatalf("repeated refund: %+v, %v", again, err)
			}
			if info := e.trade(t, tradeNo); info.Refunded != 234 {
				t.Fatalf("refunded after a repeat: %d", info.Refunded)
			}
			if q, err := e.ch.Query(ctx, e.cfg, tradeNo); err != nil || q.State != channel.TradeSucceeded {
				t.Fatalf("partly refunded trade: %+v, %v", q, err)
			}

			// Another trade by the same method, left unpaid: Close makes it unpayable.
			unpaid := "C" + tradeNo
			e.open(t, method, e.prepay(t, method, unpaid, 500))
			if err := e.ch.Close(ctx, e.cfg, unpaid); err != nil {
				t.Fatalf("close of an unpaid trade: %v", err)
			}
			if q, err := e.ch.Query(ctx, e.cfg, unpaid); err != nil || q.State != channel.TradeClosed {
				t.Fatalf("query after close: %+v, %v", q, err)
			}
			if n := e.nextOK(t); n.Trade == nil || n.Trade.TradeNo != unpaid || n.Trade.State != channel.TradeClosed {
				t.Fatalf("close notification: %+v", n)
			}
			if err := e.sb.Pay(unpaid); !errors.Is(err, sandbox.ErrConflict) {
				t.Fatalf("paying a closed trade: %v", err)
			}

			e.waitIdle(t)
			for _, d := range e.sb.Deliveries() {
				if !d.Accepted {
					t.Errorf("the sandbox saw a notification refused: %+v", d)
				}
			}
		})
	}
}

func TestPrepaySendsAmountExpiryAndURLs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	expire := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC) // 15:08:09 in Beijing
	for _, method := range []channel.Method{channel.MethodPCPage, channel.MethodWAP, channel.MethodApp} {
		a, err := e.ch.Prepay(context.Background(), e.cfg, channel.PrepayRequest{
			TradeNo: "E" + string(method[0]) + "1", Amount: 123456, Subject: "Rent", Method: method, ExpireAt: expire,
			ReturnURL: "https://merchant.example/back", NotifyURL: e.notifyURL(),
		})
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		raw := a.PayURL
		if method == channel.MethodApp {
			raw = "?" + a.AppParams
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		var biz map[string]any
		if err := json.Unmarshal([]byte(q.Get("biz_content")), &biz); err != nil {
			t.Fatalf("%s biz_content: %v", method, err)
		}
		if biz["total_amount"] != "1234.56" || biz["time_expire"] != "2031-05-06 15:08:09" || biz["subject"] != "Rent" {
			t.Errorf("%s biz_content: %v", method, biz)
		}
		if q.Get("notify_url") != e.notifyURL() || q.Get("sign_type") != "RSA2" || q.Get("sign") == "" {
			t.Errorf("%s params: %v", method, q)
		}
		if method != channel.MethodApp && q.Get("return_url") != "https://merchant.example/back" {
			t.Errorf("%s return_url: %q", method, q.Get("return_url"))
		}
	}
}

func TestCloseUnpaid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()

	// A precreate trade: closed, and the payer can no longer pay it.
	e.prepay(t, channel.MethodQR, "C1", 100)
	if err := e.ch.Close(ctx, e.cfg, "C1"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if q, err := e.ch.Query(ctx, e.cfg, "C1"); err != nil || q.State != channel.TradeClosed {
		t.Fatalf("query after close: %+v, %v", q, err)
	}
	if err := e.sb.Pay("C1"); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("paying a closed trade: %v", err)
	}
	if err := e.ch.Close(ctx, e.cfg, "C1"); err != nil {
		t.Fatalf("closing again: %v", err)
	}

	// A page trade the payer opened.
	a := e.prepay(t, channel.MethodPCPage, "C2", 100)
	e.open(t, channel.MethodPCPage, a)
	if err := e.ch.Close(ctx, e.cfg, "C2"); err != nil {
		t.Fatalf("close page trade: %v", err)
	}
	if n := e.nextOK(t); n.Trade == nil || n.Trade.State != channel.TradeClosed || n.Trade.TradeNo != "C2" {
		t.Fatalf("close notification: %+v", n)
	}
	if q, err := e.ch.Query(ctx, e.cfg, "C2"); err != nil || q.State != channel.TradeClosed {
		t.Fatalf("query page trade: %+v, %v", q, err)
	}

	// A page trade never opened is unknown to Alipay: nothing to close.
	e.prepay(t, channel.MethodPCPage, "C3", 100)
	if err := e.ch.Close(ctx, e.cfg, "C3"); err != nil {
		t.Fatalf("close of an unopened order: %v", err)
	}
	if _, err := e.ch.Query(ctx, e.cfg, "C3"); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Fatalf("query of an unopened order: %v", err)
	}
}

// Real Alipay knows a precreate trade only once its QR code is scanned: close cannot reach
// it, cancel can. The adapter's Close must kill the code without ever refunding.
func TestCloseCancelsUnscannedPrecreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *sandbox.AlipayOptions) { o.HideUnscannedTrades = true })
	ctx := context.Background()
	a := e.prepay(t, channel.MethodQR, "U1", 500)
	if _, err := e.ch.Query(ctx, e.cfg, "U1"); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Fatalf("unscanned trade: %v", err)
	}
	if err := e.ch.Close(ctx, e.cfg, "U1"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if info := e.trade(t, "U1"); info.Status != "TRADE_CLOSED" || len(info.Refunds) != 0 {
		t.Fatalf("after close: %+v", info)
	}
	if page := httpGet(t, a.QRCode); strings.Contains(page, `id="pay"`) {
		t.Fatalf("the QR code still offers to pay:\n%s", page)
	}
	if err := e.sb.Pay("U1"); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("paying a cancelled QR code: %v", err)
	}

	// Scanned and paid: Close says paid and leaves the money alone.
	a = e.prepay(t, channel.MethodQR, "U2", 500)
	e.open(t, channel.MethodQR, a)
	if err := e.sb.Pay("U2"); err != nil {
		t.Fatal(err)
	}
	e.nextOK(t)
	if err := e.ch.Close(ctx, e.cfg, "U2"); !errors.Is(err, channel.ErrTradePaid) {
		t.Fatalf("close of a paid trade: %v", err)
	}
	if info := e.trade(t, "U2"); info.Status != "TRADE_SUCCESS" || info.Refunded != 0 {
		t.Fatalf("paid trade after close: %+v", info)
	}
}

// beforeMethod runs hook before a gateway request of the given Alipay method goes out.
type beforeMethod struct {
	method string
	hook   func()
}

func (b beforeMethod) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if form, _ := url.ParseQuery(string(body)); form.Get("method") == b.method {
		b.hook()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// The one race Close cannot rule out: the payer scans and pays between close (trade
// unknown) and cancel. Alipay's cancel then refunds; Close must say so, and must not claim
// the trade is paid.
func TestCloseReportsCancelRefundRace(t *testing.T) {
	t.Parallel()
	var sb *sandbox.Alipay
	payFirst := beforeMethod{method: "alipay.trade.cancel", hook: func() {
		if err := sb.Pay("V1"); err != nil {
			t.Errorf("sandbox Pay: %v", err)
		}
	}}
	e := newEnv(t, func(o *sandbox.AlipayOptions) { o.HideUnscannedTrades = true },
		alipay.WithHTTPClient(&http.Client{Transport: payFirst}))
	sb = e.sb
	e.prepay(t, channel.MethodQR, "V1", 900)
	err := e.ch.Close(context.Background(), e.cfg, "V1")
	if !errors.Is(err, alipay.ErrCancelRefunded) || errors.Is(err, channel.ErrTradePaid) {
		t.Fatalf("close racing a payment: %v", err)
	}
	if info := e.trade(t, "V1"); info.Status != "TRADE_CLOSED" || info.Refunded != 900 {
		t.Fatalf("the sandbox did not refund on cancel: %+v", info)
	}
	if q, err := e.ch.Query(context.Background(), e.cfg, "V1"); err != nil || q.State != channel.TradeClosed {
		t.Fatalf("query after the race: %+v, %v", q, err)
	}
}

// A full refund makes Alipay say TRADE_CLOSED with refund_fee: that is a refund, not a
// trade closed unpaid.
func TestFullRefundIsARefundNotAClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	a := e.prepay(t, channel.MethodQR, "F1", 300)
	e.open(t, channel.MethodQR, a)
	if err := e.sb.Pay("F1"); err != nil {
		t.Fatal(err)
	}
	e.nextOK(t)
	if rf, err := e.ch.Refund(ctx, e.cfg, channel.RefundRequest{TradeNo: "F1", RefundNo: "RF1", Amount: 300, TotalAmount: 300}); err != nil || rf.State != channel.RefundSucceeded {
		t.Fatalf("full refund: %+v, %v", rf, err)
	}
	r := e.next(t)
	if r.err != nil || r.n.Trade != nil || r.n.Refund == nil || r.n.Refund.RefundNo != "RF1" {
		t.Fatalf("full refund notification: %+v, %v\n%s", r.n, r.err, r.body)
	}
	if form, _ := url.ParseQuery(string(r.body)); form.Get("trade_status") != "TRADE_CLOSED" || form.Get("refund_fee") != "3.00" {
		t.Fatalf("the sandbox did not send what Alipay sends: %v", form)
	}
	if q, err := e.ch.Query(ctx, e.cfg, "F1"); err != nil || q.State != channel.TradeClosed {
		t.Fatalf("fully refunded trade: %+v, %v", q, err)
	}
}

func TestRefundPendingThenCompleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *sandbox.AlipayOptions) { o.ManualRefunds = true })
	ctx := context.Background()
	a := e.prepay(t, channel.MethodQR, "M1", 1000)
	e.open(t, channel.MethodQR, a)
	if err := e.sb.Pay("M1"); err != nil {
		t.Fatal(err)
	}
	e.nextOK(t)
	rf, err := e.ch.Refund(ctx, e.cfg, channel.RefundRequest{TradeNo: "M1", RefundNo: "RM1", Amount: 400, TotalAmount: 1000})
	if err != nil || rf.State != channel.RefundPending {
		t.Fatalf("processing refund: %+v, %v", rf, err)
	}
	if qr, err := e.ch.QueryRefund(ctx, e.cfg, "M1", "RM1"); err != nil || qr.State != channel.RefundPending || qr.Amount != 400 {
		t.Fatalf("query of a processing refund: %+v, %v", qr, err)
	}
	if err := e.sb.CompleteRefund("M1", "RM1"); err != nil {
		t.Fatal(err)
	}
	if n := e.nextOK(t); n.Refund == nil || n.Refund.RefundNo != "RM1" || n.Refund.State != channel.RefundSucceeded {
		t.Fatalf("refund notification: %+v", n)
	}
	if qr, err := e.ch.QueryRefund(ctx, e.cfg, "M1", "RM1"); err != nil || qr.State != channel.RefundSucceeded {
		t.Fatalf("query of a completed refund: %+v, %v", qr, err)
	}
	// A refund Alipay never received: the caller should submit it again.
	if _, err := e.ch.QueryRefund(ctx, e.cfg, "M1", "nope"); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Fatalf("query of an unknown refund: %v", err)
	}
}

func TestRefundRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	a := e.prepay(t, channel.MethodQR, "B1", 100)
	e.open(t, channel.MethodQR, a)
	if err := e.sb.Pay("B1"); err != nil {
		t.Fatal(err)
	}
	e.nextOK(t)

	e.sb.SetBalanceShort(testAlipayAppID, true)
	rf, err := e.ch.Refund(ctx, e.cfg, channel.RefundRequest{TradeNo: "B1", RefundNo: "RB1", Amount: 100, TotalAmount: 100})
	if err != nil || rf.State != channel.RefundFailed || !strings.Contains(rf.FailureReason, "ACQ.SELLER_BALANCE_NOT_ENOUGH") {
		t.Fatalf("refund with a short balance: %+v, %v", rf, err)
	}
	e.sb.SetBalanceShort(testAlipayAppID, false)
	rf, err = e.ch.Refund(ctx, e.cfg, channel.RefundRequest{TradeNo: "B1", RefundNo: "RB2", Amount: 101, TotalAmount: 100})
	if err != nil || rf.State != channel.RefundFailed {
		t.Fatalf("refund beyond the paid amount: %+v, %v", rf, err)
	}
	if rf, err := e.ch.Refund(ctx, e.cfg, channel.RefundRequest{TradeNo: "B1", RefundNo: "RB3", Amount: 60, TotalAmount: 100}); err != nil || rf.State != channel.RefundSucceeded {
		t.Fatalf("refund: %+v, %v", rf, err)
	}
	e.nextOK(t)
	// The same number with another amount: a refund exists, so it must not become FAILED.
	if rf, err := e.ch.Refund(ctx, e.cfg, channel.RefundRequest{TradeNo: "B1", RefundNo: "RB3", Amount: 50, TotalAmount: 100}); err == nil || rf.State == channel.RefundFailed {
		t.Fatalf("conflicting repeat: %+v, %v", rf, err)
	}
}

func TestForgedNotificationIsBadSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.prepay(t, channel.MethodQR, "G1", 800)
	e.open(t, channel.MethodQR, a)
	e.sb.FaultNext(sandbox.Fault{Forge: true})
	if err := e.sb.Pay("G1"); err != nil {
		t.Fatal(err)
	}
	forged := e.next(t)
	if !errors.Is(forged.err, channel.ErrBadSignature) || forged.status != http.StatusBadRequest || forged.n.Trade != nil {
		t.Fatalf("forged notification: %+v", forged)
	}
	if n := e.nextOK(t); n.Trade == nil || n.Trade.State != channel.TradeSucceeded {
		t.Fatalf("genuine notification: %+v", n)
	}
	e.waitIdle(t)
	ds := e.sb.Deliveries()
	if len(ds) != 2 || !ds[0].Forged || ds[0].Accepted || ds[1].Forged || !ds[1].Accepted {
		t.Fatalf("deliveries: %+v", ds)
	}
}

// A genuine notification replayed with changes, for another app, or garbage: nothing
// verifies, nothing panics.
func TestNotificationTamperingAndGarbage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.prepay(t, channel.MethodQR, "H1", 700)
	e.open(t, channel.MethodQR, a)
	if err := e.sb.Pay("H1"); err != nil {
		t.Fatal(err)
	}
	genuine := e.next(t)
	if genuine.err != nil {
		t.Fatal(genuine.err)
	}
	parse := func(cfg merchant.ChannelConfig, body string) (channel.Notification, error) {
		r := httptest.NewRequest(http.MethodPost, "/notify/alipay/app_test", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return e.ch.ParseNotification(context.Background(), cfg, r)
	}
	if n, err := parse(e.cfg, string(genuine.body)); err != nil || n.Trade == nil {
		t.Fatalf("replayed genuine notification: %+v, %v", n, err)
	}
	form, _ := url.ParseQuery(string(genuine.body))
	form.Set("total_amount", "0.01")
	if _, err := parse(e.cfg, form.Encode()); !errors.Is(err, channel.ErrBadSignature) {
		t.Fatalf("tampered amount: %v", err)
	}
	other := e.cfg
	other.Alipay = &merchant.AlipaySettings{}
	*other.Alipay = *e.cfg.Alipay
	other.Alipay.AlipayAppID = "2021000000000002"
	if _, err := parse(other, string(genuine.body)); !errors.Is(err, channel.ErrBadSignature) {
		t.Fatalf("notification for another app: %v", err)
	}
	withCert, _ := url.ParseQuery(string(genuine.body))
	withCert.Set("alipay_cert_sn", "0123456789abcdef")
	if n, err := parse(e.cfg, withCert.Encode()); err != nil || n.Trade == nil {
		t.Fatalf("notification with a stray alipay_cert_sn (not signed): %+v, %v", n, err)
	}
	for name, body := range map[string]string{
		"empty":      "",
		"not a form": "%zz%",
		"unsigned":   "out_trade_no=H1&trade_status=TRADE_SUCCESS&total_amount=7.00",
		"bad base64": "out_trade_no=H1&sign=@@@",
		"huge":       "sign=x&pad=" + strings.Repeat("a", 70<<10),
	} {
		if _, err := parse(e.cfg, body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestUnknownTradesAndUnsupportedMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.ch.Query(ctx, e.cfg, "nope"); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Errorf("query: %v", err)
	}
	if _, err := e.ch.QueryRefund(ctx, e.cfg, "nope", "Rnope"); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Errorf("query refund: %v", err)
	}
	if _, err := e.ch.Refund(ctx, e.cfg, channel.RefundRequest{TradeNo: "nope", RefundNo: "Rnope", Amount: 1, TotalAmount: 1}); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Errorf("refund: %v", err)
	}
	if err := e.ch.Close(ctx, e.cfg, "nope"); err != nil {
		t.Errorf("close of an unknown trade: %v", err)
	}
	for _, req := range []channel.PrepayRequest{
		{TradeNo: "J1", Amount: 1, Method: channel.MethodJSAPI, OpenID: "o1"},
		{TradeNo: "J2", Amount: 1, Method: "CARRIER_PIGEON"},
		{TradeNo: "J3", Amount: 1, Method: channel.MethodQR, Currency: "USD"},
	} {
		if _, err := e.ch.Prepay(ctx, e.cfg, req); !errors.Is(err, channel.ErrUnsupportedMethod) {
			t.Errorf("%s %s: %v", req.Method, req.Currency, err)
		}
	}
	for _, amount := range []int64{0, -1, alipay.MaxAmount + 1} {
		if _, err := e.ch.Prepay(ctx, e.cfg, channel.PrepayRequest{TradeNo: "J4", Amount: amount, Method: channel.MethodQR}); !errors.Is(err, alipay.ErrBadAmount) {
			t.Errorf("amount %d: %v", amount, err)
		}
	}
}

func TestAckNotification(t *testing.T) {
	t.Parallel()
	ch := alipay.New()
	for _, tc := range []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"accepted", nil, http.StatusOK, "success"},
		{"forged", channel.ErrBadSignature, http.StatusBadRequest, "fail"},
		{"our failure", errors.New("database down"), http.StatusInternalServerError, "fail"},
	} {
		rec := httptest.NewRecorder()
		ch.AckNotification(rec, tc.err)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%s: %d %q", tc.name, rec.Code, rec.Body.String())
		}
	}
}

func TestBadConfigurationNeverLeaksSecrets(t *testing.T) {
	t.Parallel()
	_, app := testKeys(t)
	ch := alipay.New()
	base := merchant.AlipaySettings{
		AlipayAppID: testAlipayAppID, AlipayPublicKeyPEM: app.PublicKeyPEM,
		GatewayURL: "http://127.0.0.1:1/gateway.do", AppPrivateKeyPEM: app.PrivateKeyPEM,
	}
	secretBody := strings.Split(app.PrivateKeyPEM, "\n")[1]
	for _, tc := range []struct {
		name   string
		mutate func(*merchant.AlipaySettings)
		want   string
	}{
		{"no gateway", func(s *merchant.AlipaySettings) { s.GatewayURL = "" }, "gateway_url is not configured"},
		{"relative gateway", func(s *merchant.AlipaySettings) { s.GatewayURL = "/gateway.do" }, "not an absolute"},
		{"plain production", func(s *merchant.AlipaySettings) { s.GatewayURL = "http://openapi.alipay.com/gateway.do" }, "needs https"},
		{"bad private key", func(s *merchant.AlipaySettings) { s.AppPrivateKeyPEM = s.AppPrivateKeyPEM[:200] }, "app private key"},
		{"no public key", func(s *merchant.AlipaySettings) { s.AlipayPublicKeyPEM = "" }, "alipay_public_key_pem is not configured"},
		{"garbage public key", func(s *merchant.AlipaySettings) {
			s.AlipayPublicKeyPEM = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
		}, "neither PKIX nor PKCS#1"},
		{"no app id", func(s *merchant.AlipaySettings) { s.AlipayAppID = "" }, "alipay_app_id is not configured"},
	} {
		s := base
		tc.mutate(&s)
		_, err := ch.Query(context.Background(), merchant.ChannelConfig{AppID: "a", Alipay: &s}, "T1")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secretBody[:20]) {
			t.Errorf("%s: %v (want %q)", tc.name, err, tc.want)
		}
	}
	if _, err := ch.Query(context.Background(), merchant.ChannelConfig{AppID: "a"}, "T1"); err == nil {
		t.Error("no Alipay settings: accepted")
	}
}
