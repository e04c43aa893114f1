package payment_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/sandbox"
	"github.com/paycenter/paycenter/server/internal/server"
	"github.com/paycenter/paycenter/server/internal/server/servertest"
)

func TestEveryChannelAndMethodPaysOnceBooksTheLedgerAndNotifiesTheApp(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		channel paycenterv1.Channel
		method  paycenterv1.PaymentMethod
		openid  string
		check   func(t *testing.T, a *paycenterv1.PayerAction)
	}{
		{paycenterv1.Channel_CHANNEL_ALIPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_QR, "", needs("qr_code", func(a *paycenterv1.PayerAction) string { return a.QrCode })},
		{paycenterv1.Channel_CHANNEL_ALIPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_PC_PAGE, "", needs("pay_url", func(a *paycenterv1.PayerAction) string { return a.PayUrl })},
		{paycenterv1.Channel_CHANNEL_ALIPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_WAP, "", needs("pay_url", func(a *paycenterv1.PayerAction) string { return a.PayUrl })},
		{paycenterv1.Channel_CHANNEL_ALIPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_APP, "", needs("app_params", func(a *paycenterv1.PayerAction) string { return a.AppParams })},
		{paycenterv1.Channel_CHANNEL_WECHATPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_QR, "", needs("qr_code", func(a *paycenterv1.PayerAction) string { return a.QrCode })},
		{paycenterv1.Channel_CHANNEL_WECHATPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_WAP, "", needs("pay_url", func(a *paycenterv1.PayerAction) string { return a.PayUrl })},
		{paycenterv1.Channel_CHANNEL_WECHATPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_APP, "", needs("app_params", func(a *paycenterv1.PayerAction) string { return a.AppParams })},
		{paycenterv1.Channel_CHANNEL_WECHATPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_JSAPI, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", needs("jsapi_params", func(a *paycenterv1.PayerAction) string { return a.JsapiParams })},
	}
	var total int64
	for i, c := range cases {
		t.Run(c.channel.String()+"/"+c.method.String(), func(t *testing.T) {
			amount := int64(1001 + i)
			p := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: amount, Channel: c.channel, Method: c.method,
				PayerOpenid: c.openid, ClientIp: "203.0.113.7", ReturnUrl: "https://shop.example/return"})
			if p.Status != paycenterv1.PaymentStatus_PAYMENT_STATUS_PENDING || len(p.TradeNo) > 32 || p.MerchantOrderNo == "" {
				t.Fatalf("created payment: %v", p)
			}
			c.check(t, p.PayerAction)
			w.pay(t, p)
			paid := w.waitStatus(t, p.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
			if paid.ChannelTransactionId == "" || paid.PaidTime == nil || paid.Duplicate {
				t.Fatalf("paid payment: %v", paid)
			}
			// All three numbers find it.
			for _, key := range []*paycenterv1.GetPaymentRequest{
				{Key: &paycenterv1.GetPaymentRequest_MerchantOrderNo{MerchantOrderNo: p.MerchantOrderNo}},
				{Key: &paycenterv1.GetPaymentRequest_ChannelTransactionId{ChannelTransactionId: paid.ChannelTransactionId}},
			} {
				got, err := w.app.Payments.GetPayment(context.Background(), connect.NewRequest(key))
				if err != nil || got.Msg.Payment.TradeNo != p.TradeNo {
					t.Fatalf("GetPayment(%v) = %v, %v", key, got, err)
				}
			}
			total += amount
			if got := w.merchantBalance(t); got != total {
				t.Fatalf("merchant available balance %d, want %d", got, total)
			}
			eventually(t, "payment.succeeded webhook", func() bool { return len(w.hooks.of("payment.succeeded", p.TradeNo)) == 1 })
		})
	}
	w.checkInvariants(t)
}

func needs(field string, get func(*paycenterv1.PayerAction) string) func(*testing.T, *paycenterv1.PayerAction) {
	return func(t *testing.T, a *paycenterv1.PayerAction) {
		if get(a) == "" {
			t.Fatalf("payer action lacks %s: %v", field, a)
		}
	}
}

func TestCallbacksDuplicatedReorderedForgedOrDroppedApplyExactlyOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	// Duplicated five times: one success, one booking, one event.
	dup := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 500, Channel: paycenterv1.Channel_CHANNEL_WECHATPAY})
	w.sb.WechatPay.FaultTrade(dup.TradeNo, sandbox.Fault{Duplicate: 5})
	w.pay(t, dup)
	w.waitStatus(t, dup.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
	if err := w.sb.WechatPay.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := w.count(t, `SELECT count(*) FROM ledger_transfers WHERE reference = $1`, dup.TradeNo); n != 1 {
		t.Fatalf("duplicated callbacks booked %d transfers, want 1", n)
	}

	// Forged: the forged copy changes nothing, the genuine one applies.
	forged := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 700, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	w.sb.Alipay.FaultTrade(forged.TradeNo, sandbox.Fault{Forge: true})
	w.pay(t, forged)
	w.waitStatus(t, forged.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)

	// Reordered: a later payment's notification overtakes an earlier one; both apply.
	first := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 301, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	second := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 302, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	w.sb.Alipay.FaultTrade(first.TradeNo, sandbox.Fault{Reorder: true})
	w.pay(t, first)
	w.pay(t, second)
	w.waitStatus(t, first.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
	w.waitStatus(t, second.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)

	// Dropped: no callback ever arrives; the compensation worker asks the channel.
	dropped := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 900, Channel: paycenterv1.Channel_CHANNEL_WECHATPAY})
	w.sb.WechatPay.FaultTrade(dropped.TradeNo, sandbox.Fault{Drop: true})
	w.pay(t, dropped)
	w.waitStatus(t, dropped.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)

	if got, want := w.merchantBalance(t), int64(500+700+301+302+900); got != want {
		t.Fatalf("merchant balance %d, want %d", got, want)
	}
	for _, p := range []*paycenterv1.Payment{dup, forged, first, second, dropped} {
		eventually(t, "one payment.succeeded per payment", func() bool { return len(w.hooks.of("payment.succeeded", p.TradeNo)) == 1 })
	}
	metrics := scrape(t, w.env.URL)
	for _, want := range []string{`paycenter_channel_callbacks_total{channel="WECHATPAY",outcome="duplicate"}`,
		`paycenter_channel_callbacks_total{channel="ALIPAY",outcome="forged"}`,
		`paycenter_compensation_actions_total{action="applied_SUCCEEDED",channel="WECHATPAY"}`} {
		if metricValue(metrics, want) < 1 {
			t.Errorf("metrics: %s is not counted", want)
		}
	}
	w.checkInvariants(t)
}

func TestWrongAmountCallbackChangesNothing(t *testing.T) {
	w := newWorld(t)
	p := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 1000, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	// The channel confirms another amount than the payment's (a tampered or mixed-up trade).
	if err := w.sb.Alipay.MisreportAmount(p.TradeNo, 1); err != nil {
		t.Fatal(err)
	}
	w.pay(t, p)
	if err := w.sb.Alipay.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "mismatch counted", func() bool {
		return metricValue(scrape(t, w.env.URL), `paycenter_channel_callbacks_total{channel="ALIPAY",outcome="mismatch"}`) >= 1
	})
	// The mismatched callback booked nothing; the compensation worker then asks the channel,
	// whose query reports the true amount, and the payment succeeds with exactly that.
	w.waitStatus(t, p.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
	if got := w.merchantBalance(t); got != 1000 {
		t.Fatalf("merchant balance %d, want the true 1000", got)
	}
	if n := w.count(t, `SELECT count(*) FROM ledger_transfers WHERE reference = $1`, p.TradeNo); n != 1 {
		t.Fatalf("%d transfers for the payment, want 1", n)
	}
}

func TestPaidAfterCloseAndDoublePaymentAreKeptFlaggedAndRefunded(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	// Paid after the merchant closed it.
	late := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 1200, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	closed, err := w.app.Payments.ClosePayment(ctx, connect.NewRequest(&paycenterv1.ClosePaymentRequest{TradeNo: late.TradeNo}))
	if err != nil || closed.Msg.Payment.Status != paycenterv1.PaymentStatus_PAYMENT_STATUS_CLOSED {
		t.Fatalf("close: %v %v", closed, err)
	}
	if err := w.sb.Alipay.PayAfterClose(late.TradeNo); err != nil {
		t.Fatal(err)
	}
	p := w.waitStatus(t, late.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
	if !p.Duplicate {
		t.Fatal("money after close not flagged as duplicate")
	}

	// The payer gives up on WeChat and pays with Alipay, but WeChat's money arrives too.
	order := w.orderNo()
	wx := w.create(t, &paycenterv1.CreatePaymentRequest{MerchantOrderNo: order, Amount: 800, Channel: paycenterv1.Channel_CHANNEL_WECHATPAY})
	ali := w.create(t, &paycenterv1.CreatePaymentRequest{MerchantOrderNo: order, Amount: 800, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	if ali.TradeNo == wx.TradeNo {
		t.Fatal("a second channel reused the first attempt")
	}
	if got := w.get(t, wx.TradeNo); got.Status != paycenterv1.PaymentStatus_PAYMENT_STATUS_CLOSED {
		t.Fatalf("earlier attempt is %v, want CLOSED", got.Status)
	}
	w.pay(t, ali)
	w.waitStatus(t, ali.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
	if err := w.sb.WechatPay.PayAfterClose(wx.TradeNo); err != nil {
		t.Fatal(err)
	}
	dupPaid := w.waitStatus(t, wx.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
	if !dupPaid.Duplicate || w.get(t, ali.TradeNo).Duplicate {
		t.Fatal("the second success must be the duplicate, the first kept")
	}
	// The order keeps one attempt's money: GetPayment by order number answers the kept one.
	byOrder, err := w.app.Payments.GetPayment(ctx, connect.NewRequest(&paycenterv1.GetPaymentRequest{Key: &paycenterv1.GetPaymentRequest_MerchantOrderNo{MerchantOrderNo: order}}))
	if err != nil || byOrder.Msg.Payment.TradeNo != ali.TradeNo {
		t.Fatalf("GetPayment by order number = %v (%v), want the kept attempt %s", byOrder, err, ali.TradeNo)
	}

	// The other way round: the superseded attempt's money arrives first. It is the duplicate,
	// and the live attempt, paid afterwards, is still the one the order keeps.
	order2 := w.orderNo()
	wx2 := w.create(t, &paycenterv1.CreatePaymentRequest{MerchantOrderNo: order2, Amount: 500, Channel: paycenterv1.Channel_CHANNEL_WECHATPAY})
	ali2 := w.create(t, &paycenterv1.CreatePaymentRequest{MerchantOrderNo: order2, Amount: 500, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	if err := w.sb.WechatPay.PayAfterClose(wx2.TradeNo); err != nil {
		t.Fatal(err)
	}
	if !w.waitStatus(t, wx2.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED).Duplicate {
		t.Fatal("money for the superseded attempt not flagged as duplicate")
	}
	w.pay(t, ali2)
	if w.waitStatus(t, ali2.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED).Duplicate {
		t.Fatal("the live attempt, paid after a superseded one, must be kept, not flagged as duplicate")
	}

	// Every duplicate is surfaced and refunded automatically, in full.
	for _, d := range []*paycenterv1.Payment{late, wx, wx2} {
		eventually(t, "payment.duplicate webhook", func() bool { return len(w.hooks.of("payment.duplicate", d.TradeNo)) == 1 })
		eventually(t, "automatic refund", func() bool {
			res, err := w.app.Refunds.ListRefunds(ctx, connect.NewRequest(&paycenterv1.ListRefundsRequest{TradeNo: d.TradeNo}))
			return err == nil && len(res.Msg.Refunds) == 1 && res.Msg.Refunds[0].Status == paycenterv1.RefundStatus_REFUND_STATUS_SUCCEEDED &&
				res.Msg.Refunds[0].Amount == d.Amount
		})
	}
	if got := w.merchantBalance(t); got != 800+500 {
		t.Fatalf("merchant keeps %d, want only the kept attempts' 800 + 500", got)
	}
	w.checkInvariants(t)
}

func TestExpiredPaymentIsClosedAtTheChannelSoTheDeadOrderCannotBePaid(t *testing.T) {
	var offset atomic.Int64 // how far the server's clock is ahead
	w := newWorld(t, func(c *server.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	for _, ch := range []paycenterv1.Channel{paycenterv1.Channel_CHANNEL_ALIPAY, paycenterv1.Channel_CHANNEL_WECHATPAY} {
		p := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 4200, Channel: ch, ExpireSeconds: 60})
		offset.Store(int64(61 * time.Second))
		closed := w.waitStatus(t, p.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_CLOSED)
		if closed.CloseTime == nil {
			t.Fatalf("closed payment without close_time: %v", closed)
		}
		var err error
		if ch == paycenterv1.Channel_CHANNEL_ALIPAY {
			err = w.sb.Alipay.Pay(p.TradeNo)
		} else {
			err = w.sb.WechatPay.Pay(p.TradeNo)
		}
		if err == nil {
			t.Fatalf("%v: the payer could still pay an expired order", ch)
		}
		eventually(t, "payment.closed webhook", func() bool { return len(w.hooks.of("payment.closed", p.TradeNo)) == 1 })
		offset.Store(0)
	}
	if w.merchantBalance(t) != 0 {
		t.Fatal("expired payments booked money")
	}
}

func TestWatchPaymentStreamsChangesUntilFinalAndDrainsOnShutdown(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 250, Channel: paycenterv1.Channel_CHANNEL_WECHATPAY})

	stream, err := w.app.Payments.WatchPayment(ctx, connect.NewRequest(&paycenterv1.WatchPaymentRequest{TradeNo: p.TradeNo}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() || stream.Msg().Payment.Status != paycenterv1.PaymentStatus_PAYMENT_STATUS_PENDING {
		t.Fatalf("first message: %v %v", stream.Msg(), stream.Err())
	}
	w.pay(t, p)
	if !stream.Receive() || stream.Msg().Payment.Status != paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED {
		t.Fatalf("after paying: %v %v", stream.Msg(), stream.Err())
	}
	if stream.Receive() || stream.Err() != nil {
		t.Fatalf("stream did not end cleanly at the final status: %v", stream.Err())
	}

	// Browsers watch with the cashier token instead of a key; a wrong token or another
	// tenant's key finds nothing.
	token := strings.SplitN(p.CashierUrl, "?t=", 2)[1]
	anon := w.env.Client("")
	for name, c := range map[string]struct {
		req    *paycenterv1.WatchPaymentRequest
		client interface {
			WatchPayment(context.Context, *connect.Request[paycenterv1.WatchPaymentRequest]) (*connect.ServerStreamForClient[paycenterv1.WatchPaymentResponse], error)
		}
		code connect.Code
	}{
		"cashier token": {&paycenterv1.WatchPaymentRequest{TradeNo: p.TradeNo, CashierToken: token}, anon.Payments, 0},
		"wrong token":   {&paycenterv1.WatchPaymentRequest{TradeNo: p.TradeNo, CashierToken: "nope"}, anon.Payments, connect.CodeNotFound},
		"no credential": {&paycenterv1.WatchPaymentRequest{TradeNo: p.TradeNo}, anon.Payments, connect.CodeUnauthenticated},
		"other tenant":  {&paycenterv1.WatchPaymentRequest{TradeNo: p.TradeNo}, w.env.NewTenant(t, w.sb, "").Client.Payments, connect.CodeNotFound},
	} {
		s, err := c.client.WatchPayment(ctx, connect.NewRequest(c.req))
		if err == nil {
			s.Receive()
			err = s.Err()
			s.Close()
		}
		if connect.CodeOf(err) != c.code && !(c.code == 0 && err == nil) {
			t.Errorf("%s: %v, want %v", name, err, c.code)
		}
	}

	// A stream on another replica hears of a change the first one applied at once, through
	// PostgreSQL's LISTEN/NOTIFY: well before its safety re-read (15 s).
	replica := servertest.Replica(t, w.env)
	select {
	case <-replica.Server.Payments.Changes.Listening():
	case <-ctx.Done():
		t.Fatal("the replica never started listening for payment changes")
	}
	paid := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 255, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	soon, cancelSoon := context.WithTimeout(ctx, 5*time.Second)
	defer cancelSoon()
	watching, err := replica.Client(w.tenant.APIKey).Payments.WatchPayment(soon, connect.NewRequest(&paycenterv1.WatchPaymentRequest{TradeNo: paid.TradeNo}))
	if err != nil || !watching.Receive() {
		t.Fatalf("watch on the replica: %v", err)
	}
	w.pay(t, paid)
	if !watching.Receive() || watching.Msg().Payment.Status != paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED {
		t.Fatalf("the replica's stream did not hear of the payment: %v %v", watching.Msg(), watching.Err())
	}

	// A replica shutting down ends its open streams instead of waiting for them.
	pending := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 260, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	open, err := replica.Client(w.tenant.APIKey).Payments.WatchPayment(ctx, connect.NewRequest(&paycenterv1.WatchPaymentRequest{TradeNo: pending.TradeNo}))
	if err != nil || !open.Receive() {
		t.Fatalf("watch on the replica: %v", err)
	}
	if err := replica.Stop(); err != nil {
		t.Fatalf("graceful shutdown with an open stream: %v", err)
	}
	for open.Receive() {
	}
}

func TestConcurrentPartialRefundsNeverExceedThePaidAmount(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	p := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 1000, Channel: paycenterv1.Channel_CHANNEL_WECHATPAY})
	w.pay(t, p)
	w.waitStatus(t, p.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int64
		refused  int
	)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := w.app.Refunds.CreateRefund(ctx, connect.NewRequest(&paycenterv1.CreateRefundRequest{
				TradeNo: p.TradeNo, MerchantRefundNo: "r" + strings.Repeat("0", 3) + itoa(i), Amount: 30, Reason: "partial"}))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted += res.Msg.Refund.Amount
			case connect.CodeOf(err) == connect.CodeFailedPrecondition:
				refused++
			default:
				t.Errorf("refund %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if accepted != 990 || refused != 17 {
		t.Fatalf("accepted %d fen in refunds with %d refused, want 990 and 17", accepted, refused)
	}
	if got := w.get(t, p.TradeNo); got.RefundedAmount != 990 {
		t.Fatalf("refunded_amount %d, want 990", got.RefundedAmount)
	}
	// A retry of an accepted refund returns it; the same number with another amount is refused.
	again, err := w.app.Refunds.CreateRefund(ctx, connect.NewRequest(&paycenterv1.CreateRefundRequest{TradeNo: p.TradeNo, MerchantRefundNo: "r0000", Amount: 30}))
	if err == nil && again.Msg.Refund.MerchantRefundNo != "r0000" {
		t.Fatalf("retry: %v", again)
	}
	_, err = w.app.Refunds.CreateRefund(ctx, connect.NewRequest(&paycenterv1.CreateRefundRequest{TradeNo: p.TradeNo, MerchantRefundNo: "r0001", Amount: 31}))
	if connect.CodeOf(err) != connect.CodeAlreadyExists && connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("same refund number, other amount: %v", err)
	}
	eventually(t, "refunds succeed at the channel", func() bool {
		return w.count(t, `SELECT count(*) FROM refunds WHERE trade_no = $1 AND status = 'SUCCEEDED'`, p.TradeNo) == 33
	})
	if got := w.merchantBalance(t); got != 10 {
		t.Fatalf("merchant balance %d after refunds, want 10", got)
	}
	w.checkInvariants(t)
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func TestWebhookReceiverDownThenUpGetsTheEventWithEveryAttemptRecorded(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.hooks.down.Store(3)
	p := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 100, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	w.pay(t, p)
	w.waitStatus(t, p.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
	eventually(t, "delivery after the receiver is back", func() bool { return len(w.hooks.of("payment.succeeded", p.TradeNo)) == 1 })
	res, err := w.app.Payments.ListWebhookDeliveries(ctx, connect.NewRequest(&paycenterv1.ListWebhookDeliveriesRequest{TradeNo: p.TradeNo}))
	if err != nil || len(res.Msg.Events) != 1 {
		t.Fatalf("deliveries: %v %v", res, err)
	}
	ev := res.Msg.Events[0]
	if ev.Status != paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_DELIVERED || len(ev.Attempts) != 4 {
		t.Fatalf("event %v with %d attempts, want DELIVERED after 4", ev.Status, len(ev.Attempts))
	}
	for i, a := range ev.Attempts[:3] {
		if a.HttpStatus != 503 || a.Attempt != int32(i+1) {
			t.Fatalf("attempt %d recorded as %v", i+1, a)
		}
	}
	// Redelivery on request sends it again (at-least-once; consumers dedupe by id).
	if _, err := w.app.Payments.RedeliverWebhook(ctx, connect.NewRequest(&paycenterv1.RedeliverWebhookRequest{EventId: ev.EventId})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "redelivery", func() bool {
		w.hooks.mu.Lock()
		defer w.hooks.mu.Unlock()
		return w.hooks.received[ev.EventId] == 2
	})
}

func TestTwoReplicasOnOneDatabaseNeverDoubleProcess(t *testing.T) {
	w := newWorld(t)
	replica := servertest.Replica(t, w.env)
	ctx := context.Background()
	// Callbacks dropped: both replicas' compensation workers race for every payment.
	var trades []string
	for i := 0; i < 12; i++ {
		ch := paycenterv1.Channel_CHANNEL_ALIPAY
		if i%2 == 1 {
			ch = paycenterv1.Channel_CHANNEL_WECHATPAY
		}
		client := w.app
		if i%3 == 0 {
			client = replica.Client(w.tenant.APIKey)
		}
		res, err := client.Payments.CreatePayment(ctx, connect.NewRequest(&paycenterv1.CreatePaymentRequest{
			MerchantOrderNo: w.orderNo(), Amount: int64(100 + i), Currency: "CNY", Subject: "fee", Channel: ch,
			Method: paycenterv1.PaymentMethod_PAYMENT_METHOD_QR}))
		if err != nil {
			t.Fatal(err)
		}
		p := res.Msg.Payment
		if ch == paycenterv1.Channel_CHANNEL_ALIPAY {
			w.sb.Alipay.FaultTrade(p.TradeNo, sandbox.Fault{Drop: true})
		} else {
			w.sb.WechatPay.FaultTrade(p.TradeNo, sandbox.Fault{Drop: true})
		}
		w.pay(t, p)
		trades = append(trades, p.TradeNo)
	}
	for _, tn := range trades {
		w.waitStatus(t, tn, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
		eventually(t, "webhook", func() bool { return len(w.hooks.of("payment.succeeded", tn)) == 1 })
	}
	if n := w.count(t, `SELECT count(*) FROM ledger_transfers WHERE code = 'PAYMENT'`); n != len(trades) {
		t.Fatalf("%d payment transfers for %d payments", n, len(trades))
	}
	w.hooks.mu.Lock()
	for id, n := range w.hooks.received {
		if n != 1 {
			t.Errorf("event %s delivered %d times by two dispatchers", id, n)
		}
	}
	w.hooks.mu.Unlock()
	w.checkInvariants(t)
}

func TestCreatePaymentRulesAndTenantIsolation(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	base := func() *paycenterv1.CreatePaymentRequest {
		return &paycenterv1.CreatePaymentRequest{MerchantOrderNo: w.orderNo(), Amount: 100, Currency: "CNY", Subject: "fee",
			Channel: paycenterv1.Channel_CHANNEL_ALIPAY, Method: paycenterv1.PaymentMethod_PAYMENT_METHOD_QR}
	}
	bad := map[string]func(r *paycenterv1.CreatePaymentRequest){
		"merchant_order_no": func(r *paycenterv1.CreatePaymentRequest) { r.MerchantOrderNo = "has space" },
		"amount":            func(r *paycenterv1.CreatePaymentRequest) { r.Amount = 0 },
		"currency":          func(r *paycenterv1.CreatePaymentRequest) { r.Currency = "usd" },
		"subject":           func(r *paycenterv1.CreatePaymentRequest) { r.Subject = "" },
		"channel":           func(r *paycenterv1.CreatePaymentRequest) { r.Channel = 42 },
		"method":            func(r *paycenterv1.CreatePaymentRequest) { r.Method = 0 },
		"expire_seconds":    func(r *paycenterv1.CreatePaymentRequest) { r.ExpireSeconds = 5 },
		"return_url":        func(r *paycenterv1.CreatePaymentRequest) { r.ReturnUrl = "javascript:alert(1)" },
		"payer_openid": func(r *paycenterv1.CreatePaymentRequest) {
			r.Channel, r.Method = paycenterv1.Channel_CHANNEL_WECHATPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_JSAPI
		},
		"client_ip": func(r *paycenterv1.CreatePaymentRequest) {
			r.Channel, r.Method = paycenterv1.Channel_CHANNEL_WECHATPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_WAP
		},
	}
	wrongMethods := []func(r *paycenterv1.CreatePaymentRequest){
		func(r *paycenterv1.CreatePaymentRequest) {
			r.Channel, r.Method = paycenterv1.Channel_CHANNEL_WECHATPAY, paycenterv1.PaymentMethod_PAYMENT_METHOD_PC_PAGE
		},
		func(r *paycenterv1.CreatePaymentRequest) {
			r.Method, r.PayerOpenid = paycenterv1.PaymentMethod_PAYMENT_METHOD_JSAPI, "openid-1"
		},
	}
	for i, mutate := range wrongMethods {
		r := base()
		mutate(r)
		_, err := w.app.Payments.CreatePayment(ctx, connect.NewRequest(r))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.HasPrefix(ce.Message(), "method:") {
			t.Errorf("wrong method %d for the channel: %v, want INVALID_ARGUMENT naming method", i, err)
		}
	}
	before := w.count(t, `SELECT count(*) FROM payments`)
	for field, mutate := range bad {
		r := base()
		mutate(r)
		_, err := w.app.Payments.CreatePayment(ctx, connect.NewRequest(r))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.HasPrefix(ce.Message(), field) {
			t.Errorf("%s: got %v, want INVALID_ARGUMENT naming it", field, err)
		}
	}
	if after := w.count(t, `SELECT count(*) FROM payments`); after != before {
		t.Fatalf("rejected requests wrote %d payments", after-before)
	}

	// Idempotency on the order number.
	r := base()
	first := w.create(t, r)
	again := w.create(t, r)
	if again.TradeNo != first.TradeNo {
		t.Fatal("the same request made a second payment")
	}
	r2 := base()
	r2.MerchantOrderNo, r2.Amount = r.MerchantOrderNo, 101
	if _, err := w.app.Payments.CreatePayment(ctx, connect.NewRequest(r2)); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("same order, other amount: %v", err)
	}

	// Other tenants' payments do not exist for this app; admins cannot create payments.
	other := w.env.NewTenant(t, w.sb, "")
	for _, call := range []func() error{
		func() error {
			_, err := other.Client.Payments.GetPayment(ctx, connect.NewRequest(&paycenterv1.GetPaymentRequest{Key: &paycenterv1.GetPaymentRequest_TradeNo{TradeNo: first.TradeNo}}))
			return err
		},
		func() error {
			_, err := other.Client.Payments.ClosePayment(ctx, connect.NewRequest(&paycenterv1.ClosePaymentRequest{TradeNo: first.TradeNo}))
			return err
		},
		func() error {
			_, err := other.Client.Refunds.CreateRefund(ctx, connect.NewRequest(&paycenterv1.CreateRefundRequest{TradeNo: first.TradeNo, MerchantRefundNo: "x", Amount: 1}))
			return err
		},
	} {
		if err := call(); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("another tenant's payment: %v, want NOT_FOUND", err)
		}
	}
	if _, err := w.env.Admin().Payments.CreatePayment(ctx, connect.NewRequest(base())); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("admin creating a payment: %v", err)
	}

	// A frozen merchant's app can create neither payments nor refunds.
	if _, err := w.env.Admin().Merchants.FreezeMerchant(ctx, connect.NewRequest(&paycenterv1.FreezeMerchantRequest{MerchantId: w.tenant.MerchantID, Reason: "audit"})); err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.Payments.CreatePayment(ctx, connect.NewRequest(base())); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("frozen merchant's payment: %v", err)
	}
	if _, err := w.app.Refunds.CreateRefund(ctx, connect.NewRequest(&paycenterv1.CreateRefundRequest{TradeNo: first.TradeNo, MerchantRefundNo: "y", Amount: 1})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("frozen merchant's refund: %v", err)
	}
}

func TestEveryPaymentRPCRejectsBadInputAndHidesOtherTenants(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	p := w.create(t, &paycenterv1.CreatePaymentRequest{Amount: 100, Channel: paycenterv1.Channel_CHANNEL_ALIPAY})
	past := timestamppb.New(time.Now().Add(-time.Hour))
	earlier := timestamppb.New(time.Now().Add(-2 * time.Hour))
	invalid := map[string]func() error{
		"key": func() error {
			_, err := w.app.Payments.GetPayment(ctx, connect.NewRequest(&paycenterv1.GetPaymentRequest{}))
			return err
		},
		"trade_no": func() error {
			_, err := w.app.Payments.ClosePayment(ctx, connect.NewRequest(&paycenterv1.ClosePaymentRequest{}))
			return err
		},
		"page_size": func() error {
			_, err := w.app.Payments.ListPayments(ctx, connect.NewRequest(&paycenterv1.ListPaymentsRequest{PageSize: 1000}))
			return err
		},
		"page_token": func() error {
			_, err := w.app.Payments.ListPayments(ctx, connect.NewRequest(&paycenterv1.ListPaymentsRequest{PageToken: "!!"}))
			return err
		},
		"status": func() error {
			_, err := w.app.Payments.ListPayments(ctx, connect.NewRequest(&paycenterv1.ListPaymentsRequest{Status: 77}))
			return err
		},
		"channel": func() error {
			_, err := w.app.Payments.ListPayments(ctx, connect.NewRequest(&paycenterv1.ListPaymentsRequest{Channel: 77}))
			return err
		},
		"end_time": func() error {
			_, err := w.app.Payments.ListPayments(ctx, connect.NewRequest(&paycenterv1.ListPaymentsRequest{StartTime: past, EndTime: earlier}))
			return err
		},
		"event_id": func() error {
			_, err := w.app.Payments.RedeliverWebhook(ctx, connect.NewRequest(&paycenterv1.RedeliverWebhookRequest{}))
			return err
		},
	}
	for field, call := range invalid {
		err := call()
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.HasPrefix(ce.Message(), field) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming it", field, err)
		}
	}
	// Filters and pagination work.
	list, err := w.app.Payments.ListPayments(ctx, connect.NewRequest(&paycenterv1.ListPaymentsRequest{
		Status: paycenterv1.PaymentStatus_PAYMENT_STATUS_PENDING, Channel: paycenterv1.Channel_CHANNEL_ALIPAY, StartTime: past}))
	if err != nil || len(list.Msg.Payments) != 1 || list.Msg.Payments[0].TradeNo != p.TradeNo {
		t.Fatalf("filtered list: %v %v", list, err)
	}
	// Another tenant finds nothing of this app's, events included.
	other := w.env.NewTenant(t, w.sb, "")
	theirs, err := other.Client.Payments.ListPayments(ctx, connect.NewRequest(&paycenterv1.ListPaymentsRequest{}))
	if err != nil || len(theirs.Msg.Payments) != 0 {
		t.Fatalf("another tenant lists %v (%v)", theirs, err)
	}
	w.pay(t, p)
	w.waitStatus(t, p.TradeNo, paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED)
	var eventID string
	eventually(t, "event listed", func() bool {
		res, err := w.app.Payments.ListWebhookDeliveries(ctx, connect.NewRequest(&paycenterv1.ListWebhookDeliveriesRequest{TradeNo: p.TradeNo}))
		if err == nil && len(res.Msg.Events) == 1 {
			eventID = res.Msg.Events[0].EventId
		}
		return eventID != ""
	})
	if _, err := other.Client.Payments.RedeliverWebhook(ctx, connect.NewRequest(&paycenterv1.RedeliverWebhookRequest{EventId: eventID})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("another tenant redelivering this app's event: %v", err)
	}
	if res, err := other.Client.Payments.ListWebhookDeliveries(ctx, connect.NewRequest(&paycenterv1.ListWebhookDeliveriesRequest{TradeNo: p.TradeNo})); err != nil || len(res.Msg.Events) != 0 {
		t.Fatalf("another tenant lists this app's events: %v %v", res, err)
	}
	if _, err := w.app.Payments.ClosePayment(ctx, connect.NewRequest(&paycenterv1.ClosePaymentRequest{TradeNo: p.TradeNo})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("closing a paid payment: %v", err)
	}
}

func TestConcurrentIdenticalCreatesMakeOnePaymentAndGiveEveryoneItsQRCode(t *testing.T) {
	w := newWorld(t)
	order := w.orderNo()
	var wg sync.WaitGroup
	results := make([]*paycenterv1.Payment, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = w.create(t, &paycenterv1.CreatePaymentRequest{MerchantOrderNo: order, Amount: 990, Channel: paycenterv1.Channel_CHANNEL_WECHATPAY})
		}()
	}
	wg.Wait()
	for _, p := range results {
		if p == nil {
			t.Fatal("a create failed")
		}
		if p.TradeNo != results[0].TradeNo || p.PayerAction.GetQrCode() == "" {
			t.Fatalf("answers differ: %v vs %v", p, results[0])
		}
	}
	if n := w.count(t, `SELECT count(*) FROM payments WHERE merchant_order_no = $1`, order); n != 1 {
		t.Fatalf("%d payments for one order", n)
	}
}
