// Package webhook is paycenter's outbox and webhook dispatcher. Domains enqueue events inside
// their own database transaction (Enqueue), so a state change and its event commit together;
// Run delivers them as signed JSON POSTs to each app's webhook URL, retries on a schedule
// spanning about a day, records every attempt, and can be asked to redeliver.
//
// Delivery is at least once: consumers dedupe by the event id (body "id" and the
// Paycenter-Event-Id header) and verify the Paycenter-Signature header with Verify. Events of
// one app are not ordered relative to each other.
//
// webhook is a leaf: it imports no domain package and learns where to send through Targets.
package webhook

import (
	"context"
	"encoding/json"
	"time"
)

// Event types: what happened.
const (
	PaymentSucceeded = "payment.succeeded"
	PaymentClosed    = "payment.closed"
	PaymentDuplicate = "payment.duplicate"
	RefundSucceeded  = "refund.succeeded"
	RefundFailed     = "refund.failed"
)

func validType(t string) bool {
	switch t {
	case PaymentSucceeded, PaymentClosed, PaymentDuplicate, RefundSucceeded, RefundFailed:
		return true
	}
	return false
}

// Status is where an event's delivery is.
type Status string

// Event states.
const (
	// StatusPending: waiting for its next attempt.
	StatusPending Status = "PENDING"
	// StatusSending: an attempt is in flight. The API shows it as PENDING, and a PENDING
	// filter includes it.
	StatusSending Status = "SENDING"
	// StatusDelivered: the app answered 2xx.
	StatusDelivered Status = "DELIVERED"
	// StatusFailed: every scheduled attempt failed, or the app has no webhook URL.
	StatusFailed Status = "FAILED"
)

// Event is one thing to tell an app about.
type Event struct {
	// ID is stable and unique per merchant: enqueuing an ID again is a no-op, so derive it
	// from what happened (e.g. "evt_payment.succeeded_<trade_no>") when a transaction may be
	// retried. At most 128 characters.
	ID string
	// Type is one of the event types above.
	Type       string
	AppID      string
	MerchantID string
	TradeNo    string
	RefundNo   string
	// Data is the object the event is about (the payment or refund as JSON); it becomes the
	// body's "data". Empty means null.
	Data json.RawMessage
}

// Attempt is one delivery attempt.
type Attempt struct {
	Number     int
	At         time.Time
	Result     Result
	HTTPStatus int // 0 when no response was received
	Error      string
	Duration   time.Duration
}

// Result is an attempt's outcome; it is also the label of paycenter_webhook_attempts_total.
type Result string

// Attempt outcomes.
const (
	// ResultSending: in flight, or the dispatcher stopped before it recorded the outcome.
	ResultSending      Result = "sending"
	ResultDelivered    Result = "delivered"
	ResultHTTPError    Result = "http_error"    // the app answered, but not 2xx
	ResultNetworkError Result = "network_error" // no answer: refused, reset, timeout, bad URL
	ResultNoURL        Result = "no_url"        // the app has no webhook URL: nothing was sent
	ResultTargetError  Result = "target_error"  // the app's URL or secret could not be read
)

// EventWithAttempts is an event as the app sees it.
type EventWithAttempts struct {
	ID         string
	Type       string
	AppID      string
	MerchantID string
	TradeNo    string
	RefundNo   string
	Status     Status
	// Payload is the exact JSON body POSTed.
	Payload string
	// NextAttemptAt is when the next attempt is due (pending) or when an in-flight attempt
	// is given up on (sending); zero otherwise.
	NextAttemptAt time.Time
	CreatedAt     time.Time
	// Attempts, oldest first.
	Attempts []Attempt
}

// ListFilter narrows List; zero fields match everything.
type ListFilter struct {
	TradeNo string
	// Status PENDING also matches SENDING.
	Status Status
}

// Targets tells where an app's webhooks go; merchant.Service implements it.
type Targets interface {
	// WebhookTarget returns the app's webhook URL (empty: the app takes no webhooks) and
	// signing secret, or an error (errs.ErrNotFound for an unknown app).
	WebhookTarget(ctx context.Context, appID string) (url, secret string, err error)
}

// DefaultSchedule is the wait after each failed attempt, modelled on WeChat Pay's
// notification schedule: 15 retries over about 24 hours, 16 attempts in all.
var DefaultSchedule = []time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute,
	3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}
