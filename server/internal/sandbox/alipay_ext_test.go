package sandbox_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/smartwalle/alipay/v3"

	"github.com/paycenter/paycenter/server/internal/sandbox"
)

const testAppID = "2021000000000001"

type alipayEnv struct {
	sb     *sandbox.Alipay
	srv    *httptest.Server
	client *alipay.Client
	notify *receiver
}

// newAlipayEnv starts a sandbox with the test app registered, a real SDK
// client pointed at it, and a notify endpoint that verifies with the SDK.
func newAlipayEnv(t *testing.T, configure func(*sandbox.AlipayOptions)) *alipayEnv {
	t.Helper()
	opts := sandbox.AlipayOptions{Options: testOptions(t, keyAlipaySandbox)}
	if configure != nil {
		configure(&opts)
	}
	sb, err := sandbox.NewAlipay(opts)
	if err != nil {
		t.Fatalf("NewAlipay: %v", err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close) // runs first: stop delivering before servers go away
	app := testKey(t, keyAlipayApp)
	if err := sb.RegisterApp(testAppID, app.PublicKeyPEM); err != nil {
		t.Fatalf("RegisterApp: %v", err)
	}
	env := &alipayEnv{sb: sb, srv: srv, client: newAlipayClient(t, srv, app.PrivateKeyPEM, sb.PublicKeyPEM())}
	env.notify = newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "fail", http.StatusBadRequest)
			return
		}
		if _, err := env.client.DecodeNotification(r.Context(), r.Form); err != nil {
			http.Error(w, "fail", http.StatusBadRequest)
			return
		}
		env.client.ACKNotification(w)
	})
	return env
}

func newAlipayClient(t *testing.T, srv *httptest.Server, privateKeyPEM, alipayPublicKeyPEM string) *alipay.Client {
	t.Helper()
	client, err := alipay.New(testAppID, privateKeyPEM, false,
		alipay.WithSandboxGateway(srv.URL+sandbox.AlipayGatewayPath),
		alipay.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatalf("alipay.New: %v", err)
	}
	if err := client.LoadAliPayPublicKey(alipayPublicKeyPEM); err != nil {
		t.Fatalf("LoadAliPayPublicKey: %v", err)
	}
	return client
}

// nextNotification waits for a notification and decodes it with the SDK.
func (env *alipayEnv) nextNotification(t *testing.T) (*alipay.Notification, error) {
	t.Helper()
	r := env.notify.next(t)
	if err := r.ParseForm(); err != nil {
		t.Fatalf("parse notification: %v", err)
	}
	return env.client.DecodeNotification(context.Background(), r.Form)
}

func (env *alipayEnv) mustNotification(t *testing.T) *alipay.Notification {
	t.Helper()
	n, err := env.nextNotification(t)
	if err != nil {
		t.Fatalf("notification does not verify: %v", err)
	}
	return n
}

func (env *alipayEnv) precreate(t *testing.T, outTradeNo, amount string) *alipay.TradePreCreateRsp {
	t.Helper()
	rsp, err := env.client.TradePreCreate(context.Background(), alipay.TradePreCreate{Trade: alipay.Trade{
		NotifyURL: env.notify.URL + "/notify/alipay", Subject: "Water bill", OutTradeNo: outTradeNo,
		TotalAmount: amount, ProductCode: "FACE_TO_FACE_PAYMENT",
	}})
	if err != nil {
		t.Fatalf("TradePreCreate: %v", err)
	}
	if !rsp.IsSuccess() {
		t.Fatalf("TradePreCreate: %s %s %s", rsp.Code, rsp.SubCode, rsp.SubMsg)
	}
	return rsp
}

func (env *alipayEnv) query(t *testing.T, outTradeNo string) *alipay.TradeQueryRsp {
	t.Helper()
	rsp, err := env.client.TradeQuery(context.Background(), alipay.TradeQuery{OutTradeNo: outTradeNo})
	if err != nil {
		t.Fatalf("TradeQuery: %v", err)
	}
	return rsp
}

func (env *alipayEnv) refund(t *testing.T, outTradeNo, outRequestNo, amount string) *alipay.TradeRefundRsp {
	t.Helper()
	rsp, err := env.client.TradeRefund(context.Background(), alipay.TradeRefund{
		OutTradeNo: outTradeNo, OutRequestNo: outRequestNo, RefundAmount: amount, RefundReason: "test",
	})
	if err != nil {
		t.Fatalf("TradeRefund: %v", err)
	}
	return rsp
}

func wantSubCode(t *testing.T, what string, e alipay.Error, sub string) {
	t.Helper()
	if e.SubCode != sub {
		t.Fatalf("%s: got %s %s (%s), want sub_code %s", what, e.Code, e.SubCode, e.SubMsg, sub)
	}
}

func TestAlipayPrecreatePayRefundLifecycle(t *testing.T) {
	t.Parallel()
	env := newAlipayEnv(t, nil)
	ctx := context.Background()

	pre := env.precreate(t, "T1001", "12.34")
	if !strings.HasPrefix(pre.QRCode, env.srv.URL+sandbox.AlipayControlPrefix+"/qr/") {
		t.Fatalf("qr_code %q is not a sandbox URL", pre.QRCode)
	}
	if q := env.query(t, "T1001"); q.TradeStatus != alipay.TradeStatusWaitBuyerPay {
		t.Fatalf("before payment: status %s", q.TradeStatus)
	}

	// The payer scans: the QR code opens the cashier showing the amount.
	page := httpGet(t, pre.QRCode)
	if !strings.Contains(page, "12.34") || !strings.Contains(page, "Water bill") || !strings.Contains(page, `id="pay"`) {
		t.Fatalf("cashier page lacks amount, subject or Pay button:\n%s", page)
	}
	if err := env.sb.Pay("T1001"); err != nil {
		t.Fatalf("Pay: %v", err)
	}
	n := env.mustNotification(t)
	if n.TradeStatus != alipay.TradeStatusSuccess || n.OutTradeNo != "T1001" || n.TotalAmount != "12.34" ||
		n.ReceiptAmount != "12.34" || n.AppId != testAppID || n.NotifyType != alipay.NotifyTypeTradeStatusSync ||
		n.NotifyId == "" || n.BuyerId == "" || n.GmtPayment == "" || n.TradeNo == "" {
		t.Fatalf("unexpected notification %+v", n)
	}
	q := env.query(t, "T1001")
	if q.TradeStatus != alipay.TradeStatusSuccess || q.TradeNo != n.TradeNo || q.TotalAmount != "12.34" || q.BuyerUserId != n.BuyerId {
		t.Fatalf("query after payment: %+v", q)
	}

	// Two partial refunds; a repeat of the first changes nothing.
	r1 := env.refund(t, "T1001", "R1", "5.00")
	if !r1.IsSuccess() || r1.FundChange != "Y" || r1.RefundFee != "5.00" {
		t.Fatalf("first refund: %+v", r1)
	}
	if rn := env.mustNotification(t); rn.RefundFee != "5.00" || rn.OutBizNo != "R1" || rn.TradeStatus != alipay.TradeStatusSuccess {
		t.Fatalf("refund notification: %+v", rn)
	}
	if again := env.refund(t, "T1001", "R1", "5.00"); !again.IsSuccess() || again.FundChange != "N" || again.RefundFee != "5.00" {
		t.Fatalf("repeated refund: %+v", again)
	}
	if diff := env.refund(t, "T1001", "R1", "6.00"); diff.IsSuccess() {
		t.Fatalf("same out_request_no with another amount succeeded")
	} else {
		wantSubCode(t, "discordant refund", diff.Error, "ACQ.DISCORDANT_REPEAT_REQUEST")
	}
	if r2 := env.refund(t, "T1001", "R2", "5.00"); !r2.IsSuccess() || r2.RefundFee != "10.00" {
		t.Fatalf("second refund: %+v", r2)
	}
	env.mustNotification(t)
	over := env.refund(t, "T1001", "R3", "2.35")
	if over.IsSuccess() {
		t.Fatal("refund beyond the paid amount succeeded")
	}
	wantSubCode(t, "over-refund", over.Error, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")

	rq, err := env.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "T1001", OutRequestNo: "R2"})
	if err != nil {
		t.Fatalf("TradeFastPayRefundQuery: %v", err)
	}
	if rq.RefundStatus != "REFUND_SUCCESS" || rq.RefundAmount != "5.00" || rq.TotalAmount != "12.34" || rq.OutRequestNo != "R2" {
		t.Fatalf("refund query: %+v", rq)
	}
	unknown, err := env.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "T1001", OutRequestNo: "nope"})
	if err != nil || !unknown.IsSuccess() || unknown.RefundStatus != "" {
		t.Fatalf("unknown refund must be a bare success, like Alipay: %+v, %v", unknown, err)
	}

	// The final refund empties the trade, which Alipay then reports closed.
	if r3 := env.refund(t, "T1001", "R3", "2.34"); !r3.IsSuccess() || r3.RefundFee != "12.34" {
		t.Fatalf("last refund: %+v", r3)
	}
	if rn := env.mustNotification(t); rn.TradeStatus != alipay.TradeStatusClosed || rn.RefundFee != "12.34" {
		t.Fatalf("full refund notification: %+v", rn)
	}
	if q := env.query(t, "T1001"); q.TradeStatus != alipay.TradeStatusClosed {
		t.Fatalf("fully refunded trade: status %s", q.TradeStatus)
	}
}

func TestAlipayCloseThenPayAfterClose(t *testing.T) {
	t.Parallel()
	env := newAlipayEnv(t, nil)
	ctx := context.Background()
	pre := env.precreate(t, "T2001", "1.00")
	httpGet(t, pre.QRCode) // scanned: Alipay now knows the trade and notifies about it

	rsp, err := env.client.TradeClose(ctx, alipay.TradeClose{OutTradeNo: "T2001"})
	if err != nil || !rsp.IsSuccess() {
		t.Fatalf("TradeClose: %+v, %v", rsp, err)
	}
	if n := env.mustNotification(t); n.TradeStatus != alipay.TradeStatusClosed || n.GmtClose == "" {
		t.Fatalf("close notification: %+v", n)
	}
	if q := env.query(t, "T2001"); q.TradeStatus != alipay.TradeStatusClosed {
		t.Fatalf("query after close: %s", q.TradeStatus)
	}
	if err := env.sb.Pay("T2001"); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("paying a closed trade: got %v, want ErrConflict", err)
	}
	if rsp, _ := env.client.TradePreCreate(ctx, alipay.TradePreCreate{Trade: alipay.Trade{
		Subject: "Water bill", OutTradeNo: "T2001", TotalAmount: "1.00",
	}}); rsp == nil || rsp.SubCode != "ACQ.TRADE_HAS_CLOSE" {
		t.Fatalf("precreate of a closed trade: %+v", rsp)
	}

	// The payer's money arrives anyway.
	if err := env.sb.PayAfterClose("T2001"); err != nil {
		t.Fatalf("PayAfterClose: %v", err)
	}
	if n := env.mustNotification(t); n.TradeStatus != alipay.TradeStatusSuccess {
		t.Fatalf("pay-after-close notification: %+v", n)
	}
	if q := env.query(t, "T2001"); q.TradeStatus != alipay.TradeStatusSuccess {
		t.Fatalf("query after late payment: %s", q.TradeStatus)
	}
	if rsp, _ := env.client.TradeClose(ctx, alipay.TradeClose{OutTradeNo: "T2001"}); rsp == nil || rsp.SubCode != "ACQ.TRADE_STATUS_ERROR" {
		t.Fatalf("closing a paid trade: %+v", rsp)
	}
	if rsp, _ := env.client.TradePreCreate(ctx, alipay.TradePreCreate{Trade: alipay.Trade{
		Subject: "Water bill", OutTradeNo: "T2001", TotalAmount: "1.00",
	}}); rsp == nil || rsp.SubCode != "ACQ.TRADE_HAS_SUCCESS" {
		t.Fatalf("precreate of a paid trade: %+v", rsp)
	}
}

func TestAlipayCancel(t *testing.T) {
	t.Parallel()
	env := newAlipayEnv(t, nil)
	ctx := context.Background()

	env.precreate(t, "T3001", "3.00")
	c, err := env.client.TradeCancel(ctx, alipay.TradeCancel{OutTradeNo: "T3001"})
	if err != nil || !c.IsSuccess() || c.Action != "close" || c.RetryFlag != "N" {
		t.Fatalf("cancel of an unpaid trade: %+v, %v", c, err)
	}
	if q := env.query(t, "T3001"); q.TradeStatus != alipay.TradeStatusClosed {
		t.Fatalf("after cancel: %s", q.TradeStatus)
	}

	env.precreate(t, "T3002", "3.00")
	if err := env.sb.Pay("T3002"); err != nil {
		t.Fatal(err)
	}
	env.mustNotification(t)
	c, err = env.client.TradeCancel(ctx, alipay.TradeCancel{OutTradeNo: "T3002"})
	if err != nil || !c.IsSuccess() || c.Action != "refund" {
		t.Fatalf("cancel of a paid trade: %+v, %v", c, err)
	}
	if n := env.mustNotification(t); n.TradeStatus != alipay.TradeStatusClosed || n.RefundFee != "3.00" {
		t.Fatalf("cancel notification: %+v", n)
	}
	if c, _ := env.client.TradeCancel(ctx, alipay.TradeCancel{OutTradeNo: "nope"}); c == nil || c.SubCode != "ACQ.TRADE_NOT_EXIST" {
		t.Fatalf("cancel of an unknown trade: %+v", c)
	}
}

func TestAlipayRejectsBadRequests(t *testing.T) {
	t.Parallel()
	env := newAlipayEnv(t, nil)
	ctx := context.Background()

	// Signed with a key the app never registered.
	stranger := newAlipayClient(t, env.srv, testKey(t, keyStranger).PrivateKeyPEM, env.sb.PublicKeyPEM())
	_, err := stranger.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "T1"})
	var aerr *alipay.Error
	if !errors.As(err, &aerr) || aerr.Code != alipay.CodeInvalidParam || aerr.SubCode != "isv.invalid-signature" {
		t.Fatalf("bad signature: got %v", err)
	}

	// An app the sandbox does not know.
	other, err := alipay.New("2021999999999999", testKey(t, keyAlipayApp).PrivateKeyPEM, false,
		alipay.WithSandboxGateway(env.srv.URL+sandbox.AlipayGatewayPath), alipay.WithHTTPClient(env.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	_ = other.LoadAliPayPublicKey(env.sb.PublicKeyPEM())
	if _, err := other.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "T1"}); !errors.As(err, &aerr) || aerr.SubCode != "isv.invalid-app-id" {
		t.Fatalf("unknown app: got %v", err)
	}

	// Business errors are signed answers the SDK returns as results.
	if q := env.query(t, "missing"); q.Code != alipay.CodeBusinessFailed {
		t.Fatalf("unknown trade: %+v", q)
	} else {
		wantSubCode(t, "unknown trade", q.Error, "ACQ.TRADE_NOT_EXIST")
	}
	for _, amount := range []string{"0", "0.00", "12.345", "-1", "1e3", "abc", "100000000.01", ""} {
		rsp, err := env.client.TradePreCreate(ctx, alipay.TradePreCreate{Trade: alipay.Trade{
			Subject: "x", OutTradeNo: "BAD1", TotalAmount: amount,
		}})
		if err != nil || rsp.SubCode != "ACQ.INVALID_PARAMETER" {
			t.Errorf("amount %q: got %+v, %v", amount, rsp, err)
		}
	}

	// Garbage gets Alipay's error format, never a panic or an HTML page.
	for name, form := range map[string]url.Values{
		"no method":      {"app_id": {testAppID}},
		"unknown method": {"method": {"alipay.trade.teleport"}},
		"no signature":   {"method": {"alipay.trade.query"}, "app_id": {testAppID}},
		"bad biz":        {"method": {"alipay.trade.query"}, "app_id": {testAppID}, "sign_type": {"RSA2"}, "sign": {"@@@"}, "biz_content": {"{"}},
	} {
		resp, err := env.srv.Client().PostForm(env.srv.URL+sandbox.AlipayGatewayPath, form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"code":"40001"`) && !strings.Contains(string(body), `"code":"40002"`) {
			t.Errorf("%s: %s", name, body)
		}
	}
}

func TestAlipayForgedAndRetriedNotifications(t *testing.T) {
	t.Parallel()
	env := newAlipayEnv(t, nil)
	env.precreate(t, "T4001", "8.00")
	env.sb.FaultNext(sandbox.Fault{Forge: true})
	if err := env.sb.Pay("T4001"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.nextNotification(t); err == nil {
		t.Fatal("forged notification verified")
	}
	genuine := env.mustNotification(t)
	if genuine.TradeStatus != alipay.TradeStatusSuccess {
		t.Fatalf("genuine notification: %+v", genuine)
	}
	waitIdle(t, env.sb.WaitIdle)
	ds := env.sb.Deliveries()
	if len(ds) != 2 || !ds[0].Forged || ds[0].Accepted || ds[1].Forged || !ds[1].Accepted {
		t.Fatalf("deliveries: %+v", ds)
	}

	// A merchant that fails twice gets the same notification again.
	fails := 2
	flaky := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if fails > 0 {
			fails--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "success")
	})
	if _, err := env.client.TradePreCreate(context.Background(), alipay.TradePreCreate{Trade: alipay.Trade{
		NotifyURL: flaky.URL, Subject: "x", OutTradeNo: "T4002", TotalAmount: "1.00",
	}}); err != nil {
		t.Fatal(err)
	}
	if err := env.sb.Pay("T4002"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		r := flaky.next(t)
		_ = r.ParseForm()
		ids = append(ids, r.Form.Get("notify_id"))
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("retries must keep notify_id: %v", ids)
	}
	waitIdle(t, env.sb.WaitIdle)
	flaky.none(t)
}

func TestAlipayPagePayWapPayAndAppPay(t *testing.T) {
	t.Parallel()
	env := newAlipayEnv(t, nil)
	returnURL := "https://merchant.example/return?from=alipay"

	u, err := env.client.TradePagePay(alipay.TradePagePay{Trade: alipay.Trade{
		NotifyURL: env.notify.URL, ReturnURL: returnURL, Subject: "Parking", OutTradeNo: "P5001",
		TotalAmount: "25.50", ProductCode: "FAST_INSTANT_TRADE_PAY",
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The trade exists once the payer's browser opens the URL, as at Alipay.
	if err := env.sb.Pay("P5001"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("paying before the page was opened: %v", err)
	}
	page := httpGet(t, u.String())
	if !strings.Contains(page, "25.50") || !strings.Contains(page, "Parking") {
		t.Fatalf("page pay cashier:\n%s", page)
	}
	action := between(page, `action="`, `"`)
	resp, err := env.srv.Client().Post(env.srv.URL+action, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "TRADE_SUCCESS") {
		t.Fatalf("Pay button: %d\n%s", resp.StatusCode, body)
	}
	// The synchronous return is signed like Alipay's.
	back, err := url.Parse(html.UnescapeString(between(string(body), `id="return" href="`, `"`)))
	if err != nil {
		t.Fatal(err)
	}
	if back.Query().Get("from") != "alipay" || back.Query().Get("method") != "alipay.trade.page.pay.return" {
		t.Fatalf("return URL %s", back)
	}
	if err := env.client.VerifySign(context.Background(), back.Query()); err != nil {
		t.Fatalf("return URL signature: %v", err)
	}
	if n := env.mustNotification(t); n.OutTradeNo != "P5001" || n.TotalAmount != "25.50" {
		t.Fatalf("page pay notification: %+v", n)
	}

	// Wap pay: the same flow behind a different method.
	wu, err := env.client.TradeWapPay(alipay.TradeWapPay{Trade: alipay.Trade{
		NotifyURL: env.notify.URL, Subject: "Parking", OutTradeNo: "W5002", TotalAmount: "1.00", ProductCode: "QUICK_WAP_WAY",
	}})
	if err != nil {
		t.Fatal(err)
	}
	httpGet(t, wu.String())
	if err := env.sb.Pay("W5002"); err != nil {
		t.Fatal(err)
	}
	env.mustNotification(t)

	// App pay: the SDK only builds the order string; the "Alipay app" hands
	// it to the sandbox.
	order, err := env.client.TradeAppPay(alipay.TradeAppPay{Trade: alipay.Trade{
		NotifyURL: env.notify.URL, Subject: "Top-up", OutTradeNo: "A5003", TotalAmount: "9.99", ProductCode: "QUICK_MSECURITY_PAY",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.sb.SubmitAppOrder(order + "x"); !errors.Is(err, sandbox.ErrRejected) {
		t.Fatalf("tampered order string: %v", err)
	}
	no := postJSON(t, env.srv, sandbox.AlipayControlPrefix+"/app-orders", map[string]string{"order_string": order}, http.StatusOK)
	if no["out_trade_no"] != "A5003" {
		t.Fatalf("app order: %v", no)
	}
	postJSON(t, env.srv, sandbox.AlipayControlPrefix+"/trades/A5003/pay", nil, http.StatusOK)
	if n := env.mustNotification(t); n.OutTradeNo != "A5003" || n.TotalAmount != "9.99" {
		t.Fatalf("app pay notification: %+v", n)
	}
}

func TestAlipayManualRefundsAndHiddenTrades(t *testing.T) {
	t.Parallel()
	env := newAlipayEnv(t, func(o *sandbox.AlipayOptions) {
		o.ManualRefunds = true
		o.HideUnscannedTrades = true
	})
	ctx := context.Background()
	pre := env.precreate(t, "T6001", "4.00")
	if q := env.query(t, "T6001"); q.SubCode != "ACQ.TRADE_NOT_EXIST" {
		t.Fatalf("unscanned precreate trade must not exist yet: %+v", q)
	}
	httpGet(t, pre.QRCode)
	if q := env.query(t, "T6001"); q.TradeStatus != alipay.TradeStatusWaitBuyerPay {
		t.Fatalf("scanned trade: %+v", q)
	}
	if err := env.sb.Pay("T6001"); err != nil {
		t.Fatal(err)
	}
	env.mustNotification(t)

	r := env.refund(t, "T6001", "R1", "4.00")
	if !r.IsSuccess() || r.FundChange != "N" || r.RefundFee != "0.00" {
		t.Fatalf("processing refund: %+v", r)
	}
	if again := env.refund(t, "T6001", "R2", "0.01"); again.SubCode != "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL" {
		t.Fatalf("a processing refund must hold its amount: %+v", again)
	}
	rq, _ := env.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "T6001", OutRequestNo: "R1"})
	if rq == nil || rq.RefundStatus != "" || rq.RefundAmount != "4.00" {
		t.Fatalf("processing refund query: %+v", rq)
	}
	if err := env.sb.CompleteRefund("T6001", "R1"); err != nil {
		t.Fatal(err)
	}
	if n := env.mustNotification(t); n.RefundFee != "4.00" || n.TradeStatus != alipay.TradeStatusClosed {
		t.Fatalf("refund notification: %+v", n)
	}
	rq, _ = env.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "T6001", OutRequestNo: "R1"})
	if rq == nil || rq.RefundStatus != "REFUND_SUCCESS" {
		t.Fatalf("completed refund query: %+v", rq)
	}
	if err := env.sb.CompleteRefund("T6001", "R1"); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("completing twice: %v", err)
	}

	env.sb.SetBalanceShort(testAppID, true)
	env.precreate(t, "T6002", "1.00")
	_ = env.sb.Pay("T6002")
	env.mustNotification(t)
	if r := env.refund(t, "T6002", "R1", "1.00"); r.SubCode != "ACQ.SELLER_BALANCE_NOT_ENOUGH" {
		t.Fatalf("short balance: %+v", r)
	}
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", u, resp.StatusCode, body)
	}
	return string(body)
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}
