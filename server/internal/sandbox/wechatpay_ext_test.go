package sandbox_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/app"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/h5"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/jsapi"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/native"
	"github.com/wechatpay-apiv3/wechatpay-go/services/refunddomestic"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"

	"github.com/paycenter/paycenter/server/internal/sandbox"
)

const (
	testMchID    = "1900000109"
	testAppIDWx  = "wxd678efh567hg6787"
	testSerialNo = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	testAPIv3Key = "0123456789abcdefghijABCDEFGHIJ01"
)

type wechatEnv struct {
	sb      *sandbox.WechatPay
	srv     *httptest.Server
	client  *core.Client
	native  native.NativeApiService
	refunds refunddomestic.RefundsApiService
	handler *notify.Handler
	notify  *receiver
}

// newWechatEnv starts a sandbox with the test merchant registered, a real
// SDK client reaching it through RewriteTransport, and a notify endpoint
// that parses with the SDK's notify handler.
func newWechatEnv(t *testing.T, configure func(*sandbox.WechatPayOptions)) *wechatEnv {
	t.Helper()
	opts := sandbox.WechatPayOptions{Options: testOptions(t, keyWechatSandbox)}
	if configure != nil {
		configure(&opts)
	}
	sb, err := sandbox.NewWechatPay(opts)
	if err != nil {
		t.Fatalf("NewWechatPay: %v", err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close)
	merchant := testKey(t, keyWechatMerchant)
	if err := sb.RegisterMerchant(testMchID, testSerialNo, merchant.PublicKeyPEM, testAPIv3Key); err != nil {
		t.Fatalf("RegisterMerchant: %v", err)
	}
	env := &wechatEnv{sb: sb, srv: srv, client: newWechatClient(t, sb, srv, merchant.PrivateKeyPEM)}
	env.native = native.NativeApiService{Client: env.client}
	env.refunds = refunddomestic.RefundsApiService{Client: env.client}
	env.handler, err = notify.NewRSANotifyHandler(testAPIv3Key,
		verifiers.NewSHA256WithRSAPubkeyVerifier(sb.PublicKeyID(), *sb.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	env.notify = newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := env.handler.ParseNotifyRequest(r.Context(), r, &map[string]any{}); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"code":"FAIL","message":"invalid notification"}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return env
}

func newWechatClient(t *testing.T, sb *sandbox.WechatPay, srv *httptest.Server, privateKeyPEM string) *core.Client {
	t.Helper()
	key, err := utils.LoadPrivateKey(privateKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := sandbox.RewriteTransport(srv.URL, srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	client, err := core.NewClient(context.Background(),
		option.WithWechatPayPublicKeyAuthCipher(testMchID, testSerialNo, key, sb.PublicKeyID(), sb.PublicKey()),
		option.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatalf("core.NewClient: %v", err)
	}
	return client
}

func (env *wechatEnv) prepayNative(t *testing.T, outTradeNo string, total int64) string {
	t.Helper()
	rsp, _, err := env.native.Prepay(context.Background(), native.PrepayRequest{
		Appid: core.String(testAppIDWx), Mchid: core.String(testMchID), Description: core.String("Water bill"),
		OutTradeNo: core.String(outTradeNo), NotifyUrl: core.String(env.notify.URL + "/notify/wechatpay"),
		Attach: core.String("room-101"), Amount: &native.Amount{Total: core.Int64(total), Currency: core.String("CNY")},
	})
	if err != nil {
		t.Fatalf("native Prepay: %v", err)
	}
	return *rsp.CodeUrl
}

// nextNotification parses the next notification with the SDK into content.
func (env *wechatEnv) nextNotification(t *testing.T, content any) (*notify.Request, error) {
	t.Helper()
	return env.handler.ParseNotifyRequest(context.Background(), env.notify.next(t), content)
}

func (env *wechatEnv) query(t *testing.T, outTradeNo string) *payments.Transaction {
	t.Helper()
	tx, _, err := env.native.QueryOrderByOutTradeNo(context.Background(), native.QueryOrderByOutTradeNoRequest{
		OutTradeNo: core.String(outTradeNo), Mchid: core.String(testMchID),
	})
	if err != nil {
		t.Fatalf("QueryOrderByOutTradeNo: %v", err)
	}
	return tx
}

func wantAPIError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var apiErr *core.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != status || apiErr.Code != code {
		t.Fatalf("%s: got %v, want %d %s", what, err, status, code)
	}
}

func TestWechatNativePayRefundLifecycle(t *testing.T) {
	t.Parallel()
	env := newWechatEnv(t, nil)
	ctx := context.Background()

	codeURL := env.prepayNative(t, "TW1001", 1234)
	if !strings.HasPrefix(codeURL, env.srv.URL+sandbox.WechatPayControlPrefix+"/cashier/") {
		t.Fatalf("code_url %q is not a sandbox URL", codeURL)
	}
	if tx := env.query(t, "TW1001"); *tx.TradeState != "NOTPAY" || tx.TransactionId != nil {
		t.Fatalf("before payment: %v", tx)
	}
	if page := httpGet(t, codeURL); !strings.Contains(page, "12.34") || !strings.Contains(page, "Water bill") {
		t.Fatalf("cashier page:\n%s", page)
	}
	if err := env.sb.Pay("TW1001"); err != nil {
		t.Fatalf("Pay: %v", err)
	}
	var tx payments.Transaction
	req, err := env.nextNotification(t, &tx)
	if err != nil {
		t.Fatalf("notification does not parse: %v", err)
	}
	if req.EventType != "TRANSACTION.SUCCESS" || req.ResourceType != "encrypt-resource" || req.Resource.OriginalType != "transaction" {
		t.Fatalf("envelope: %+v", req)
	}
	if *tx.TradeState != "SUCCESS" || *tx.OutTradeNo != "TW1001" || *tx.Amount.Total != 1234 || *tx.Amount.PayerTotal != 1234 ||
		*tx.Mchid != testMchID || *tx.Appid != testAppIDWx || *tx.Attach != "room-101" || *tx.TradeType != "NATIVE" ||
		tx.TransactionId == nil || tx.Payer == nil || tx.SuccessTime == nil {
		t.Fatalf("transaction: %v", tx)
	}
	q := env.query(t, "TW1001")
	if *q.TradeState != "SUCCESS" || *q.TransactionId != *tx.TransactionId {
		t.Fatalf("query: %v", q)
	}
	byID, _, err := env.native.QueryOrderById(ctx, native.QueryOrderByIdRequest{TransactionId: tx.TransactionId, Mchid: core.String(testMchID)})
	if err != nil || *byID.OutTradeNo != "TW1001" {
		t.Fatalf("QueryOrderById: %v, %v", byID, err)
	}

	refundNotify := env.notify.URL + "/notify/wechatpay/refund"
	createRefund := func(outRefundNo string, amount int64) (*refunddomestic.Refund, error) {
		r, _, err := env.refunds.Create(ctx, refunddomestic.CreateRequest{
			TransactionId: tx.TransactionId, OutRefundNo: core.String(outRefundNo), NotifyUrl: core.String(refundNotify),
			Amount: &refunddomestic.AmountReq{Refund: core.Int64(amount), Total: core.Int64(1234), Currency: core.String("CNY")},
		})
		return r, err
	}
	r1, err := createRefund("RF1", 1000)
	if err != nil || *r1.Status != refunddomestic.STATUS_PROCESSING || *r1.Amount.Refund != 1000 || r1.RefundId == nil {
		t.Fatalf("create refund: %v, %v", r1, err)
	}
	var rn map[string]any
	req, err = env.nextNotification(t, &rn)
	if err != nil || req.EventType != "REFUND.SUCCESS" || rn["refund_status"] != "SUCCESS" || rn["out_refund_no"] != "RF1" {
		t.Fatalf("refund notification: %+v %v %v", req, rn, err)
	}
	got, _, err := env.refunds.QueryByOutRefundNo(ctx, refunddomestic.QueryByOutRefundNoRequest{OutRefundNo: core.String("RF1")})
	if err != nil || *got.Status != refunddomestic.STATUS_SUCCESS || got.SuccessTime == nil || *got.OutTradeNo != "TW1001" {
		t.Fatalf("query refund: %v, %v", got, err)
	}
	if again, err := createRefund("RF1", 1000); err != nil || *again.RefundId != *r1.RefundId {
		t.Fatalf("repeated refund must return the same refund: %v, %v", again, err)
	}
	_, err = createRefund("RF2", 235)
	wantAPIError(t, "over-refund", err, http.StatusBadRequest, "INVALID_REQUEST")
	if _, err := createRefund("RF2", 234); err != nil {
		t.Fatalf("refund of the rest: %v", err)
	}
	if _, err := env.nextNotification(t, &rn); err != nil {
		t.Fatal(err)
	}
	if tx := env.query(t, "TW1001"); *tx.TradeState != "REFUND" {
		t.Fatalf("refunded order: %v", tx)
	}
	_, _, err = env.refunds.QueryByOutRefundNo(ctx, refunddomestic.QueryByOutRefundNoRequest{OutRefundNo: core.String("nope")})
	wantAPIError(t, "unknown refund", err, http.StatusNotFound, "RESOURCE_NOT_EXISTS")

	env.sb.SetBalanceShort(testMchID, true)
	env.prepayNative(t, "TW1002", 100)
	_ = env.sb.Pay("TW1002")
	env.notify.next(t)
	_, _, err = env.refunds.Create(ctx, refunddomestic.CreateRequest{
		OutTradeNo: core.String("TW1002"), OutRefundNo: core.String("RF3"),
		Amount: &refunddomestic.AmountReq{Refund: core.Int64(100), Total: core.Int64(100), Currency: core.String("CNY")},
	})
	wantAPIError(t, "short balance", err, http.StatusForbidden, "NOT_ENOUGH")
}

func TestWechatCloseAndErrors(t *testing.T) {
	t.Parallel()
	env := newWechatEnv(t, nil)
	ctx := context.Background()

	env.prepayNative(t, "TW2001", 100)
	if _, err := env.native.CloseOrder(ctx, native.CloseOrderRequest{OutTradeNo: core.String("TW2001"), Mchid: core.String(testMchID)}); err != nil {
		t.Fatalf("CloseOrder (204, signed empty body): %v", err)
	}
	if tx := env.query(t, "TW2001"); *tx.TradeState != "CLOSED" {
		t.Fatalf("after close: %v", tx)
	}
	_, _, err := env.native.Prepay(ctx, native.PrepayRequest{
		Appid: core.String(testAppIDWx), Mchid: core.String(testMchID), Description: core.String("Water bill"),
		OutTradeNo: core.String("TW2001"), NotifyUrl: core.String(env.notify.URL), Amount: &native.Amount{Total: core.Int64(100)},
	})
	wantAPIError(t, "prepay of a closed order", err, http.StatusBadRequest, "ORDER_CLOSED")

	if err := env.sb.PayAfterClose("TW2001"); err != nil {
		t.Fatal(err)
	}
	var tx payments.Transaction
	if _, err := env.nextNotification(t, &tx); err != nil || *tx.TradeState != "SUCCESS" {
		t.Fatalf("pay-after-close notification: %v, %v", tx, err)
	}
	_, err = env.native.CloseOrder(ctx, native.CloseOrderRequest{OutTradeNo: core.String("TW2001"), Mchid: core.String(testMchID)})
	wantAPIError(t, "closing a paid order", err, http.StatusBadRequest, "ORDERPAID")

	_, _, err = env.native.QueryOrderByOutTradeNo(ctx, native.QueryOrderByOutTradeNoRequest{OutTradeNo: core.String("nope"), Mchid: core.String(testMchID)})
	wantAPIError(t, "unknown order", err, http.StatusNotFound, "ORDER_NOT_EXIST")

	_, _, err = env.native.Prepay(ctx, native.PrepayRequest{
		Appid: core.String(testAppIDWx), Mchid: core.String(testMchID), Description: core.String("x"),
		OutTradeNo: core.String("TW2002"), NotifyUrl: core.String(env.notify.URL + "?q=1"), Amount: &native.Amount{Total: core.Int64(1)},
	})
	wantAPIError(t, "notify_url with a query", err, http.StatusBadRequest, "PARAM_ERROR")

	env.prepayNative(t, "TW2003", 100)
	_, _, err = env.native.Prepay(ctx, native.PrepayRequest{
		Appid: core.String(testAppIDWx), Mchid: core.String(testMchID), Description: core.String("Water bill"),
		OutTradeNo: core.String("TW2003"), NotifyUrl: core.String(env.notify.URL), Amount: &native.Amount{Total: core.Int64(999)},
	})
	wantAPIError(t, "same out_trade_no, other amount", err, http.StatusBadRequest, "OUT_TRADE_NO_USED")
	if err := env.sb.Fail("TW2003"); err != nil {
		t.Fatal(err)
	}
	if tx := env.query(t, "TW2003"); *tx.TradeState != "PAYERROR" {
		t.Fatalf("failed payment: %v", tx)
	}
}

func TestWechatOtherPrepayKinds(t *testing.T) {
	t.Parallel()
	env := newWechatEnv(t, nil)
	ctx := context.Background()
	notifyURL := core.String(env.notify.URL)

	js := jsapi.JsapiApiService{Client: env.client}
	jr, _, err := js.PrepayWithRequestPayment(ctx, jsapi.PrepayRequest{
		Appid: core.String(testAppIDWx), Mchid: core.String(testMchID), Description: core.String("JSAPI"),
		OutTradeNo: core.String("TJ3001"), NotifyUrl: notifyURL, Amount: &jsapi.Amount{Total: core.Int64(1)},
		Payer: &jsapi.Payer{Openid: core.String("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")},
	})
	if err != nil || !strings.HasPrefix(*jr.PrepayId, "wx") || *jr.Package != "prepay_id="+*jr.PrepayId {
		t.Fatalf("jsapi: %v, %v", jr, err)
	}
	_, _, err = js.Prepay(ctx, jsapi.PrepayRequest{
		Appid: core.String(testAppIDWx), Mchid: core.String(testMchID), Description: core.String("JSAPI"),
		OutTradeNo: core.String("TJ3002"), NotifyUrl: notifyURL, Amount: &jsapi.Amount{Total: core.Int64(1)},
		Payer: &jsapi.Payer{},
	})
	wantAPIError(t, "jsapi without openid", err, http.StatusBadRequest, "PARAM_ERROR")

	hs := h5.H5ApiService{Client: env.client}
	hr, _, err := hs.Prepay(ctx, h5.PrepayRequest{
		Appid: core.String(testAppIDWx), Mchid: core.String(testMchID), Description: core.String("H5"),
		OutTradeNo: core.String("TH3003"), NotifyUrl: notifyURL, Amount: &h5.Amount{Total: core.Int64(250)},
		SceneInfo: &h5.SceneInfo{PayerClientIp: core.String("127.0.0.1"), H5Info: &h5.H5Info{Type: core.String("Wap")}},
	})
	if err != nil {
		t.Fatalf("h5: %v", err)
	}
	if page := httpGet(t, *hr.H5Url); !strings.Contains(page, "2.50") {
		t.Fatalf("h5 cashier:\n%s", page)
	}

	as := app.AppApiService{Client: env.client}
	ar, _, err := as.Prepay(ctx, app.PrepayRequest{
		Appid: core.String(testAppIDWx), Mchid: core.String(testMchID), Description: core.String("APP"),
		OutTradeNo: core.String("TA3004"), NotifyUrl: notifyURL, Amount: &app.Amount{Total: core.Int64(7)},
	})
	if err != nil || ar.PrepayId == nil {
		t.Fatalf("app: %v, %v", ar, err)
	}
	for _, no := range []string{"TJ3001", "TH3003", "TA3004"} {
		if err := env.sb.Pay(no); err != nil {
			t.Fatal(err)
		}
		var tx payments.Transaction
		if _, err := env.nextNotification(t, &tx); err != nil || *tx.OutTradeNo != no || *tx.TradeState != "SUCCESS" {
			t.Fatalf("%s notification: %v, %v", no, tx, err)
		}
	}
	tx, _, err := as.QueryOrderByOutTradeNo(ctx, app.QueryOrderByOutTradeNoRequest{OutTradeNo: core.String("TJ3001"), Mchid: core.String(testMchID)})
	if err != nil || *tx.TradeType != "JSAPI" || *tx.Payer.Openid == "" {
		t.Fatalf("jsapi query: %v, %v", tx, err)
	}
}

func TestWechatRejectsBadRequests(t *testing.T) {
	t.Parallel()
	env := newWechatEnv(t, nil)
	ctx := context.Background()

	stranger := newWechatClient(t, env.sb, env.srv, testKey(t, keyStranger).PrivateKeyPEM)
	_, _, err := (&native.NativeApiService{Client: stranger}).QueryOrderByOutTradeNo(ctx,
		native.QueryOrderByOutTradeNoRequest{OutTradeNo: core.String("W1"), Mchid: core.String(testMchID)})
	wantAPIError(t, "bad signature", err, http.StatusUnauthorized, "SIGN_ERROR")

	for name, req := range map[string]*http.Request{
		"no authorization": httptest.NewRequest(http.MethodPost, "/v3/pay/transactions/native", strings.NewReader("{")),
		"garbage authorization": func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/v3/pay/transactions/out-trade-no/x?mchid="+testMchID, nil)
			r.Header.Set("Authorization", `WECHATPAY2-SHA256-RSA2048 mchid="`+testMchID+`",nonce_str="n",timestamp="x",serial_no="`+testSerialNo+`",signature="!!"`)
			return r
		}(),
		"unknown endpoint": httptest.NewRequest(http.MethodDelete, "/v3/teleport", nil),
	} {
		rec := httptest.NewRecorder()
		env.sb.ServeHTTP(rec, req)
		if rec.Code < 400 || !strings.Contains(rec.Body.String(), `"code":`) || rec.Header().Get("Wechatpay-Signature") == "" {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
}

func TestWechatNotificationFaults(t *testing.T) {
	t.Parallel()
	env := newWechatEnv(t, func(o *sandbox.WechatPayOptions) { o.ManualRefunds = true })
	ctx := context.Background()

	// Duplicate ×2: three deliveries of one notification id.
	env.prepayNative(t, "TW4001", 100)
	env.sb.FaultNext(sandbox.Fault{Duplicate: 2})
	if err := env.sb.Pay("TW4001"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		var tx payments.Transaction
		req, err := env.nextNotification(t, &tx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, req.ID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("duplicates must share the id: %v", ids)
	}

	// Drop: the notification never arrives, but the order is paid.
	env.prepayNative(t, "TW4002", 100)
	env.sb.FaultNext(sandbox.Fault{Drop: true})
	if err := env.sb.Pay("TW4002"); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, env.sb.WaitIdle)
	env.notify.none(t)
	if tx := env.query(t, "TW4002"); *tx.TradeState != "SUCCESS" {
		t.Fatalf("dropped notification, paid order: %v", tx)
	}

	// Forge: the forged copy fails the SDK's verification.
	env.prepayNative(t, "TW4003", 100)
	env.sb.FaultTrade("TW4003", sandbox.Fault{Forge: true, Drop: true})
	if err := env.sb.Pay("TW4003"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.nextNotification(t, &payments.Transaction{}); err == nil {
		t.Fatal("forged notification verified")
	}
	waitIdle(t, env.sb.WaitIdle)
	env.notify.none(t)

	// Reorder: the payment notification is held until the refund's is out.
	env.prepayNative(t, "TW4004", 100)
	env.sb.FaultNext(sandbox.Fault{Reorder: true})
	if err := env.sb.Pay("TW4004"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.refunds.Create(ctx, refunddomestic.CreateRequest{
		OutTradeNo: core.String("TW4004"), OutRefundNo: core.String("RF4"), NotifyUrl: core.String(env.notify.URL),
		Amount: &refunddomestic.AmountReq{Refund: core.Int64(40), Total: core.Int64(100), Currency: core.String("CNY")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.sb.CompleteRefund("TW4004", "RF4"); err != nil {
		t.Fatal(err)
	}
	first, err := env.nextNotification(t, &map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := env.nextNotification(t, &map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if first.EventType != "REFUND.SUCCESS" || second.EventType != "TRANSACTION.SUCCESS" {
		t.Fatalf("order: %s then %s", first.EventType, second.EventType)
	}

	// Delay holds the first attempt back.
	env.prepayNative(t, "TW4005", 100)
	env.sb.FaultNext(sandbox.Fault{Delay: 300 * time.Millisecond})
	if err := env.sb.Pay("TW4005"); err != nil {
		t.Fatal(err)
	}
	env.notify.none(t)
	env.notify.next(t)
}

func TestWechatControlEndpoints(t *testing.T) {
	t.Parallel()
	env := newWechatEnv(t, nil)
	p := sandbox.WechatPayControlPrefix

	var key map[string]any
	getJSON(t, env.srv, p+"/public-key", &key)
	if key["public_key_id"] != env.sb.PublicKeyID() || !strings.Contains(key["public_key_pem"].(string), "PUBLIC KEY") {
		t.Fatalf("public key: %v", key)
	}
	env.prepayNative(t, "TW5001", 300)
	postJSON(t, env.srv, p+"/faults", map[string]any{"out_trade_no": "TW5001", "duplicate": 1}, http.StatusNoContent)
	info := postJSON(t, env.srv, p+"/trades/TW5001/pay", nil, http.StatusOK)
	if info["status"] != "SUCCESS" || info["amount"] != float64(300) {
		t.Fatalf("pay: %v", info)
	}
	env.notify.next(t)
	env.notify.next(t)
	postJSON(t, env.srv, p+"/trades/TW5001/pay", nil, http.StatusConflict)
	postJSON(t, env.srv, p+"/trades/nope/pay", nil, http.StatusNotFound)
	postJSON(t, env.srv, p+"/faults", map[string]any{"duplicate": -1}, http.StatusBadRequest)
	postJSON(t, env.srv, p+"/refund-mode", map[string]any{"manual": "yes"}, http.StatusBadRequest)
	waitIdle(t, env.sb.WaitIdle)
	var deliveries []sandbox.Delivery
	getJSON(t, env.srv, p+"/notifications", &deliveries)
	if len(deliveries) != 2 {
		t.Fatalf("notifications: %v", deliveries)
	}
}

func TestWechatOrderExpires(t *testing.T) {
	t.Parallel()
	env := newWechatEnv(t, nil)
	ctx := context.Background()
	prepay := func(no string, expire time.Time) error {
		_, _, err := env.native.Prepay(ctx, native.PrepayRequest{
			Appid: core.String(testAppIDWx), Mchid: core.String(testMchID), Description: core.String("x"),
			OutTradeNo: core.String(no), NotifyUrl: core.String(env.notify.URL), TimeExpire: core.Time(expire),
			Amount: &native.Amount{Total: core.Int64(1)},
		})
		return err
	}
	wantAPIError(t, "expiry in the past", prepay("TX6001", time.Now().Add(-time.Minute)), http.StatusBadRequest, "PARAM_ERROR")
	expire := time.Now().Add(2 * time.Second).Truncate(time.Second)
	if err := prepay("TX6002", expire); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(expire) + 50*time.Millisecond)
	if tx := env.query(t, "TX6002"); *tx.TradeState != "CLOSED" {
		t.Fatalf("expired order: %v", tx)
	}
	if err := env.sb.Pay("TX6002"); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("paying an expired order: %v", err)
	}
	if err := env.sb.PayAfterClose("TX6002"); err != nil {
		t.Fatalf("late payment of an expired order: %v", err)
	}
	if tx := env.query(t, "TX6002"); *tx.TradeState != "SUCCESS" {
		t.Fatalf("late-paid order: %v", tx)
	}
}
