// Package refund returns money of succeeded payments to payers. The sum of a payment's
// refunds never passes its amount, also under concurrent requests: the payment row is locked
// and its refunded amount raised by one conditional UPDATE (and a CHECK constraint) in the
// same transaction that records the refund and holds the money in the ledger.
package refund

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/payment"
)

// Status of a refund.
type Status string

// Refund states: PENDING → SUCCEEDED | FAILED.
const (
	StatusPending   Status = "PENDING"
	StatusSucceeded Status = "SUCCEEDED"
	StatusFailed    Status = "FAILED"
)

// Refund returns money of one payment.
type Refund struct {
	RefundNo         string     `db:"refund_no"`
	MerchantID       string     `db:"merchant_id"`
	AppID            string     `db:"app_id"`
	TradeNo          string     `db:"trade_no"`
	MerchantRefundNo string     `db:"merchant_refund_no"`
	Amount           int64      `db:"amount"`
	Currency         string     `db:"currency"`
	Reason           string     `db:"reason"`
	Status           Status     `db:"status"`
	ChannelRefundID  string     `db:"channel_refund_id"`
	FailureReason    string     `db:"failure_reason"`
	Automatic        bool       `db:"automatic"`
	CreatedAt        time.Time  `db:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at"`
	SucceededAt      *time.Time `db:"succeeded_at"`
}

// Books records refunds in the ledger inside the caller's transaction.
type Books interface {
	// HoldRefund reserves the refund's amount (a pending transfer merchant → channel clearing).
	HoldRefund(ctx context.Context, tx *sqlx.Tx, r Refund, p payment.Payment) error
	// SettleRefund posts the hold when the refund succeeded, or voids it when it failed.
	SettleRefund(ctx context.Context, tx *sqlx.Tx, r Refund, p payment.Payment, succeeded bool) error
}

// Events queues webhook events about refunds inside the caller's transaction.
type Events interface {
	Publish(ctx context.Context, tx *sqlx.Tx, typ string, r Refund) error
}

// Event types.
const (
	EventSucceeded = "refund.succeeded"
	EventFailed    = "refund.failed"
)
