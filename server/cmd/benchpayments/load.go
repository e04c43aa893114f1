package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	paycenter "github.com/paycenter/paycenter/clients/go"
	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/sandbox"
	"github.com/paycenter/paycenter/server/internal/webhook"
)

// --- the mix ------------------------------------------------------------------------------

type kind struct {
	channel paycenterv1.Channel
	method  paycenterv1.PaymentMethod
	weight  int
	name    string
}

type mix []kind

// parseMix reads "alipay/qr=3,wechatpay/jsapi=1" (a missing weight is 1).
func parseMix(s string) (mix, error) {
	channels := map[string]paycenterv1.Channel{"alipay": paycenterv1.Channel_CHANNEL_ALIPAY, "wechatpay": paycenterv1.Channel_CHANNEL_WECHATPAY}
	methods := map[string]paycenterv1.PaymentMethod{"qr": paycenterv1.PaymentMethod_PAYMENT_METHOD_QR, "page": paycenterv1.PaymentMethod_PAYMENT_METHOD_PC_PAGE,
		"wap": paycenterv1.PaymentMethod_PAYMENT_METHOD_WAP, "app": paycenterv1.PaymentMethod_PAYMENT_METHOD_APP, "jsapi": paycenterv1.PaymentMethod_PAYMENT_METHOD_JSAPI}
	var m mix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, hasWeight := strings.Cut(part, "=")
		weight := 1
		if hasWeight {
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("-mix %q: weight of %s must be a whole number", s, name)
			}
			weight = n
		}
		ch, me, _ := strings.Cut(strings.ToLower(name), "/")
		k := kind{channel: channels[ch], method: methods[me], weight: weight, name: strings.ToLower(name)}
		if k.channel == paycenterv1.Channel_CHANNEL_UNSPECIFIED || k.method == paycenterv1.PaymentMethod_PAYMENT_METHOD_UNSPECIFIED {
			return nil, fmt.Errorf("-mix %q: %q is not channel/method (alipay|wechatpay / qr|page|wap|app|jsapi)", s, name)
		}
		if k.channel == paycenterv1.Channel_CHANNEL_ALIPAY && k.method == paycenterv1.PaymentMethod_PAYMENT_METHOD_JSAPI {
			return nil, fmt.Errorf("-mix %q: Alipay has no jsapi method", s)
		}
		if weight > 0 {
			m = append(m, k)
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("-mix %q: nothing to run", s)
	}
	return m, nil
}

func (m mix) pick(rng *mrand.Rand) kind {
	total := 0
	for _, k := range m {
		total += k.weight
	}
	n := rng.IntN(total)
	for _, k := range m {
		if n < k.weight {
			return k
		}
		n -= k.weight
	}
	return m[len(m)-1]
}

func (m mix) String() string {
	parts := make([]string, len(m))
	for i, k := range m {
		parts[i] = fmt.Sprintf("%s=%d", k.name, k.weight)
	}
	return strings.Join(parts, ",")
}

// --- sandboxes ----------------------------------------------------------------------------

// sandboxes are n sandbox pairs on one loopback listener, pair i under /sb<i>, so the server
// reaches every "gateway" at one host as it would reach Alipay's and WeChat Pay's. Each
// sandbox delivers its notifications one at a time (as one notify worker would), so several
// pairs stand in for the channels' parallel delivery.
type sandboxes struct {
	url   string
	pairs []*sandbox.Pair
	srv   *http.Server
}

func startSandboxes(n int) (*sandboxes, error) {
	// One identity for every sandbox: generating RSA keys is slow and proves nothing here.
	id, err := sandbox.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	s := &sandboxes{}
	mux := http.NewServeMux()
	for i := range n {
		pair, err := sandbox.NewPair(sandbox.Options{
			PrivateKeyPEM: id.PrivateKeyPEM,
			// A notification the server did not accept is retried within seconds, not hours.
			RetrySchedule: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
				time.Second, 2 * time.Second, 4 * time.Second},
		})
		if err != nil {
			s.close()
			return nil, err
		}
		s.pairs = append(s.pairs, pair)
		prefix := fmt.Sprintf("/sb%d", i)
		mux.Handle(prefix+"/", http.StripPrefix(prefix, pair))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, err
	}
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sandboxes) prefix(i int) string { return fmt.Sprintf("%s/sb%d", s.url, i) }

func (s *sandboxes) close() {
	for _, p := range s.pairs {
		p.Close()
	}
	if s.srv != nil {
		s.srv.Close()
	}
}

// --- tenants --------------------------------------------------------------------------------

// tenant is one merchant's app, configured on one sandbox pair.
type tenant struct {
	merchantID, appID string
	client            *paycenter.Client
	pair              *sandbox.Pair
}

// setupTenants creates a merchant and an app per sandbox pair through the admin API (as
// servertest.NewTenant does), with Alipay and WeChat Pay configured on that pair and webhooks
// going to recv.
func setupTenants(ctx context.Context, serverURL string, admin *paycenter.Client, sb *sandboxes, recv *receiver) ([]tenant, error) {
	var tenants []tenant
	for i, pair := range sb.pairs {
		n := i + 1
		m, err := admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: fmt.Sprintf("Bench merchant %d", n)}))
		if err != nil {
			return nil, fmt.Errorf("create merchant: %w", err)
		}
		hookPath := fmt.Sprintf("/hooks/%d", i)
		app, err := admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{
			MerchantId: m.Msg.Merchant.MerchantId, Name: "Billing", WebhookUrl: recv.url + hookPath}))
		if err != nil {
			return nil, fmt.Errorf("create app: %w", err)
		}
		recv.setSecret(hookPath, app.Msg.WebhookSecret)
		creds, err := pair.NewCredentials(n)
		if err != nil {
			return nil, err
		}
		appID := app.Msg.App.AppId
		for _, req := range []*paycenterv1.SetChannelConfigRequest{
			{AppId: appID, Config: &paycenterv1.SetChannelConfigRequest_Alipay{Alipay: &paycenterv1.AlipayConfig{
				AlipayAppId: creds.Alipay.AppID, AppPrivateKeyPem: creds.Alipay.PrivateKeyPEM,
				AlipayPublicKeyPem: creds.Alipay.AlipayPublicKeyPEM, GatewayUrl: sb.prefix(i) + sandbox.AlipayGatewayPath}}},
			{AppId: appID, Config: &paycenterv1.SetChannelConfigRequest_Wechatpay{Wechatpay: &paycenterv1.WechatPayConfig{
				MchId: creds.WechatPay.MchID, WechatAppId: fmt.Sprintf("wx%016d", n), MerchantCertificateSerial: creds.WechatPay.SerialNo,
				MerchantPrivateKeyPem: creds.WechatPay.PrivateKeyPEM, ApiV3Key: creds.WechatPay.APIv3Key,
				PlatformPublicKeyPem: creds.WechatPay.PlatformPublicKeyPEM, PlatformPublicKeyId: creds.WechatPay.PlatformPublicKeyID,
				ApiBaseUrl: sb.prefix(i)}}},
		} {
			if _, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(req)); err != nil {
				return nil, fmt.Errorf("set channel config: %w", err)
			}
		}
		// Each app's back end has its own client: one HTTP/2 connection per app.
		tenants = append(tenants, tenant{merchantID: m.Msg.Merchant.MerchantId, appID: appID,
			client: paycenter.New(serverURL, app.Msg.ApiKey), pair: pair})
	}
	return tenants, nil
}

// --- the webhook receiver -------------------------------------------------------------------

// receiver is the apps' webhook endpoint: it verifies every signature as a consumer must and
// records, per payment, the payment.succeeded events and when the first one arrived.
type receiver struct {
	url string
	srv *http.Server

	mu         sync.Mutex
	secrets    map[string]string       // path → the app's webhook secret
	waiting    map[string]*expectation // trade_no → the payer waiting for it
	deliveries map[string]int          // event id → deliveries (at-least-once: >1 is a redelivery)
	succeeded  map[string][]string     // trade_no → distinct payment.succeeded event ids
	arrivals   []time.Time             // first payment.succeeded of each payment
	badSig     int
	mismatched int
	unexpected int // payment.succeeded for a payment no payer created
	badBody    int
}

type expectation struct {
	amount int64
	at     chan time.Time
}

func startReceiver() (*receiver, error) {
	r := &receiver{secrets: map[string]string{}, waiting: map[string]*expectation{}, deliveries: map[string]int{}, succeeded: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.url = "http://" + ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) close() { r.srv.Close() }

func (r *receiver) setSecret(path, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[path] = secret
}

// expect registers a payer waiting for tradeNo's payment.succeeded.
func (r *receiver) expect(tradeNo string, amount int64) <-chan time.Time {
	e := &expectation{amount: amount, at: make(chan time.Time, 1)}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting[tradeNo] = e
	return e.at
}

type hookBody struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		TradeNo string `json:"trade_no"`
		Amount  any    `json:"amount"` // protojson writes int64 as a string
		Status  string `json:"status"`
	} `json:"data"`
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	now := time.Now()
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	secret, ok := r.secrets[req.URL.Path]
	if !ok {
		http.NotFound(w, req)
		return
	}
	if err := webhook.Verify(secret, req.Header.Get("Paycenter-Signature"), body, webhook.DefaultTolerance, now); err != nil {
		r.badSig++
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var h hookBody
	if err := json.Unmarshal(body, &h); err != nil || h.ID == "" {
		r.badBody++
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.deliveries[h.ID]++
	if h.Type != webhook.PaymentSucceeded || r.deliveries[h.ID] > 1 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.succeeded[h.Data.TradeNo] = append(r.succeeded[h.Data.TradeNo], h.ID)
	if len(r.succeeded[h.Data.TradeNo]) == 1 {
		r.arrivals = append(r.arrivals, now)
	}
	e := r.waiting[h.Data.TradeNo]
	switch {
	case e == nil:
		r.unexpected++
	default:
		if fmt.Sprint(h.Data.Amount) != strconv.FormatInt(e.amount, 10) || h.Data.Status != paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED.String() {
			r.mismatched++
		}
		delete(r.waiting, h.Data.TradeNo)
		e.at <- now
	}
	w.WriteHeader(http.StatusNoContent)
}

// forget drops a payer's registration (its payment failed before paying).
func (r *receiver) forget(tradeNo string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, tradeNo)
}

// completedBetween counts payments whose first payment.succeeded arrived in [from, to).
func (r *receiver) completedBetween(from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, at := range r.arrivals {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// exactlyOnce checks that each of paid got exactly one payment.succeeded event, delivered
// once; it returns the counts of payments that got none, several events, and redeliveries.
func (r *receiver) exactlyOnce(paid []string) (missing, multiple, redelivered int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tn := range paid {
		switch ids := r.succeeded[tn]; len(ids) {
		case 0:
			missing++
		case 1:
			if r.deliveries[ids[0]] > 1 {
				redelivered++
			}
		default:
			multiple++
		}
	}
	return missing, multiple, redelivered
}

// --- the payers -----------------------------------------------------------------------------

// loadResult is what the payers saw.
type loadResult struct {
	started, paid, completed int
	paidTradeNos             []string
	latency, createLatency   []time.Duration // of payments started in the window
	byKind                   map[string]int  // completed payments started in the window, per kind
	failures                 map[string]int  // what went wrong, by kind of failure
	windowStart, windowEnd   time.Time
	inWindow                 int // payments whose webhook arrived in the window
}

// window marks the measured window: start is called at its beginning, end at its end.
type window struct {
	start, end func()
}

// drive runs c.concurrency payers for warm-up + duration, then lets them finish the payment
// in hand.
func drive(ctx context.Context, c config, m mix, tenants []tenant, recv *receiver, w window) *loadResult {
	var (
		mu  sync.Mutex
		res = &loadResult{byKind: map[string]int{}, failures: map[string]int{}}
		wg  sync.WaitGroup
		seq atomic.Int64
	)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	begin := time.Now()
	measureFrom, stopAt := begin.Add(c.warmup), begin.Add(c.warmup+c.duration)
	fail := func(what string) {
		mu.Lock()
		res.failures[what]++
		mu.Unlock()
	}
	pageClient := &http.Client{Timeout: 10 * time.Second}
	for g := range c.concurrency {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(g), uint64(begin.UnixNano())))
			t := tenants[g%len(tenants)]
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(stopAt) {
					return
				}
				k := m.pick(rng)
				amount := 1 + rng.Int64N(100000)
				req := &paycenterv1.CreatePaymentRequest{
					MerchantOrderNo: fmt.Sprintf("bench-%s-%d", run, seq.Add(1)), Amount: amount, Currency: "CNY",
					Subject: "Property fee, November", Channel: k.channel, Method: k.method, ClientIp: "203.0.113.7",
				}
				switch k.method {
				case paycenterv1.PaymentMethod_PAYMENT_METHOD_PC_PAGE, paycenterv1.PaymentMethod_PAYMENT_METHOD_WAP:
					req.ReturnUrl = "https://shop.example/return"
				case paycenterv1.PaymentMethod_PAYMENT_METHOD_JSAPI:
					req.PayerOpenid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
				}
				mu.Lock()
				res.started++
				mu.Unlock()
				created, err := t.client.Payments.CreatePayment(ctx, connect.NewRequest(req))
				createTook := time.Since(start)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					fail("create: " + connect.CodeOf(err).String())
					time.Sleep(10 * time.Millisecond) // do not spin on a failing server
					continue
				}
				p := created.Msg.GetPayment()
				arrived := recv.expect(p.GetTradeNo(), amount)
				if err := payerPays(ctx, pageClient, t.pair, p); err != nil {
					recv.forget(p.GetTradeNo())
					fail("pay: " + firstLine(err))
					continue
				}
				mu.Lock()
				res.paid++
				res.paidTradeNos = append(res.paidTradeNos, p.GetTradeNo())
				mu.Unlock()
				timer := time.NewTimer(c.paymentTimeout)
				select {
				case at := <-arrived:
					timer.Stop()
					mu.Lock()
					res.completed++
					if !start.Before(measureFrom) {
						res.latency = append(res.latency, at.Sub(start))
						res.createLatency = append(res.createLatency, createTook)
						res.byKind[k.name]++
					}
					mu.Unlock()
				case <-timer.C:
					fail(fmt.Sprintf("no webhook within %s", c.paymentTimeout))
				case <-ctx.Done():
					timer.Stop()
					return
				}
			}
		})
	}
	// The window: CPU clocks and profiles are read here, on time, whatever the payers do.
	windowDone := make(chan struct{})
	go func() {
		defer close(windowDone)
		select {
		case <-time.After(time.Until(measureFrom)):
			w.start()
		case <-ctx.Done():
			return
		}
		select {
		case <-time.After(time.Until(stopAt)):
			w.end()
		case <-ctx.Done():
		}
	}()
	wg.Wait()
	<-windowDone
	res.windowStart, res.windowEnd = measureFrom, stopAt
	res.inWindow = recv.completedBetween(measureFrom, stopAt)
	return res
}

// payerPays plays the payer at the sandbox: opening the page or app order where the channel
// learns of the trade that way, then paying (an in-process call: no network, no payer).
func payerPays(ctx context.Context, hc *http.Client, pair *sandbox.Pair, p *paycenterv1.Payment) error {
	switch p.GetChannel() {
	case paycenterv1.Channel_CHANNEL_ALIPAY:
		switch p.GetMethod() {
		case paycenterv1.PaymentMethod_PAYMENT_METHOD_PC_PAGE, paycenterv1.PaymentMethod_PAYMENT_METHOD_WAP:
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.GetPayerAction().GetPayUrl(), nil)
			if err != nil {
				return err
			}
			res, err := hc.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("opening the Alipay page: %s", res.Status)
			}
		case paycenterv1.PaymentMethod_PAYMENT_METHOD_APP:
			if _, err := pair.Alipay.SubmitAppOrder(p.GetPayerAction().GetAppParams()); err != nil {
				return err
			}
		}
		return pair.Alipay.Pay(p.GetTradeNo())
	case paycenterv1.Channel_CHANNEL_WECHATPAY:
		return pair.WechatPay.Pay(p.GetTradeNo())
	}
	return errors.New("unknown channel " + p.GetChannel().String())
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
