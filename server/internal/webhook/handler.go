package webhook

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/page"
)

// Handler serves PaymentService's ListWebhookDeliveries and RedeliverWebhook for the calling
// app (it implements payment.Deliveries). It needs an app key: its events are the scope.
type Handler struct{ svc *Service }

// NewHandler returns a Handler calling svc.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

// List serves ListWebhookDeliveries.
func (h *Handler) List(ctx context.Context, req *paycenterv1.ListWebhookDeliveriesRequest) (*paycenterv1.ListWebhookDeliveriesResponse, error) {
	caller, err := auth.RequireApp(ctx)
	if err != nil {
		return nil, err
	}
	status, err := StatusFromProto(req.GetStatus())
	if err != nil {
		return nil, err
	}
	evs, next, err := h.svc.List(ctx, caller.AppID, ListFilter{TradeNo: req.GetTradeNo(), Status: status},
		page.Request{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.ListWebhookDeliveriesResponse{NextPageToken: next}
	for _, e := range evs {
		res.Events = append(res.Events, EventProto(e))
	}
	return res, nil
}

// Redeliver serves RedeliverWebhook.
func (h *Handler) Redeliver(ctx context.Context, req *paycenterv1.RedeliverWebhookRequest) (*paycenterv1.RedeliverWebhookResponse, error) {
	caller, err := auth.RequireApp(ctx)
	if err != nil {
		return nil, err
	}
	e, err := h.svc.Redeliver(ctx, caller.AppID, req.GetEventId())
	if err != nil {
		return nil, err
	}
	return &paycenterv1.RedeliverWebhookResponse{Event: EventProto(e)}, nil
}

// EventProto converts an event for the API. An in-flight (SENDING) event is PENDING.
func EventProto(e EventWithAttempts) *paycenterv1.WebhookEvent {
	p := &paycenterv1.WebhookEvent{
		EventId:    e.ID,
		Type:       string(e.Type),
		TradeNo:    e.TradeNo,
		RefundNo:   e.RefundNo,
		Status:     StatusProto(e.Status),
		Payload:    e.Payload,
		CreateTime: timestamppb.New(e.CreatedAt),
	}
	if !e.NextAttemptAt.IsZero() {
		p.NextAttemptTime = timestamppb.New(e.NextAttemptAt)
	}
	for _, a := range e.Attempts {
		p.Attempts = append(p.Attempts, AttemptProto(a))
	}
	return p
}

// AttemptProto converts an attempt for the API.
func AttemptProto(a Attempt) *paycenterv1.WebhookAttempt {
	return &paycenterv1.WebhookAttempt{
		Attempt:     int32(a.Number),
		HttpStatus:  int32(a.HTTPStatus),
		Error:       a.Error,
		DurationMs:  a.Duration.Milliseconds(),
		AttemptTime: timestamppb.New(a.At),
	}
}

// StatusProto converts a status for the API; SENDING is PENDING.
func StatusProto(s Status) paycenterv1.WebhookEventStatus {
	switch s {
	case StatusPending, StatusSending:
		return paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_PENDING
	case StatusDelivered:
		return paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_DELIVERED
	case StatusFailed:
		return paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_FAILED
	}
	return paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_UNSPECIFIED
}

// StatusFromProto converts a status filter: UNSPECIFIED is "" (any status); unknown values
// are INVALID_ARGUMENT on "status".
func StatusFromProto(s paycenterv1.WebhookEventStatus) (Status, error) {
	switch s {
	case paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_UNSPECIFIED:
		return "", nil
	case paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_PENDING:
		return StatusPending, nil
	case paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_DELIVERED:
		return StatusDelivered, nil
	case paycenterv1.WebhookEventStatus_WEBHOOK_EVENT_STATUS_FAILED:
		return StatusFailed, nil
	}
	return "", errs.Invalid("status", "unknown webhook event status %d", int32(s))
}
