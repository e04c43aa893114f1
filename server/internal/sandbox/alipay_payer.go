package sandbox

import (
	"context"
	"fmt"
	"time"
)

// maskedLogon is the buyer's masked Alipay account, as Alipay shows it.
const maskedLogon = "138****0000"

// Pay plays the payer paying the trade with this out_trade_no: the trade
// succeeds and a TRADE_SUCCESS notification goes to its notify_url.
// A page, wap or app trade must first have reached the sandbox (its pay URL
// opened, or its order string given to SubmitAppOrder).
func (a *Alipay) Pay(outTradeNo string) error { return a.pay(outTradeNo, false) }

// PayAfterClose pays a trade the merchant (or expiry) already closed: the
// sandbox takes the money anyway and notifies TRADE_SUCCESS, the race a real
// channel can lose. The trade must be closed.
func (a *Alipay) PayAfterClose(outTradeNo string) error { return a.pay(outTradeNo, true) }

func (a *Alipay) pay(outTradeNo string, afterClose bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, err := a.book.forPayer(outTradeNo, time.Now())
	if err != nil {
		return err
	}
	return a.payLocked(t, afterClose)
}

func (a *Alipay) payLocked(t *trade, afterClose bool) error {
	if afterClose && t.state != tradeClosed {
		return fmt.Errorf("trade %s is not closed: %w", t.outTradeNo, ErrConflict)
	}
	buyer := fmt.Sprintf("2088%012d", a.book.next())
	if err := t.pay(time.Now(), buyer, afterClose); err != nil {
		return err
	}
	a.log.Info("alipay trade paid by the sandbox payer", "app_id", t.owner, "out_trade_no", t.outTradeNo,
		"trade_no", t.channelNo, "amount_fen", t.amount, "after_close", afterClose)
	a.notifyTrade(t, nil, "")
	return nil
}

// Fail plays the payer failing or abandoning the payment: Alipay closes the
// trade and notifies TRADE_CLOSED.
func (a *Alipay) Fail(outTradeNo string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, err := a.book.forPayer(outTradeNo, time.Now())
	if err != nil {
		return err
	}
	if t.state != tradePending {
		return fmt.Errorf("trade %s is not awaiting payment: %w", outTradeNo, ErrConflict)
	}
	t.state, t.closedAt, t.scanned = tradeClosed, time.Now(), true
	a.notifyTrade(t, nil, "")
	return nil
}

// CompleteRefund settles a processing refund (see SetManualRefunds)
// successfully and notifies the merchant.
func (a *Alipay) CompleteRefund(outTradeNo, outRequestNo string) error {
	return a.settleRefund(outTradeNo, outRequestNo, true)
}

// FailRefund settles a processing refund as failed; its amount becomes
// refundable again.
func (a *Alipay) FailRefund(outTradeNo, outRequestNo string) error {
	return a.settleRefund(outTradeNo, outRequestNo, false)
}

func (a *Alipay) settleRefund(outTradeNo, outRequestNo string, ok bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, r, err := a.book.refundForPayer(outTradeNo, outRequestNo, time.Now())
	if err != nil {
		return err
	}
	a.finishRefund(t, r, ok)
	return nil
}

// SetManualRefunds switches between refunds that complete at once (false)
// and refunds that stay processing until CompleteRefund or FailRefund.
func (a *Alipay) SetManualRefunds(manual bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.manualRefunds = manual
}

// SetBalanceShort makes refunds of appID fail with
// ACQ.SELLER_BALANCE_NOT_ENOUGH until called again with false.
func (a *Alipay) SetBalanceShort(appID string, short bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.balanceShort[appID] = short
}

// FaultNext applies f to the next notification this sandbox sends.
// Successive calls apply to successive notifications.
func (a *Alipay) FaultNext(f Fault) { a.notifier.faultNext(f) }

// FaultTrade applies f to every notification about outTradeNo; the zero
// Fault clears it.
func (a *Alipay) FaultTrade(outTradeNo string, f Fault) { a.notifier.faultTrade(outTradeNo, f) }

// MisreportAmount makes notifications about outTradeNo claim amount fen instead of
// the trade's own amount, correctly signed: the merchant must notice the mismatch.
func (a *Alipay) MisreportAmount(outTradeNo string, amount int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, err := a.book.forPayer(outTradeNo, time.Now())
	if err != nil {
		return err
	}
	t.misreported = amount
	return nil
}

// Deliveries returns the notification attempts so far, oldest first.
func (a *Alipay) Deliveries() []Delivery { return a.notifier.deliveries() }

// WaitIdle waits until no notification is queued, scheduled or in flight.
func (a *Alipay) WaitIdle(ctx context.Context) error { return a.notifier.waitIdle(ctx) }

// Trade returns a snapshot of the trade with this out_trade_no.
func (a *Alipay) Trade(outTradeNo string) (TradeInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, err := a.book.forPayer(outTradeNo, time.Now())
	if err != nil {
		return TradeInfo{}, err
	}
	return t.info(alipayTradeStatus(t), alipayRefundStatus), nil
}

func (a *Alipay) publicKey() (pem, id string) { return a.keys.PublicKeyPEM, "" }
