package wechatpay_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/channel/wechatpay"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/sandbox"
)

// Every method WeChat Pay supports: prepay, the payer pays, the notification is verified,
// decrypted and acknowledged, Query agrees, Close of the paid order is refused without
// refunding, a partial refund completes and is notified, and QueryRefund agrees.
func TestPayCloseRefundByMethod(t *testing.T) {
	t.Parallel()
	for _, method := range []channel.Method{channel.MethodQR, channel.MethodWAP, channel.MethodApp, channel.MethodJSAPI} {
		t.Run(string(method), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			ctx := context.Background()
			tradeNo := "TW" + string(method[0]) + "1001"

			a := e.prepay(t, method, tradeNo, 1234)
			checkPayerAction(t, e, method, a)
			if q, err := e.ch.Query(ctx, e.cfg, tradeNo); err != nil || q.State != channel.TradePending {
				t.Fatalf("query before payment: %+v, %v", q, err)
			}
			e.pay(t, tradeNo)
			info := e.trade(t, tradeNo)

			n := e.nextOK(t)
			if n.Trade == nil || n.Refund != nil {
				t.Fatalf("payment notification: %+v", n)
			}
			if tr := *n.Trade; tr.State != channel.TradeSucceeded || tr.TradeNo != tradeNo || tr.Amount != 1234 ||
				tr.Currency != "CNY" || tr.TransactionID != info.ChannelNo || tr.TransactionID == "" || tr.PaidAt.IsZero() {
				t.Fatalf("notified trade: %+v (sandbox transaction_id %s)", tr, info.ChannelNo)
			}
			q, err := e.ch.Query(ctx, e.cfg, tradeNo)
			if err != nil || q.State != channel.TradeSucceeded || q.Amount != 1234 || q.TransactionID != info.ChannelNo || q.PaidAt.IsZero() {
				t.Fatalf("query after payment: %+v, %v", q, err)
			}

			if err := e.ch.Close(ctx, e.cfg, tradeNo); !errors.Is(err, channel.ErrTradePaid) {
				t.Fatalf("close of a paid order: %v, want ErrTradePaid", err)
			}
			if info := e.trade(t, tradeNo); info.Status != "SUCCESS" || len(info.Refunds) != 0 {
				t.Fatalf("close touched the paid order: %+v", info)
			}

			refundNo := "R" + tradeNo
			refund := channel.RefundRequest{
				TradeNo: tradeNo, RefundNo: refundNo, Amount: 234, TotalAmount: 1234, Currency: "CNY",
				Reason: "broken pipe", NotifyURL: e.notifyURL(),
			}
			rf, err := e.ch.Refund(ctx, e.cfg, refund)
			if err != nil || rf.State == channel.RefundFailed || rf.RefundNo != refundNo || rf.TradeNo != tradeNo ||
				rf.Amount != 234 || rf.ChannelRefundID == "" {
				t.Fatalf("refund: %+v, %v", rf, err)
			}
			rn := e.nextOK(t)
			if rn.Refund == nil || rn.Trade != nil || *rn.Refund != (channel.Refund{
				TradeNo: tradeNo, RefundNo: refundNo, ChannelRefundID: rf.ChannelRefundID, State: channel.RefundSucceeded, Amount: 234,
			}) {
				t.Fatalf("refund notification: %+v", rn.Refund)
			}
			qr, err := e.ch.QueryRefund(ctx, e.cfg, tradeNo, refundNo)
			if err != nil || qr.State != channel.RefundSucceeded || qr.Amount != 234 || qr.ChannelRefundID != rf.ChannelRefundID {
				t.Fatalf("query refund: %+v, %v", qr, err)
			}
			if again, err := e.ch.Refund(ctx, e.cfg, refund); err != nil || again.ChannelRefundID != rf.ChannelRefundID || again.State != channel.RefundSucceeded {
				t.Fatalf("repeated refund: %+v, %v", again, err)
			}
			if info := e.trade(t, tradeNo); info.Refunded != 234 {
				t.Fatalf("refunded after a repeat: %d", info.Refunded)
			}
			// WeChat says REFUND once money went back: the order was paid.
			if q, err := e.ch.Query(ctx, e.cfg, tradeNo); err != nil || q.State != channel.TradeSucceeded || q.Amount != 1234 {
				t.Fatalf("refunded order: %+v, %v", q, err)
			}

			// Another order by the same method, left unpaid: Close makes it unpayable.
			unpaid := "C" + tradeNo
			e.prepay(t, method, unpaid, 500)
			if err := e.ch.Close(ctx, e.cfg, unpaid); err != nil {
				t.Fatalf("close of an unpaid order: %v", err)
			}
			if q, err := e.ch.Query(ctx, e.cfg, unpaid); err != nil || q.State != channel.TradeClosed {
				t.Fatalf("query after close: %+v, %v", q, err)
			}
			if err := e.sb.Pay(unpaid); !errors.Is(err, sandbox.ErrConflict) {
				t.Fatalf("paying a closed order: %v", err)
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

// checkPayerAction checks what the payer gets, and plays the payer opening it.
func checkPayerAction(t *testing.T, e *env, method channel.Method, a channel.PayerAction) {
	t.Helper()
	_, mk := testKeys(t)
	merchantPub, err := sandbox.ParsePublicKey(mk.PublicKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(message, sig string) {
		t.Helper()
		raw, err := base64.StdEncoding.DecodeString(sig)
		sum := sha256.Sum256([]byte(message))
		if err != nil || rsa.VerifyPKCS1v15(merchantPub, crypto.SHA256, sum[:], raw) != nil {
			t.Fatalf("%s: signature does not verify with the merchant key over %q", method, message)
		}
	}
	switch method {
	case channel.MethodQR:
		if !strings.HasPrefix(a.QRCode, e.srv.URL+sandbox.WechatPayControlPrefix+"/cashier/") || a.PayURL != "" {
			t.Fatalf("QR action: %+v", a)
		}
		if page := httpGet(t, a.QRCode); !strings.Contains(page, "12.34") {
			t.Fatalf("cashier:\n%s", page)
		}
	case channel.MethodWAP:
		u, err := url.Parse(a.PayURL)
		if err != nil || u.Query().Get("redirect_url") != "https://merchant.example/return?order=1" || u.Query().Get("prepay_id") == "" {
			t.Fatalf("H5 action: %+v, %v", a, err)
		}
		httpGet(t, a.PayURL)
	case channel.MethodApp:
		var p map[string]string
		if err := json.Unmarshal([]byte(a.AppParams), &p); err != nil {
			t.Fatalf("app params %q: %v", a.AppParams, err)
		}
		if p["appid"] != testAppID || p["partnerid"] != testMchID || !strings.HasPrefix(p["prepayid"], "wx") ||
			p["package"] != "Sign=WXPay" || p["noncestr"] == "" || p["timestamp"] == "" {
			t.Fatalf("app params: %v", p)
		}
		verify(p["appid"]+"\n"+p["timestamp"]+"\n"+p["noncestr"]+"\n"+p["prepayid"]+"\n", p["sign"])
	case channel.MethodJSAPI:
		var p map[string]string
		if err := json.Unmarshal([]byte(a.JSAPIParams), &p); err != nil {
			t.Fatalf("jsapi params %q: %v", a.JSAPIParams, err)
		}
		if p["appId"] != testAppID || !strings.HasPrefix(p["package"], "prepay_id=wx") || p["signType"] != "RSA" ||
			p["nonceStr"] == "" || p["timeStamp"] == "" || len(p) != 6 {
			t.Fatalf("jsapi params: %v", p)
		}
		verify(p["appId"]+"\n"+p["timeStamp"]+"\n"+p["nonceStr"]+"\n"+p["package"]+"\n", p["paySign"])
	}
}

// recorder keeps the bodies the adapter sends, to check the wire format.
type recorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	bodies []string
	hosts  []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.bodies, r.hosts = append(r.bodies, string(body)), append(r.hosts, req.URL.Host)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func TestPrepaySendsAmountExpiryAndNotifyURL(t *testing.T) {
	t.Parallel()
	rec := &recorder{next: http.DefaultTransport}
	e := newEnv(t, nil, wechatpay.WithHTTPClient(&http.Client{Transport: rec}))
	req := e.prepayRequest(channel.MethodQR, "TE1001", 123456)
	req.ExpireAt = time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC) // 15:08:09 in Beijing
	if _, err := e.ch.Prepay(context.Background(), e.cfg, req); err != nil {
		t.Fatal(err)
	}
	var sent map[string]any
	if len(rec.bodies) != 1 || json.Unmarshal([]byte(rec.bodies[0]), &sent) != nil {
		t.Fatalf("requests: %q", rec.bodies)
	}
	if sent["time_expire"] != "2031-05-06T15:08:09+08:00" || sent["notify_url"] != e.notifyURL() ||
		sent["out_trade_no"] != "TE1001" || sent["appid"] != testAppID || sent["mchid"] != testMchID {
		t.Fatalf("prepay body: %v", sent)
	}
	if amount, _ := sent["amount"].(map[string]any); amount["total"] != float64(123456) || amount["currency"] != "CNY" {
		t.Fatalf("amount: %v", sent["amount"])
	}
	if u, _ := url.Parse(e.srv.URL); rec.hosts[0] != u.Host {
		t.Fatalf("request went to %s, not the configured %s", rec.hosts[0], u.Host)
	}
}

func TestCloseUnpaidAndFailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()

	e.prepay(t, channel.MethodQR, "TC1001", 100)
	if err := e.ch.Close(ctx, e.cfg, "TC1001"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if q, err := e.ch.Query(ctx, e.cfg, "TC1001"); err != nil || q.State != channel.TradeClosed {
		t.Fatalf("query after close: %+v, %v", q, err)
	}
	if err := e.sb.Pay("TC1001"); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("paying a closed order: %v", err)
	}
	if err := e.ch.Close(ctx, e.cfg, "TC1001"); err != nil {
		t.Fatalf("closing again: %v", err)
	}
	if err := e.ch.Close(ctx, e.cfg, "TC9999"); err != nil {
		t.Fatalf("closing an unknown order: %v", err)
	}

	e.prepay(t, channel.MethodQR, "TC1002", 100)
	if err := e.sb.Fail("TC1002"); err != nil {
		t.Fatal(err)
	}
	if q, err := e.ch.Query(ctx, e.cfg, "TC1002"); err != nil || q.State != channel.TradeFailed {
		t.Fatalf("failed payment: %+v, %v", q, err)
	}
}

func TestRefundRefusedAndAbnormal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *sandbox.WechatPayOptions) { o.ManualRefunds = true })
	ctx := context.Background()
	e.prepay(t, channel.MethodQR, "TR1001", 100)
	e.pay(t, "TR1001")
	e.nextOK(t)
	req := func(no string, amount int64) channel.RefundRequest {
		return channel.RefundRequest{TradeNo: "TR1001", RefundNo: no, Amount: amount, TotalAmount: 100, NotifyURL: e.notifyURL()}
	}

	e.sb.SetBalanceShort(testMchID, true)
	rf, err := e.ch.Refund(ctx, e.cfg, req("RR1", 100))
	if err != nil || rf.State != channel.RefundFailed || !strings.HasPrefix(rf.FailureReason, "NOT_ENOUGH") {
		t.Fatalf("refund with a short balance: %+v, %v", rf, err)
	}
	e.sb.SetBalanceShort(testMchID, false)
	// RR1 was refused, so all 100 fen are still refundable.
	if rf, err := e.ch.Refund(ctx, e.cfg, req("RR2", 100)); err != nil || rf.State != channel.RefundPending {
		t.Fatalf("processing refund: %+v, %v", rf, err)
	}
	if rf, err := e.ch.Refund(ctx, e.cfg, req("RR3", 1)); err != nil || rf.State != channel.RefundFailed || !strings.HasPrefix(rf.FailureReason, "INVALID_REQUEST") {
		t.Fatalf("refund beyond the refundable amount: %+v, %v", rf, err)
	}
	// The same number with another amount: a refund exists, so it must not become FAILED.
	if rf, err := e.ch.Refund(ctx, e.cfg, req("RR2", 50)); err == nil || rf.State == channel.RefundFailed {
		t.Fatalf("conflicting repeat: %+v, %v", rf, err)
	}
	if qr, err := e.ch.QueryRefund(ctx, e.cfg, "TR1001", "RR2"); err != nil || qr.State != channel.RefundPending {
		t.Fatalf("processing refund: %+v, %v", qr, err)
	}
	if err := e.sb.FailRefund("TR1001", "RR2"); err != nil {
		t.Fatal(err)
	}
	if n := e.nextOK(t); n.Refund == nil || n.Refund.State != channel.RefundFailed || n.Refund.RefundNo != "RR2" || n.Refund.FailureReason != "ABNORMAL" {
		t.Fatalf("abnormal refund notification: %+v", n)
	}
	if qr, err := e.ch.QueryRefund(ctx, e.cfg, "TR1001", "RR2"); err != nil || qr.State != channel.RefundFailed {
		t.Fatalf("abnormal refund: %+v, %v", qr, err)
	}
	if _, err := e.ch.QueryRefund(ctx, e.cfg, "TR1001", "RR1"); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Fatalf("refused refund must be unknown: %v", err)
	}
	if _, err := e.ch.QueryRefund(ctx, e.cfg, "OTHER", "RR2"); err == nil || errors.Is(err, channel.ErrTradeNotFound) {
		t.Fatalf("refund of another order: %v", err)
	}
}

func TestForgedNotificationIsBadSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.prepay(t, channel.MethodQR, "TG1001", 800)
	e.sb.FaultNext(sandbox.Fault{Forge: true})
	e.pay(t, "TG1001")
	forged := e.next(t)
	if !errors.Is(forged.err, channel.ErrBadSignature) || forged.status != http.StatusBadRequest || forged.n.Trade != nil ||
		!strings.Contains(forged.answer, `"code":"FAIL"`) {
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

// A genuine notification replayed with changes, to another merchant's configuration, or
// garbage: nothing verifies, nothing panics.
func TestNotificationTamperingAndGarbage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.prepay(t, channel.MethodQR, "TH1001", 700)
	e.pay(t, "TH1001")
	genuine := e.next(t)
	if genuine.err != nil {
		t.Fatal(genuine.err)
	}
	parse := func(cfg merchant.ChannelConfig, header http.Header, body string) (channel.Notification, error) {
		r := httptest.NewRequest(http.MethodPost, "/notify/wechatpay/app_test", strings.NewReader(body))
		r.Header = header.Clone()
		return e.ch.ParseNotification(context.Background(), cfg, r)
	}
	if n, err := parse(e.cfg, genuine.header, string(genuine.body)); err != nil || n.Trade == nil {
		t.Fatalf("replayed genuine notification: %+v, %v", n, err)
	}
	withSettings := func(change func(*merchant.WechatPaySettings)) merchant.ChannelConfig {
		cfg := e.cfg
		s := *e.cfg.WechatPay
		change(&s)
		cfg.WechatPay = &s
		return cfg
	}
	for name, cfg := range map[string]merchant.ChannelConfig{
		"another merchant": withSettings(func(s *merchant.WechatPaySettings) { s.MchID = "1900000999" }),
		"another app":      withSettings(func(s *merchant.WechatPaySettings) { s.WechatAppID = "wx0000000000000000" }),
		"another APIv3 key": withSettings(func(s *merchant.WechatPaySettings) {
			s.APIv3Key = "ABCDEFGHIJ0123456789abcdefghij01"
		}),
		"another key id": withSettings(func(s *merchant.WechatPaySettings) { s.PlatformPublicKeyID = "PUB_KEY_ID_0000" }),
	} {
		if _, err := parse(cfg, genuine.header, string(genuine.body)); !errors.Is(err, channel.ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	tampered := strings.Replace(string(genuine.body), `"TRANSACTION.SUCCESS"`, `"TRANSACTION.SUCCESS" `, 1)
	if _, err := parse(e.cfg, genuine.header, tampered); !errors.Is(err, channel.ErrBadSignature) {
		t.Errorf("tampered body: %v", err)
	}
	for name, body := range map[string]string{
		"empty":    "",
		"not json": "{{{",
		"huge":     strings.Repeat("a", 70<<10),
	} {
		if _, err := parse(e.cfg, genuine.header, body); !errors.Is(err, channel.ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := parse(e.cfg, http.Header{}, string(genuine.body)); !errors.Is(err, channel.ErrBadSignature) {
		t.Errorf("no signature headers: %v", err)
	}
}

func TestUnknownOrdersAndUnsupportedRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.ch.Query(ctx, e.cfg, "TU9999"); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Errorf("query: %v", err)
	}
	if _, err := e.ch.QueryRefund(ctx, e.cfg, "TU9999", "RU9999"); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Errorf("query refund: %v", err)
	}
	if _, err := e.ch.Refund(ctx, e.cfg, channel.RefundRequest{TradeNo: "TU9999", RefundNo: "RU9999", Amount: 1, TotalAmount: 1}); !errors.Is(err, channel.ErrTradeNotFound) {
		t.Errorf("refund: %v", err)
	}
	unsupported := map[string]func(*channel.PrepayRequest){
		"PC page":         func(r *channel.PrepayRequest) { r.Method = channel.MethodPCPage },
		"unknown method":  func(r *channel.PrepayRequest) { r.Method = "CARRIER_PIGEON" },
		"JSAPI no openid": func(r *channel.PrepayRequest) { r.Method, r.OpenID = channel.MethodJSAPI, "" },
		"H5 no client IP": func(r *channel.PrepayRequest) { r.Method, r.ClientIP = channel.MethodWAP, "" },
		"dollars":         func(r *channel.PrepayRequest) { r.Currency = "USD" },
	}
	for name, change := range unsupported {
		req := e.prepayRequest(channel.MethodQR, "TU1001", 100)
		change(&req)
		if _, err := e.ch.Prepay(ctx, e.cfg, req); !errors.Is(err, channel.ErrUnsupportedMethod) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, change := range map[string]func(*channel.PrepayRequest){
		"notify_url with a query": func(r *channel.PrepayRequest) { r.NotifyURL += "?app=1" },
		"no notify_url":           func(r *channel.PrepayRequest) { r.NotifyURL = "" },
		"zero amount":             func(r *channel.PrepayRequest) { r.Amount = 0 },
	} {
		req := e.prepayRequest(channel.MethodQR, "TU1002", 100)
		change(&req)
		if _, err := e.ch.Prepay(ctx, e.cfg, req); err == nil || errors.Is(err, channel.ErrUnsupportedMethod) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.sb.Trade("TU1002"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("a refused request reached WeChat Pay: %v", err)
	}
}

func TestAckNotification(t *testing.T) {
	t.Parallel()
	ch := wechatpay.New()
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"accepted", nil, http.StatusNoContent},
		{"forged", channel.ErrBadSignature, http.StatusBadRequest},
		{"our failure", errors.New("database down: password=hunter2"), http.StatusInternalServerError},
	} {
		rec := httptest.NewRecorder()
		ch.AckNotification(rec, tc.err)
		if rec.Code != tc.status {
			t.Errorf("%s: %d", tc.name, rec.Code)
		}
		if tc.err == nil {
			if rec.Body.Len() != 0 {
				t.Errorf("%s: body %q", tc.name, rec.Body)
			}
			continue
		}
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["code"] != "FAIL" || body["message"] == "" ||
			strings.Contains(rec.Body.String(), "hunter2") {
			t.Errorf("%s: %q", tc.name, rec.Body)
		}
	}
}

func TestBadConfigurationNeverLeaksSecrets(t *testing.T) {
	t.Parallel()
	sbKey, mk := testKeys(t)
	ch := wechatpay.New()
	base := merchant.WechatPaySettings{
		MchID: testMchID, WechatAppID: testAppID, MerchantCertificateSerial: testSerialNo,
		PlatformPublicKeyPEM: sbKey.PublicKeyPEM, PlatformPublicKeyID: "PUB_KEY_ID_1",
		APIBaseURL: "http://127.0.0.1:1", MerchantPrivateKeyPEM: mk.PrivateKeyPEM, APIv3Key: testAPIv3Key,
	}
	secretLine := strings.Split(mk.PrivateKeyPEM, "\n")[1]
	for _, tc := range []struct {
		name   string
		mutate func(*merchant.WechatPaySettings)
		want   string
	}{
		{"no base URL", func(s *merchant.WechatPaySettings) { s.APIBaseURL = "" }, "api_base_url is not configured"},
		{"base URL with query", func(s *merchant.WechatPaySettings) { s.APIBaseURL = "http://127.0.0.1:1?x=1" }, "api_base_url"},
		{"short APIv3 key", func(s *merchant.WechatPaySettings) { s.APIv3Key = "short" }, "api_v3_key must be 32 bytes"},
		{"bad private key", func(s *merchant.WechatPaySettings) { s.MerchantPrivateKeyPEM = s.MerchantPrivateKeyPEM[:300] }, "merchant private key"},
		{"bad public key", func(s *merchant.WechatPaySettings) { s.PlatformPublicKeyPEM = "junk" }, "platform public key"},
		{"no mchid", func(s *merchant.WechatPaySettings) { s.MchID = "" }, "mch_id is not configured"},
		{"no serial", func(s *merchant.WechatPaySettings) { s.MerchantCertificateSerial = "" }, "merchant_certificate_serial"},
	} {
		s := base
		tc.mutate(&s)
		_, err := ch.Query(context.Background(), merchant.ChannelConfig{AppID: "a", WechatPay: &s}, "T1")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secretLine[:20]) ||
			strings.Contains(err.Error(), testAPIv3Key) {
			t.Errorf("%s: %v (want %q)", tc.name, err, tc.want)
		}
	}
	if _, err := ch.Query(context.Background(), merchant.ChannelConfig{AppID: "a"}, "T1"); err == nil {
		t.Error("no WeChat Pay settings: accepted")
	}
}
