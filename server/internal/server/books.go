package server

import (
	"context"
	"errors"
	"sync"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/ledger"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/payment"
	"github.com/paycenter/paycenter/server/internal/refund"
)

// books posts payments and refunds to the ledger inside the caller's transaction:
//
//	payment succeeded   channel clearing (debit) → merchant available (credit)
//	refund opened       merchant available → channel clearing, pending (the money is held)
//	refund succeeded    the hold is posted;  refund failed: the hold is voided
//
// Accounts are per merchant, so no transaction ever touches two merchants' books.
type books struct {
	ledger *ledger.Service
	ids    *accountIDs
}

func newBooks(l *ledger.Service) books { return books{ledger: l, ids: &accountIDs{}} }

type accountKey struct {
	merchantID string
	code       ledger.AccountCode
	currency   string
}

// accountIDs remembers the ids of committed accounts (ids never change and accounts are never
// deleted), so a payment does not look its two accounts up every time. Should an id ever be
// wrong, the posting refuses with ACCOUNT_NOT_FOUND, the cache is dropped and the caller's
// transaction rolls back to be retried.
type accountIDs struct {
	mu sync.Mutex
	m  map[accountKey]string
}

func (c *accountIDs) get(k accountKey) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.m[k]
	return id, ok
}

func (c *accountIDs) put(k accountKey, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 100000 {
		c.m = map[accountKey]string{}
	}
	c.m[k] = id
}

func (c *accountIDs) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

func (b books) accountID(ctx context.Context, tx *sqlx.Tx, merchantID string, code ledger.AccountCode, currency string) (string, error) {
	k := accountKey{merchantID, code, currency}
	if id, ok := b.ids.get(k); ok {
		return id, nil
	}
	a, err := b.ledger.FindAccount(ctx, tx, merchantID, code, currency)
	if err == nil {
		// Found before this transaction created it, so it is committed: safe to share.
		b.ids.put(k, a.ID)
		return a.ID, nil
	}
	if !errors.Is(err, errs.ErrNotFound) {
		return "", err
	}
	// Created here: other transactions cannot see it until this one commits, so it is not
	// cached yet (the next lookup finds it committed).
	a, err = b.ledger.EnsureAccount(ctx, tx, merchantID, code, currency)
	return a.ID, err
}

var clearingCode = map[merchant.Channel]ledger.AccountCode{
	merchant.ChannelAlipay:    ledger.ChannelClearingAlipay,
	merchant.ChannelWechatPay: ledger.ChannelClearingWechatPay,
	merchant.ChannelCollector: ledger.ChannelClearingCollector,
}

func (b books) accounts(ctx context.Context, tx *sqlx.Tx, p payment.Payment) (clearing, available string, err error) {
	if clearing, err = b.accountID(ctx, tx, p.MerchantID, clearingCode[p.Channel], p.Currency); err != nil {
		return
	}
	available, err = b.accountID(ctx, tx, p.MerchantID, ledger.MerchantAvailable, p.Currency)
	return
}

func (b books) post(ctx context.Context, tx *sqlx.Tx, t ledger.Transfer) error {
	results, err := b.ledger.Post(ctx, tx, []ledger.Transfer{t})
	if err != nil {
		return err
	}
	if err := ledger.FirstRefusal(results); err != nil {
		var refusal *ledger.RefusalError
		if errors.As(err, &refusal) {
			switch refusal.Result.Refusal {
			case ledger.RefusedExceedsCredits:
				return errs.FailedPrecondition("the merchant's available balance is too low for this refund")
			case ledger.RefusedAccountNotFound:
				b.ids.reset()
			}
		}
		return err
	}
	return nil
}

func (b books) BookPayment(ctx context.Context, tx *sqlx.Tx, p payment.Payment) error {
	clearing, available, err := b.accounts(ctx, tx, p)
	if err != nil {
		return err
	}
	return b.post(ctx, tx, ledger.Transfer{
		ID: "pay:" + p.TradeNo, DebitAccountID: clearing, CreditAccountID: available,
		Amount: p.Amount, Currency: p.Currency, Code: ledger.CodePayment, Reference: p.TradeNo,
		Metadata: map[string]string{"channel": string(p.Channel), "merchant_order_no": p.MerchantOrderNo,
			"channel_transaction_id": p.TransactionID, "client_ip": p.ClientIP},
	})
}

func (b books) HoldRefund(ctx context.Context, tx *sqlx.Tx, r refund.Refund, p payment.Payment) error {
	clearing, available, err := b.accounts(ctx, tx, p)
	if err != nil {
		return err
	}
	return b.post(ctx, tx, ledger.Transfer{
		ID: "refund:" + r.RefundNo, DebitAccountID: available, CreditAccountID: clearing,
		Amount: r.Amount, Currency: r.Currency, Code: ledger.CodeRefund, Reference: r.RefundNo, Pending: true,
		Metadata: map[string]string{"trade_no": p.TradeNo, "merchant_refund_no": r.MerchantRefundNo},
	})
}

func (b books) SettleRefund(ctx context.Context, tx *sqlx.Tx, r refund.Refund, _ payment.Payment, succeeded bool) error {
	t := ledger.Transfer{PendingTransferID: "refund:" + r.RefundNo, Reference: r.RefundNo}
	if succeeded {
		t.ID, t.PostPending = "refund:"+r.RefundNo+":post", true
	} else {
		t.ID, t.VoidPending = "refund:"+r.RefundNo+":void", true
	}
	return b.post(ctx, tx, t)
}
