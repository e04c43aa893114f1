// Package payment asks payers for money through a channel and confirms it exactly once:
// every transition is one conditional UPDATE, and a success books the ledger and queues the
// app's webhook in the same transaction. Callbacks are never trusted alone: a compensation
// worker asks the channels about payments still pending and closes expired ones.
package payment

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/merchant"
)

// Status of a payment.
type Status string

// Payment states: PENDING → SUCCEEDED | CLOSED | FAILED.
const (
	StatusPending   Status = "PENDING"
	StatusSucceeded Status = "SUCCEEDED"
	StatusClosed    Status = "CLOSED"
	StatusFailed    Status = "FAILED"
)

// Payment is one attempt to collect an order's amount on one channel.
type Payment struct {
	TradeNo         string                          `db:"trade_no"`
	MerchantID      string                          `db:"merchant_id"`
	AppID           string                          `db:"app_id"`
	MerchantOrderNo string                          `db:"merchant_order_no"`
	Channel         merchant.Channel                `db:"channel"`
	Method          channel.Method                  `db:"method"`
	Amount          int64                           `db:"amount"`
	Currency        string                          `db:"currency"`
	Subject         string                          `db:"subject"`
	Status          Status                          `db:"status"`
	RefundedAmount  int64                           `db:"refunded_amount"`
	TransactionID   string                          `db:"channel_transaction_id"`
	PayerAction     jsonColumn[channel.PayerAction] `db:"payer_action"`
	ClientIP        string                          `db:"client_ip"`
	ReturnURL       string                          `db:"return_url"`
	PayerOpenID     string                          `db:"payer_openid"`
	Metadata        jsonColumn[map[string]string]   `db:"metadata"`
	CashierToken    string                          `db:"cashier_token"`
	Duplicate       bool                            `db:"duplicate"`
	ExpireAt        time.Time                       `db:"expire_at"`
	CreatedAt       time.Time                       `db:"created_at"`
	UpdatedAt       time.Time                       `db:"updated_at"`
	PaidAt          *time.Time                      `db:"paid_at"`
	ClosedAt        *time.Time                      `db:"closed_at"`
}

// Final reports whether the payment can no longer change status.
func (p Payment) Final() bool { return p.Status != StatusPending }

// CreateRequest is an app's request for money.
type CreateRequest struct {
	MerchantOrderNo string
	Amount          int64
	Currency        string
	Subject         string
	Channel         merchant.Channel
	Method          channel.Method
	ExpireSeconds   int32
	ClientIP        string
	ReturnURL       string
	PayerOpenID     string
	Metadata        map[string]string
}

// Filter narrows ListPayments.
type Filter struct {
	Status          Status
	Channel         merchant.Channel
	MerchantOrderNo string
	Start, End      time.Time
}

// Books records money movements in the ledger inside the caller's transaction.
type Books interface {
	// BookPayment records a succeeded payment: channel clearing → merchant available.
	BookPayment(ctx context.Context, tx *sqlx.Tx, p Payment) error
}

// Events queues webhook events for the app inside the caller's transaction.
type Events interface {
	// Publish queues event type typ about p; the same (type, payment) twice is one event.
	Publish(ctx context.Context, tx *sqlx.Tx, typ string, p Payment) error
}

// Event types.
const (
	EventSucceeded = "payment.succeeded"
	EventClosed    = "payment.closed"
	EventDuplicate = "payment.duplicate"
)
