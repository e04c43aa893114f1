package sandbox

import (
	"context"
	"fmt"
	"time"
)

// Pay plays the payer paying the order with this out_trade_no: it succeeds,
// gets a transaction_id, and TRANSACTION.SUCCESS goes to its notify_url.
func (wx *WechatPay) Pay(outTradeNo string) error { return wx.pay(outTradeNo, false) }

// PayAfterClose pays an order the merchant (or expiry) already closed: the
// sandbox takes the money anyway and notifies TRANSACTION.SUCCESS, the race a
// real channel can lose. The order must be closed.
func (wx *WechatPay) PayAfterClose(outTradeNo string) error { return wx.pay(outTradeNo, true) }

func (wx *WechatPay) pay(outTradeNo string, afterClose bool) error {
	wx.mu.Lock()
	defer wx.mu.Unlock()
	t, err := wx.book.forPayer(outTradeNo, time.Now())
	if err != nil {
		return err
	}
	return wx.payLocked(t, afterClose)
}

func (wx *WechatPay) payLocked(t *trade, afterClose bool) error {
	if afterClose && t.state != tradeClosed {
		return fmt.Errorf("order %s is not closed: %w", t.outTradeNo, ErrConflict)
	}
	now := time.Now()
	seq := wx.book.next()
	if err := t.pay(now, fmt.Sprintf("oSandbox%020d", seq), afterClose); err != nil {
		return err
	}
	t.channelNo = fmt.Sprintf("4200%s%s%010d", wx.instance, now.In(beijing).Format("20060102"), seq)
	wx.book.index(t)
	wx.log.Info("wechatpay order paid by the sandbox payer", "mchid", t.owner, "out_trade_no", t.outTradeNo,
		"transaction_id", t.channelNo, "amount_fen", t.amount, "after_close", afterClose)
	wx.notify(t, t.notifyURL, "TRANSACTION.SUCCESS", "支付成功", "transaction", transactionOf(t))
	return nil
}

// Fail plays the payer's payment failing: the order becomes PAYERROR.
// WeChat Pay sends no notification for that.
func (wx *WechatPay) Fail(outTradeNo string) error {
	wx.mu.Lock()
	defer wx.mu.Unlock()
	t, err := wx.book.forPayer(outTradeNo, time.Now())
	if err != nil {
		return err
	}
	if t.state != tradePending {
		return fmt.Errorf("order %s is not awaiting payment: %w", outTradeNo, ErrConflict)
	}
	t.state, t.closedAt = tradeFailed, time.Now()
	return nil
}

// CompleteRefund settles a processing refund (see SetManualRefunds)
// successfully and sends REFUND.SUCCESS to the refund's notify_url.
func (wx *WechatPay) CompleteRefund(outTradeNo, outRefundNo string) error {
	return wx.settleRefund(outTradeNo, outRefundNo, true)
}

// FailRefund settles a processing refund as ABNORMAL and sends
// REFUND.ABNORMAL; its amount becomes refundable again.
func (wx *WechatPay) FailRefund(outTradeNo, outRefundNo string) error {
	return wx.settleRefund(outTradeNo, outRefundNo, false)
}

func (wx *WechatPay) settleRefund(outTradeNo, outRefundNo string, ok bool) error {
	wx.mu.Lock()
	defer wx.mu.Unlock()
	t, r, err := wx.book.refundForPayer(outTradeNo, outRefundNo, time.Now())
	if err != nil {
		return err
	}
	wx.finishRefund(t, r, ok)
	return nil
}

// finishRefund settles r and notifies. Callers hold wx.mu.
func (wx *WechatPay) finishRefund(t *trade, r *refund, ok bool) {
	r.doneAt = time.Now()
	event, summary := "REFUND.SUCCESS", "退款成功"
	r.state = refundSucceeded
	if !ok {
		event, summary = "REFUND.ABNORMAL", "退款异常"
		r.state = refundFailed
	}
	type refundAmount struct {
		Total       int64 `json:"total"`
		Refund      int64 `json:"refund"`
		PayerTotal  int64 `json:"payer_total"`
		PayerRefund int64 `json:"payer_refund"`
	}
	resource := struct {
		Mchid               string       `json:"mchid"`
		OutTradeNo          string       `json:"out_trade_no"`
		TransactionID       string       `json:"transaction_id"`
		OutRefundNo         string       `json:"out_refund_no"`
		RefundID            string       `json:"refund_id"`
		RefundStatus        string       `json:"refund_status"`
		SuccessTime         string       `json:"success_time,omitempty"`
		UserReceivedAccount string       `json:"user_received_account"`
		Amount              refundAmount `json:"amount"`
	}{
		Mchid: t.owner, OutTradeNo: t.outTradeNo, TransactionID: t.channelNo,
		OutRefundNo: r.outRefundNo, RefundID: r.refundID, RefundStatus: wechatRefundStatus(r),
		UserReceivedAccount: "支付用户零钱",
		Amount:              refundAmount{Total: t.amount, Refund: r.amount, PayerTotal: t.amount, PayerRefund: r.amount},
	}
	if ok {
		resource.SuccessTime = r.doneAt.In(beijing).Format(wechatTime)
	}
	wx.notify(t, r.notifyURL, event, summary, "refund", resource)
}

// SetManualRefunds switches between refunds that complete at once (false)
// and refunds that stay PROCESSING until CompleteRefund or FailRefund.
func (wx *WechatPay) SetManualRefunds(manual bool) {
	wx.mu.Lock()
	defer wx.mu.Unlock()
	wx.manualRefunds = manual
}

// SetBalanceShort makes refunds of mchID fail with 403 NOT_ENOUGH (the
// merchant's balance cannot cover them) until called again with false.
func (wx *WechatPay) SetBalanceShort(mchID string, short bool) {
	wx.mu.Lock()
	defer wx.mu.Unlock()
	wx.balanceShort[mchID] = short
}

// FaultNext applies f to the next notification this sandbox sends.
// Successive calls apply to successive notifications.
func (wx *WechatPay) FaultNext(f Fault) { wx.notifier.faultNext(f) }

// FaultTrade applies f to every notification about outTradeNo; the zero
// Fault clears it.
func (wx *WechatPay) FaultTrade(outTradeNo string, f Fault) { wx.notifier.faultTrade(outTradeNo, f) }

// Deliveries returns the notification attempts so far, oldest first.
func (wx *WechatPay) Deliveries() []Delivery { return wx.notifier.deliveries() }

// WaitIdle waits until no notification is queued, scheduled or in flight.
func (wx *WechatPay) WaitIdle(ctx context.Context) error { return wx.notifier.waitIdle(ctx) }

// Trade returns a snapshot of the order with this out_trade_no.
func (wx *WechatPay) Trade(outTradeNo string) (TradeInfo, error) {
	wx.mu.Lock()
	defer wx.mu.Unlock()
	t, err := wx.book.forPayer(outTradeNo, time.Now())
	if err != nil {
		return TradeInfo{}, err
	}
	state, _ := wechatTradeState(t)
	return t.info(state, wechatRefundStatus), nil
}
