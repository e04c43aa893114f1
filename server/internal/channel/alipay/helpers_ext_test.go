package alipay_test

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
	"github.com/paycenter/paycenter/server/internal/channel/alipay"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/sandbox"
)

const testAlipayAppID = "2021000000000001"

// RSA key generation dominates test time on two cores: the tests share two keys, generated
// once; every test still gets its own sandbox.
var (
	keysOnce           sync.Once
	sandboxKey, appKey sandbox.KeyPair
	sandboxErr, appErr error
)

func testKeys(t testing.TB) (sandbox.KeyPair, sandbox.KeyPair) {
	t.Helper()
	keysOnce.Do(func() {
		var wg sync.WaitGroup
		wg.Go(func() { sandboxKey, sandboxErr = sandbox.GenerateKeyPair() })
		wg.Go(func() { appKey, appErr = sandbox.GenerateKeyPair() })
		wg.Wait()
	})
	if sandboxErr != nil || appErr != nil {
		t.Fatalf("generate keys: %v %v", sandboxErr, appErr)
	}
	return sandboxKey, appKey
}

// received is one notification as the notify endpoint handled it.
type received struct {
	n      channel.Notification
	err    error
	body   []byte
	status int
}

// env is a sandbox gateway, the adapter pointed at it by configuration, and a notify
// endpoint that runs the adapter's ParseNotification and AckNotification, as paycenter's
// callback route does.
type env struct {
	sb     *sandbox.Alipay
	srv    *httptest.Server
	ch     *alipay.Channel
	cfg    merchant.ChannelConfig
	notify *httptest.Server
	got    chan received
}

func newEnv(t *testing.T, configure func(*sandbox.AlipayOptions), opts ...alipay.Option) *env {
	t.Helper()
	sbKey, app := testKeys(t)
	o := sandbox.AlipayOptions{Options: sandbox.Options{
		PrivateKeyPEM: sbKey.PrivateKeyPEM,
		RetrySchedule: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
		ReorderHold:   time.Second,
	}}
	if configure != nil {
		configure(&o)
	}
	sb, err := sandbox.NewAlipay(o)
	if err != nil {
		t.Fatalf("NewAlipay: %v", err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close) // runs first: stop delivering before the servers go away
	if err := sb.RegisterApp(testAlipayAppID, app.PublicKeyPEM); err != nil {
		t.Fatal(err)
	}
	opts = append([]alipay.Option{alipay.WithHTTPClient(srv.Client()), alipay.WithTimeout(5 * time.Second)}, opts...)
	e := &env{
		sb: sb, srv: srv, got: make(chan received, 64),
		ch: alipay.New(opts...),
		cfg: merchant.ChannelConfig{
			AppID: "app_test", MerchantID: "mch_test", Channel: merchant.ChannelAlipay, Enabled: true,
			Alipay: &merchant.AlipaySettings{
				AlipayAppID: testAlipayAppID, AlipayPublicKeyPEM: sb.PublicKeyPEM(),
				GatewayURL: srv.URL + sandbox.AlipayGatewayPath, AppPrivateKeyPEM: app.PrivateKeyPEM,
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
		e.got <- received{n: n, err: err, body: body, status: rec.Code}
	}))
	t.Cleanup(e.notify.Close)
	return e
}

func (e *env) notifyURL() string { return e.notify.URL + "/notify/alipay/app_test" }

func (e *env) prepay(t *testing.T, method channel.Method, tradeNo string, amount int64) channel.PayerAction {
	t.Helper()
	a, err := e.ch.Prepay(context.Background(), e.cfg, channel.PrepayRequest{
		TradeNo: tradeNo, Amount: amount, Currency: "CNY", Subject: "Water bill", Method: method,
		ExpireAt: time.Now().Add(15 * time.Minute), ClientIP: "203.0.113.7",
		ReturnURL: "https://merchant.example/return", NotifyURL: e.notifyURL(),
	})
	if err != nil {
		t.Fatalf("Prepay %s %s: %v", method, tradeNo, err)
	}
	return a
}

// open plays the payer reaching Alipay with what Prepay returned: scanning the QR code,
// opening the page or wap URL, or handing the order string to the Alipay app.
func (e *env) open(t *testing.T, method channel.Method, a channel.PayerAction) {
	t.Helper()
	switch method {
	case channel.MethodQR:
		httpGet(t, a.QRCode)
	case channel.MethodPCPage, channel.MethodWAP:
		httpGet(t, a.PayURL)
	case channel.MethodApp:
		if _, err := e.sb.SubmitAppOrder(a.AppParams); err != nil {
			t.Fatalf("SubmitAppOrder: %v", err)
		}
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

// nextOK waits for a notification that the adapter accepted.
func (e *env) nextOK(t *testing.T) channel.Notification {
	t.Helper()
	r := e.next(t)
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("notification rejected (%d): %v\n%s", r.status, r.err, r.body)
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
