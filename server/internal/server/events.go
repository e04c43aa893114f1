package server

import (
	"context"
	"encoding/json"

	"github.com/jmoiron/sqlx"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/paycenter/paycenter/server/internal/payment"
	"github.com/paycenter/paycenter/server/internal/refund"
	"github.com/paycenter/paycenter/server/internal/webhook"
)

// events turns payment and refund state changes into webhook events in the outbox, inside
// the caller's transaction. Event ids are derived from (type, number), so a retried
// transaction or a resent callback can never queue the same event twice.
type events struct {
	outbox   *webhook.Service
	payments *payment.Service
}

var apiJSON = protojson.MarshalOptions{UseProtoNames: true}

func (e events) paymentEvents() payment.Events { return paymentEvents(e) }
func (e events) refundEvents() refund.Events   { return refundEvents(e) }

type paymentEvents events

func (e paymentEvents) Publish(ctx context.Context, tx *sqlx.Tx, typ string, p payment.Payment) error {
	data, err := apiJSON.Marshal(e.payments.Proto(p))
	if err != nil {
		return err
	}
	return e.outbox.Enqueue(ctx, tx, webhook.Event{
		ID: "evt_" + typ + "_" + p.TradeNo, Type: typ, AppID: p.AppID, MerchantID: p.MerchantID,
		TradeNo: p.TradeNo, Data: json.RawMessage(data),
	})
}

type refundEvents events

func (e refundEvents) Publish(ctx context.Context, tx *sqlx.Tx, typ string, r refund.Refund) error {
	data, err := apiJSON.Marshal(refund.Proto(r))
	if err != nil {
		return err
	}
	return e.outbox.Enqueue(ctx, tx, webhook.Event{
		ID: "evt_" + typ + "_" + r.RefundNo, Type: typ, AppID: r.AppID, MerchantID: r.MerchantID,
		TradeNo: r.TradeNo, RefundNo: r.RefundNo, Data: json.RawMessage(data),
	})
}
