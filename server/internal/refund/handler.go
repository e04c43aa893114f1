package refund

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/gen/go/paycenter/v1/paycenterv1connect"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/page"
)

// Handler serves RefundService.
type Handler struct{ svc *Service }

var _ paycenterv1connect.RefundServiceHandler = (*Handler)(nil)

// NewHandler returns a Handler.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

func (h *Handler) CreateRefund(ctx context.Context, req *connect.Request[paycenterv1.CreateRefundRequest]) (*connect.Response[paycenterv1.CreateRefundResponse], error) {
	m := req.Msg
	r, err := h.svc.Create(ctx, m.GetTradeNo(), m.GetMerchantRefundNo(), m.GetAmount(), m.GetReason())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.CreateRefundResponse{Refund: Proto(r)}), nil
}

func (h *Handler) GetRefund(ctx context.Context, req *connect.Request[paycenterv1.GetRefundRequest]) (*connect.Response[paycenterv1.GetRefundResponse], error) {
	var by, value string
	switch k := req.Msg.GetKey().(type) {
	case *paycenterv1.GetRefundRequest_RefundNo:
		by, value = "refund_no", k.RefundNo
	case *paycenterv1.GetRefundRequest_MerchantRefundNo:
		by, value = "merchant_refund_no", k.MerchantRefundNo
	}
	r, err := h.svc.Get(ctx, by, value)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.GetRefundResponse{Refund: Proto(r)}), nil
}

func (h *Handler) ListRefunds(ctx context.Context, req *connect.Request[paycenterv1.ListRefundsRequest]) (*connect.Response[paycenterv1.ListRefundsResponse], error) {
	m := req.Msg
	var status Status
	if m.GetStatus() != paycenterv1.RefundStatus_REFUND_STATUS_UNSPECIFIED {
		st, ok := statusFromProto[m.GetStatus()]
		if !ok {
			return nil, errs.Invalid("status", "unknown refund status")
		}
		status = st
	}
	rs, next, err := h.svc.List(ctx, m.GetTradeNo(), status, page.Request{Size: m.GetPageSize(), Token: m.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.ListRefundsResponse{NextPageToken: next}
	for _, r := range rs {
		res.Refunds = append(res.Refunds, Proto(r))
	}
	return connect.NewResponse(res), nil
}

var statusProto = map[Status]paycenterv1.RefundStatus{
	StatusPending:   paycenterv1.RefundStatus_REFUND_STATUS_PENDING,
	StatusSucceeded: paycenterv1.RefundStatus_REFUND_STATUS_SUCCEEDED,
	StatusFailed:    paycenterv1.RefundStatus_REFUND_STATUS_FAILED,
}

var statusFromProto = map[paycenterv1.RefundStatus]Status{
	paycenterv1.RefundStatus_REFUND_STATUS_PENDING:   StatusPending,
	paycenterv1.RefundStatus_REFUND_STATUS_SUCCEEDED: StatusSucceeded,
	paycenterv1.RefundStatus_REFUND_STATUS_FAILED:    StatusFailed,
}

// Proto converts a refund for the API (and webhook payloads).
func Proto(r Refund) *paycenterv1.Refund {
	out := &paycenterv1.Refund{
		RefundNo: r.RefundNo, MerchantRefundNo: r.MerchantRefundNo, TradeNo: r.TradeNo, ChannelRefundId: r.ChannelRefundID,
		Amount: r.Amount, Currency: r.Currency, Reason: r.Reason, Status: statusProto[r.Status],
		FailureReason: r.FailureReason, CreateTime: timestamppb.New(r.CreatedAt),
	}
	if r.SucceededAt != nil {
		out.SucceedTime = timestamppb.New(*r.SucceededAt)
	}
	return out
}
