package refund_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
	"github.com/paycenter/paycenter/server/internal/server/servertest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRefundRulesFailuresAndBadInput(t *testing.T) {
	env := servertest.Start(t)
	sb := servertest.StartSandbox(t)
	tenant := env.NewTenant(t, sb, "")
	app := tenant.Client
	ctx := context.Background()

	create := func(order string) *paycenterv1.Payment {
		res, err := app.Payments.CreatePayment(ctx, connect.NewRequest(&paycenterv1.CreatePaymentRequest{
			MerchantOrderNo: order, Amount: 1000, Currency: "CNY", Subject: "fee",
			Channel: paycenterv1.Channel_CHANNEL_ALIPAY, Method: paycenterv1.PaymentMethod_PAYMENT_METHOD_QR}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.Payment
	}
	status := func(tradeNo string) *paycenterv1.Payment {
		res, err := app.Payments.GetPayment(ctx, connect.NewRequest(&paycenterv1.GetPaymentRequest{Key: &paycenterv1.GetPaymentRequest_TradeNo{TradeNo: tradeNo}}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.Payment
	}

	unpaid := create("unpaid-1")
	_, err := app.Refunds.CreateRefund(ctx, connect.NewRequest(&paycenterv1.CreateRefundRequest{TradeNo: unpaid.TradeNo, MerchantRefundNo: "r1", Amount: 100}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("refund of an unpaid payment: %v", err)
	}

	paid := create("paid-1")
	if err := sb.Alipay.Pay(paid.TradeNo); err != nil {
		t.Fatal(err)
	}
	eventually(t, "payment succeeded", func() bool { return status(paid.TradeNo).Status == paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED })

	// Bad input names the field and writes nothing.
	for field, req := range map[string]*paycenterv1.CreateRefundRequest{
		"trade_no":           {MerchantRefundNo: "r2", Amount: 1},
		"merchant_refund_no": {TradeNo: paid.TradeNo, MerchantRefundNo: "no spaces allowed", Amount: 1},
		"amount":             {TradeNo: paid.TradeNo, MerchantRefundNo: "r3", Amount: -5},
		"reason":             {TradeNo: paid.TradeNo, MerchantRefundNo: "r4", Amount: 1, Reason: strings.Repeat("x", 257)},
	} {
		_, err := app.Refunds.CreateRefund(ctx, connect.NewRequest(req))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.HasPrefix(ce.Message(), field) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming it", field, err)
		}
	}
	_, err = app.Refunds.CreateRefund(ctx, connect.NewRequest(&paycenterv1.CreateRefundRequest{TradeNo: paid.TradeNo, MerchantRefundNo: "too-much", Amount: 1001}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("refund above the paid amount: %v", err)
	}
	_, err = app.Refunds.GetRefund(ctx, connect.NewRequest(&paycenterv1.GetRefundRequest{}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("GetRefund without a key: %v", err)
	}
	_, err = app.Refunds.ListRefunds(ctx, connect.NewRequest(&paycenterv1.ListRefundsRequest{Status: 9}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("ListRefunds with an unknown status: %v", err)
	}
	var rows int
	if err := env.DB.GetContext(ctx, &rows, `SELECT count(*) FROM refunds`); err != nil || rows != 0 {
		t.Fatalf("rejected refunds wrote %d rows (%v)", rows, err)
	}

	// The channel refuses (the merchant's balance there is short): the refund fails, the
	// money is refundable again, and the ledger hold is released.
	sb.Alipay.SetBalanceShort(tenant.Credentials.Alipay.AppID, true)
	res, err := app.Refunds.CreateRefund(ctx, connect.NewRequest(&paycenterv1.CreateRefundRequest{TradeNo: paid.TradeNo, MerchantRefundNo: "short-1", Amount: 600, Reason: "customer left"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.Refund.Status != paycenterv1.RefundStatus_REFUND_STATUS_FAILED || res.Msg.Refund.FailureReason == "" {
		t.Fatalf("refused refund: %v", res.Msg.Refund)
	}
	if got := status(paid.TradeNo).RefundedAmount; got != 0 {
		t.Fatalf("refunded_amount %d after a failed refund, want 0", got)
	}
	sb.Alipay.SetBalanceShort(tenant.Credentials.Alipay.AppID, false)
	ok, err := app.Refunds.CreateRefund(ctx, connect.NewRequest(&paycenterv1.CreateRefundRequest{TradeNo: paid.TradeNo, MerchantRefundNo: "ok-1", Amount: 1000}))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "full refund succeeds", func() bool {
		r, err := app.Refunds.GetRefund(ctx, connect.NewRequest(&paycenterv1.GetRefundRequest{Key: &paycenterv1.GetRefundRequest_MerchantRefundNo{MerchantRefundNo: "ok-1"}}))
		return err == nil && r.Msg.Refund.Status == paycenterv1.RefundStatus_REFUND_STATUS_SUCCEEDED && r.Msg.Refund.RefundNo == ok.Msg.Refund.RefundNo
	})
	if got := status(paid.TradeNo).RefundedAmount; got != 1000 {
		t.Fatalf("refunded_amount %d, want 1000", got)
	}
	list, err := app.Refunds.ListRefunds(ctx, connect.NewRequest(&paycenterv1.ListRefundsRequest{TradeNo: paid.TradeNo, PageSize: 1}))
	if err != nil || len(list.Msg.Refunds) != 1 || list.Msg.NextPageToken == "" {
		t.Fatalf("first page of refunds: %v %v", list, err)
	}
	// Both outcomes were announced (the app has no webhook URL, so they wait as FAILED for a
	// redelivery once it sets one).
	events, err := app.Payments.ListWebhookDeliveries(ctx, connect.NewRequest(&paycenterv1.ListWebhookDeliveriesRequest{TradeNo: paid.TradeNo}))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, e := range events.Msg.Events {
		types[e.Type] = true
	}
	if !types["refund.failed"] || !types["refund.succeeded"] || !types["payment.succeeded"] {
		t.Fatalf("events %v", types)
	}
	inv, err := env.Admin().Ledger.CheckInvariants(ctx, connect.NewRequest(&paycenterv1.CheckInvariantsRequest{}))
	if err != nil || !inv.Msg.Ok {
		t.Fatalf("invariants: %v %v", inv, err)
	}

	// Another tenant sees none of it.
	other := env.NewTenant(t, sb, "")
	_, err = other.Client.Refunds.GetRefund(ctx, connect.NewRequest(&paycenterv1.GetRefundRequest{Key: &paycenterv1.GetRefundRequest_RefundNo{RefundNo: ok.Msg.Refund.RefundNo}}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("another tenant's refund: %v", err)
	}
}
