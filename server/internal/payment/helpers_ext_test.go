package payment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	paycenter "github.com/paycenter/paycenter/clients/go"
	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
	"github.com/paycenter/paycenter/server/internal/server/servertest"
	"github.com/paycenter/paycenter/server/internal/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// receiver is an app's webhook endpoint: it verifies every signature like a consumer would
// and records the events, deduplicated by id as consumers must.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	secret atomic.Value // string
	down   atomic.Int32 // answer 500 to this many more requests

	mu       sync.Mutex
	received map[string]int // event id → deliveries
	events   []hook
}

type hook struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, received: map[string]int{}}
	r.secret.Store("")
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.down.Add(-1) >= 0 {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify(r.secret.Load().(string), req.Header.Get("Paycenter-Signature"), body, 5*time.Minute, time.Now()); err != nil {
			t.Errorf("webhook signature does not verify: %v", err)
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		var h hook
		if err := json.Unmarshal(body, &h); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		r.mu.Lock()
		r.received[h.ID]++
		if r.received[h.ID] == 1 {
			r.events = append(r.events, h)
		}
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// of returns the distinct events of a type about a trade_no.
func (r *receiver) of(typ, tradeNo string) []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hook
	for _, h := range r.events {
		var data struct {
			TradeNo string `json:"trade_no"`
		}
		_ = json.Unmarshal(h.Data, &data)
		if h.Type == typ && data.TradeNo == tradeNo {
			out = append(out, h)
		}
	}
	return out
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// world is a server, the sandbox channels and one tenant whose webhooks go to a receiver.
type world struct {
	env    *servertest.Env
	sb     *servertest.Sandbox
	tenant servertest.Tenant
	app    *paycenter.Client
	hooks  *receiver
	n      atomic.Int32
}

func newWorld(t testing.TB, opts ...servertest.Option) *world {
	env := servertest.Start(t, opts...)
	sb := servertest.StartSandbox(t)
	hooks := newReceiver(t)
	tenant := env.NewTenant(t, sb, hooks.srv.URL+"/hooks")
	hooks.secret.Store(tenant.WebhookSecret)
	return &world{env: env, sb: sb, tenant: tenant, app: tenant.Client, hooks: hooks}
}

func (w *world) orderNo() string {
	return fmt.Sprintf("order-%d-%d", time.Now().UnixNano(), w.n.Add(1))
}

func (w *world) create(t testing.TB, req *paycenterv1.CreatePaymentRequest) *paycenterv1.Payment {
	t.Helper()
	if req.MerchantOrderNo == "" {
		req.MerchantOrderNo = w.orderNo()
	}
	if req.Currency == "" {
		req.Currency = "CNY"
	}
	if req.Subject == "" {
		req.Subject = "Property fee, November"
	}
	if req.Method == paycenterv1.PaymentMethod_PAYMENT_METHOD_UNSPECIFIED {
		req.Method = paycenterv1.PaymentMethod_PAYMENT_METHOD_QR
	}
	res, err := w.app.Payments.CreatePayment(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("create payment: %v", err)
	}
	return res.Msg.Payment
}

func (w *world) get(t testing.TB, tradeNo string) *paycenterv1.Payment {
	t.Helper()
	res, err := w.app.Payments.GetPayment(context.Background(), connect.NewRequest(&paycenterv1.GetPaymentRequest{Key: &paycenterv1.GetPaymentRequest_TradeNo{TradeNo: tradeNo}}))
	if err != nil {
		t.Fatalf("get payment: %v", err)
	}
	return res.Msg.Payment
}

func (w *world) waitStatus(t testing.TB, tradeNo string, want paycenterv1.PaymentStatus) *paycenterv1.Payment {
	t.Helper()
	var p *paycenterv1.Payment
	eventually(t, fmt.Sprintf("payment %s to become %v", tradeNo, want), func() bool {
		p = w.get(t, tradeNo)
		return p.Status == want
	})
	return p
}

// pay plays the payer at the sandbox: opening the page or app order where the channel
// learns of the trade that way, then paying.
func (w *world) pay(t testing.TB, p *paycenterv1.Payment) {
	t.Helper()
	var err error
	switch p.Channel {
	case paycenterv1.Channel_CHANNEL_ALIPAY:
		switch p.Method {
		case paycenterv1.PaymentMethod_PAYMENT_METHOD_PC_PAGE, paycenterv1.PaymentMethod_PAYMENT_METHOD_WAP:
			res, gerr := http.Get(p.PayerAction.PayUrl)
			if gerr != nil {
				t.Fatal(gerr)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("opening the Alipay page: %s", res.Status)
			}
		case paycenterv1.PaymentMethod_PAYMENT_METHOD_APP:
			if _, err := w.sb.Alipay.SubmitAppOrder(p.PayerAction.AppParams); err != nil {
				t.Fatalf("submit app order: %v", err)
			}
		}
		err = w.sb.Alipay.Pay(p.TradeNo)
	case paycenterv1.Channel_CHANNEL_WECHATPAY:
		err = w.sb.WechatPay.Pay(p.TradeNo)
	}
	if err != nil {
		t.Fatalf("payer pays %s: %v", p.TradeNo, err)
	}
}

// merchantBalance is the tenant's MERCHANT_AVAILABLE balance, read through LedgerService
// with the app's own key.
func (w *world) merchantBalance(t testing.TB) int64 {
	t.Helper()
	res, err := w.app.Ledger.ListAccounts(context.Background(), connect.NewRequest(&paycenterv1.ListAccountsRequest{
		MerchantId: w.tenant.MerchantID, Code: paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_AVAILABLE}))
	if err != nil {
		t.Fatalf("list accounts: %v", err)
	}
	var sum int64
	for _, a := range res.Msg.Accounts {
		sum += a.Balance
	}
	return sum
}

func (w *world) checkInvariants(t testing.TB) {
	t.Helper()
	res, err := w.env.Admin().Ledger.CheckInvariants(context.Background(), connect.NewRequest(&paycenterv1.CheckInvariantsRequest{}))
	if err != nil || !res.Msg.Ok {
		t.Fatalf("ledger invariants: %v %v", res, err)
	}
}

func (w *world) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := w.env.DB.GetContext(context.Background(), &n, q, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

func scrape(t testing.TB, baseURL string) string {
	t.Helper()
	res, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// metricValue is the value of one series in a Prometheus text exposition (0 when absent).
func metricValue(exposition, series string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}
