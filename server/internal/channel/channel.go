// Package channel is the one interface paycenter uses to reach a payment channel (Alipay,
// WeChat Pay, collector phones), with the types that cross it. Adapters live in
// sub-packages; payment and refund logic never sees a channel's wire format.
package channel

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/paycenter/paycenter/server/internal/merchant"
)

// Method is how the payer pays.
type Method string

// Methods.
const (
	MethodQR     Method = "QR"
	MethodPCPage Method = "PC_PAGE"
	MethodWAP    Method = "WAP"
	MethodApp    Method = "APP"
	MethodJSAPI  Method = "JSAPI"
)

// PrepayRequest asks a channel to open a payment.
type PrepayRequest struct {
	TradeNo   string
	Amount    int64 // minor units
	Currency  string
	Subject   string
	Method    Method
	ExpireAt  time.Time
	ClientIP  string
	ReturnURL string
	OpenID    string // JSAPI payer
	NotifyURL string // where the channel sends its notifications for this payment
}

// PayerAction is what the payer needs; one field is set, by method.
type PayerAction struct {
	QRCode      string `json:"qr_code,omitempty"`
	PayURL      string `json:"pay_url,omitempty"`
	AppParams   string `json:"app_params,omitempty"`
	JSAPIParams string `json:"jsapi_params,omitempty"`
}

// TradeState is a payment's state at the channel.
type TradeState string

// Trade states.
const (
	TradePending   TradeState = "PENDING"   // created, not paid (or unknown to the channel yet)
	TradeSucceeded TradeState = "SUCCEEDED" // paid
	TradeClosed    TradeState = "CLOSED"    // closed or cancelled unpaid (or fully refunded, for some channels)
	TradeFailed    TradeState = "FAILED"    // the channel refused it
)

// Trade is what a channel says about a payment, from a query or a notification.
type Trade struct {
	TradeNo       string
	TransactionID string // the channel's id
	State         TradeState
	Amount        int64 // what the payer paid, minor units
	Currency      string
	PaidAt        time.Time
}

// RefundState is a refund's state at the channel.
type RefundState string

// Refund states.
const (
	RefundPending   RefundState = "PENDING"
	RefundSucceeded RefundState = "SUCCEEDED"
	RefundFailed    RefundState = "FAILED"
)

// RefundRequest asks a channel to return money of a payment.
type RefundRequest struct {
	TradeNo     string
	RefundNo    string
	Amount      int64
	TotalAmount int64 // the payment's amount (WeChat needs it)
	Currency    string
	Reason      string
	NotifyURL   string
}

// Refund is what a channel says about a refund.
type Refund struct {
	TradeNo         string
	RefundNo        string
	ChannelRefundID string
	State           RefundState
	Amount          int64
	FailureReason   string
}

// Notification is a verified channel callback: about a trade or about a refund.
type Notification struct {
	Trade  *Trade
	Refund *Refund
}

// Errors adapters return, so callers can decide without knowing the wire format.
var (
	// ErrTradeNotFound: the channel does not know the trade (e.g. never scanned).
	ErrTradeNotFound = errors.New("trade not found at channel")
	// ErrTradePaid: the trade cannot be closed because it was paid.
	ErrTradePaid = errors.New("trade already paid at channel")
	// ErrBadSignature: a notification or response failed verification.
	ErrBadSignature = errors.New("bad channel signature")
	// ErrUnsupportedMethod: the channel cannot pay with this method.
	ErrUnsupportedMethod = errors.New("method not supported by channel")
)

// Channel is one payment channel. cfg is the app's configuration for it, secrets included.
// Errors other than the sentinels above are transport or channel failures (retry later).
type Channel interface {
	// Prepay opens the payment at the channel and returns what the payer needs.
	Prepay(ctx context.Context, cfg merchant.ChannelConfig, req PrepayRequest) (PayerAction, error)
	// Query asks the channel for a trade's state.
	Query(ctx context.Context, cfg merchant.ChannelConfig, tradeNo string) (Trade, error)
	// Close makes an unpaid trade unpayable (Alipay: close, or cancel for precreate).
	// Closing an unknown trade is not an error; a paid one is ErrTradePaid.
	Close(ctx context.Context, cfg merchant.ChannelConfig, tradeNo string) error
	// Refund asks for money back; the answer may be final or pending.
	Refund(ctx context.Context, cfg merchant.ChannelConfig, req RefundRequest) (Refund, error)
	// QueryRefund asks for a refund's state.
	QueryRefund(ctx context.Context, cfg merchant.ChannelConfig, tradeNo, refundNo string) (Refund, error)
	// ParseNotification verifies a callback's signature with cfg and decodes it. A forged or
	// malformed callback is ErrBadSignature (or another error) and must change nothing.
	ParseNotification(ctx context.Context, cfg merchant.ChannelConfig, r *http.Request) (Notification, error)
	// AckNotification answers the channel in its own format: success, or failure so that it
	// sends again later.
	AckNotification(w http.ResponseWriter, err error)
}
