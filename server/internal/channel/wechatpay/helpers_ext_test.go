package wechatpay_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/channel/wechatpay"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/sandbox"
)

const (
	testMchID    = "1900000109"
	testAppID    = "wxd678efh567hg6787"
	testSerialNo = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	testAPIv3Key = "0123456789abcdefghijABCDEFGHIJ01"
)

// RSA key generation dominates test time on two cores: the tests share two keys, generated
// once; every test still gets its own sandbox.
var (
	keysOnce                sync.Once
	sandboxKey, merchantKey sandbox.KeyPair
	sandboxErr, merchantErr error
)

func testKeys(t testing.TB) (sandbox.KeyPair, sandbox.KeyPair) {
	t.Helper()
	keysOnce.Do(func() {
		var wg sync.WaitGroup
		wg.Go(func() { sandboxKey, sandboxErr = sandbox.GenerateKeyPair() })
		wg.Go(func() { merchantKey, merchantErr = sandbox.GenerateKeyPair() })
		wg.Wait()
	})
	if sandboxErr != nil || merchantErr != nil {
		t.Fatalf("generate keys: %v %v", sandboxErr, merchantErr)
	}
	return sandboxKey, merchantKey
}

// received is one notification as the notify endpoint handled it.
type received struct {
	n      channel.Notification
	err    error
	body   []byte
	header http.Header
	status int
	answer string
}

// env is a WeChat Pay sandbox, the adapter pointed at it by configuration, and a notify
// endpoint that runs the adapter's ParseNotification and AckNotification, as paycenter's
// callback route does.
type env struct {
	sb     *sandbox.WechatPay
	srv    *httptest.Server
	ch     *wechatpay.Channel
	cfg    merchant.ChannelConfig
	notify *httptest.Server
	got    chan received
}

func newEnv(t *testing.T, configure func(*sandbox.WechatPayOptions), opts ...wechatpay.Option) *env {
	t.Helper()
	sbKey, mk := testKeys(t)
	o := sandbox.WechatPayOptions{Options: sandbox.Options{
		PrivateKeyPEM: sbKey.PrivateKeyPEM,
		RetrySchedule: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
		ReorderHold:   time.Second,
	}}
	if configure != nil {
		configure(&o)
	}
	sb, err := sandbox.NewWechatPay(o)
	if err != nil {
		t.Fatalf("NewWechatPay: %v", err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close) // runs first: stop delivering before the servers go away
	if err := sb.RegisterMerchant(testMchID, testSerialNo, mk.PublicKeyPEM, testAPIv3Key); err != nil {
		t.Fatal(err)
	}
	opts = append([]wechatpay.Option{wechatpay.WithHTTPClient(srv.Client()), wechatpay.WithTimeout(5 * time.Second)}, opts...)
	e := &env{
		sb: sb, srv: srv, got: make(chan received, 64),
		ch: wechatpay.New(opts...),
		cfg: merchant.ChannelConfig{
			AppID: "app_test", MerchantID: "mch_test", Channel: merchant.ChannelWechatPay, Enabled: true,
			WechatPay: &merchant.WechatPaySettings{
				MchID: testMchID, WechatAppID: testAppID, MerchantCertificateSerial: testSerialNo,
				PlatformPublicKeyPEM: sb.PublicKeyPEM(), PlatformPublicKeyID: sb.PublicKeyID(),
				APIBaseURL: srv.URL, MerchantPrivateKeyPEM: mk.PrivateKeyPEM, APIv3Key: testAPIv3Key,
			},
			UpdatedAt: time.Now(),
		},
	}
	e.notify = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		n, err := e.ch.ParseNotification(r.Context(), e.cfg, r)
		rec := httptest.NewRecorder()
		e.ch.AckNotification(rec, err)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		e.got <- received{n: n, err: err, body: body, header: r.Header.Clone(), status: rec.Code, answer: rec.Body.String()}
	}))
	t.Cleanup(e.notify.Close)
	return e
}

// notifyURL routes by path: WeChat Pay refuses notify URLs with a query string.
func (e *env) notifyURL() string { return e.notify.URL + "/notify/wechatpay/app_test" }

func (e *env) prepayRequest(method channel.Method, tradeNo string, amount int64) channel.PrepayRequest {
	return channel.PrepayRequest{
		TradeNo: tradeNo, Amount: amount, Currency: "CNY", Subject: "Water bill", Method: method,
		ExpireAt: time.Now().Add(15 * time.Minute), ClientIP: "203.0.113.7", OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		ReturnURL: "https://merchant.example/return?order=1", NotifyURL: e.notifyURL(),
	}
}

func (e *env) prepay(t *testing.T, method channel.Method, tradeNo string, amount int64) channel.PayerAction {
	t.Helper()
	a, err := e.ch.Prepay(context.Background(), e.cfg, e.prepayRequest(method, tradeNo, amount))
	if err != nil {
		t.Fatalf("Prepay %s %s: %v", method, tradeNo, err)
	}
	return a
}

func (e *env) pay(t *testing.T, tradeNo string) {
	t.Helper()
	if err := e.sb.Pay(tradeNo); err != nil {
		t.Fatalf("sandbox Pay %s: %v", tradeNo, err)
	}
}

func (e *env) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-e.got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5s")
		return received{}
	}
}

// nextOK waits for a notification the adapter accepted.
func (e *env) nextOK(t *testing.T) channel.Notification {
	t.Helper()
	r := e.next(t)
	if r.err != nil || r.status != http.StatusNoContent {
		t.Fatalf("notification rejected (%d %s): %v", r.status, r.answer, r.err)
	}
	return r.n
}

func (e *env) waitIdle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.sb.WaitIdle(ctx); err != nil {
		t.Fatalf("sandbox notifications still pending: %v", err)
	}
}

func (e *env) trade(t *testing.T, tradeNo string) sandbox.TradeInfo {
	t.Helper()
	info, err := e.sb.Trade(tradeNo)
	if err != nil {
		t.Fatalf("sandbox trade %s: %v", tradeNo, err)
	}
	return info
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
