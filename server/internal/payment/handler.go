package payment

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/gen/go/paycenter/v1/paycenterv1connect"
	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/page"
)

// Deliveries serves the webhook RPCs of PaymentService; the webhook package implements it.
type Deliveries interface {
	List(ctx context.Context, req *paycenterv1.ListWebhookDeliveriesRequest) (*paycenterv1.ListWebhookDeliveriesResponse, error)
	Redeliver(ctx context.Context, req *paycenterv1.RedeliverWebhookRequest) (*paycenterv1.RedeliverWebhookResponse, error)
}

// Handler serves PaymentService.
type Handler struct {
	svc        *Service
	deliveries Deliveries
}

var _ paycenterv1connect.PaymentServiceHandler = (*Handler)(nil)

// NewHandler returns a Handler.
func NewHandler(svc *Service, deliveries Deliveries) *Handler {
	return &Handler{svc: svc, deliveries: deliveries}
}

func (h *Handler) CreatePayment(ctx context.Context, req *connect.Request[paycenterv1.CreatePaymentRequest]) (*connect.Response[paycenterv1.CreatePaymentResponse], error) {
	m := req.Msg
	ch, err := merchant.ChannelFromProto(m.GetChannel())
	if err != nil {
		return nil, err
	}
	method, err := MethodFromProto(m.GetMethod())
	if err != nil {
		return nil, err
	}
	p, err := h.svc.Create(ctx, CreateRequest{
		MerchantOrderNo: m.GetMerchantOrderNo(), Amount: m.GetAmount(), Currency: m.GetCurrency(), Subject: m.GetSubject(),
		Channel: ch, Method: method, ExpireSeconds: m.GetExpireSeconds(), ClientIP: m.GetClientIp(),
		ReturnURL: m.GetReturnUrl(), PayerOpenID: m.GetPayerOpenid(), Metadata: m.GetMetadata(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.CreatePaymentResponse{Payment: h.svc.Proto(p)}), nil
}

func (h *Handler) GetPayment(ctx context.Context, req *connect.Request[paycenterv1.GetPaymentRequest]) (*connect.Response[paycenterv1.GetPaymentResponse], error) {
	var by, value string
	switch k := req.Msg.GetKey().(type) {
	case *paycenterv1.GetPaymentRequest_TradeNo:
		by, value = "trade_no", k.TradeNo
	case *paycenterv1.GetPaymentRequest_MerchantOrderNo:
		by, value = "merchant_order_no", k.MerchantOrderNo
	case *paycenterv1.GetPaymentRequest_ChannelTransactionId:
		by, value = "channel_transaction_id", k.ChannelTransactionId
	}
	p, err := h.svc.Get(ctx, by, value)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.GetPaymentResponse{Payment: h.svc.Proto(p)}), nil
}

func (h *Handler) ListPayments(ctx context.Context, req *connect.Request[paycenterv1.ListPaymentsRequest]) (*connect.Response[paycenterv1.ListPaymentsResponse], error) {
	m := req.Msg
	var f Filter
	if m.GetStatus() != paycenterv1.PaymentStatus_PAYMENT_STATUS_UNSPECIFIED {
		st, ok := statusFromProto[m.GetStatus()]
		if !ok {
			return nil, errs.Invalid("status", "unknown payment status")
		}
		f.Status = st
	}
	if m.GetChannel() != paycenterv1.Channel_CHANNEL_UNSPECIFIED {
		ch, err := merchant.ChannelFromProto(m.GetChannel())
		if err != nil {
			return nil, err
		}
		f.Channel = ch
	}
	f.MerchantOrderNo = m.GetMerchantOrderNo()
	if m.StartTime != nil {
		f.Start = m.GetStartTime().AsTime()
	}
	if m.EndTime != nil {
		f.End = m.GetEndTime().AsTime()
	}
	ps, next, err := h.svc.List(ctx, f, page.Request{Size: m.GetPageSize(), Token: m.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.ListPaymentsResponse{NextPageToken: next}
	for _, p := range ps {
		res.Payments = append(res.Payments, h.svc.Proto(p))
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) ClosePayment(ctx context.Context, req *connect.Request[paycenterv1.ClosePaymentRequest]) (*connect.Response[paycenterv1.ClosePaymentResponse], error) {
	p, err := h.svc.Close(ctx, req.Msg.GetTradeNo())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.ClosePaymentResponse{Payment: h.svc.Proto(p)}), nil
}

func (h *Handler) WatchPayment(ctx context.Context, req *connect.Request[paycenterv1.WatchPaymentRequest], stream *connect.ServerStream[paycenterv1.WatchPaymentResponse]) error {
	return h.svc.Watch(ctx, req.Msg.GetTradeNo(), req.Msg.GetCashierToken(), func(p Payment) error {
		return stream.Send(&paycenterv1.WatchPaymentResponse{Payment: h.svc.Proto(p)})
	})
}

func (h *Handler) ListWebhookDeliveries(ctx context.Context, req *connect.Request[paycenterv1.ListWebhookDeliveriesRequest]) (*connect.Response[paycenterv1.ListWebhookDeliveriesResponse], error) {
	if h.deliveries == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, nil)
	}
	res, err := h.deliveries.List(ctx, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) RedeliverWebhook(ctx context.Context, req *connect.Request[paycenterv1.RedeliverWebhookRequest]) (*connect.Response[paycenterv1.RedeliverWebhookResponse], error) {
	if h.deliveries == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, nil)
	}
	res, err := h.deliveries.Redeliver(ctx, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(res), nil
}

// MethodFromProto converts a proto method, rejecting unspecified and unknown values.
func MethodFromProto(m paycenterv1.PaymentMethod) (channel.Method, error) {
	for method, pm := range methodProto {
		if pm == m {
			return method, nil
		}
	}
	return "", errs.Invalid("method", "must be one of PAYMENT_METHOD_QR, _PC_PAGE, _WAP, _APP, _JSAPI")
}

var methodProto = map[channel.Method]paycenterv1.PaymentMethod{
	channel.MethodQR:     paycenterv1.PaymentMethod_PAYMENT_METHOD_QR,
	channel.MethodPCPage: paycenterv1.PaymentMethod_PAYMENT_METHOD_PC_PAGE,
	channel.MethodWAP:    paycenterv1.PaymentMethod_PAYMENT_METHOD_WAP,
	channel.MethodApp:    paycenterv1.PaymentMethod_PAYMENT_METHOD_APP,
	channel.MethodJSAPI:  paycenterv1.PaymentMethod_PAYMENT_METHOD_JSAPI,
}

var statusProto = map[Status]paycenterv1.PaymentStatus{
	StatusPending:   paycenterv1.PaymentStatus_PAYMENT_STATUS_PENDING,
	StatusSucceeded: paycenterv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED,
	StatusClosed:    paycenterv1.PaymentStatus_PAYMENT_STATUS_CLOSED,
	StatusFailed:    paycenterv1.PaymentStatus_PAYMENT_STATUS_FAILED,
}

var statusFromProto = func() map[paycenterv1.PaymentStatus]Status {
	m := map[paycenterv1.PaymentStatus]Status{}
	for k, v := range statusProto {
		m[v] = k
	}
	return m
}()

// Proto converts a payment for the API.
func (s *Service) Proto(p Payment) *paycenterv1.Payment {
	out := &paycenterv1.Payment{
		TradeNo: p.TradeNo, MerchantOrderNo: p.MerchantOrderNo, ChannelTransactionId: p.TransactionID,
		AppId: p.AppID, MerchantId: p.MerchantID, Amount: p.Amount, Currency: p.Currency, Subject: p.Subject,
		Channel: merchant.ChannelProto(p.Channel), Method: methodProto[p.Method], Status: statusProto[p.Status],
		RefundedAmount: p.RefundedAmount, CashierUrl: s.CashierURL(p), ClientIp: p.ClientIP, ReturnUrl: p.ReturnURL,
		Metadata: p.Metadata.V, ExpireTime: timestamppb.New(p.ExpireAt), CreateTime: timestamppb.New(p.CreatedAt),
		Duplicate: p.Duplicate,
		PayerAction: &paycenterv1.PayerAction{
			QrCode: p.PayerAction.V.QRCode, PayUrl: p.PayerAction.V.PayURL,
			AppParams: p.PayerAction.V.AppParams, JsapiParams: p.PayerAction.V.JSAPIParams,
		},
	}
	if p.PaidAt != nil {
		out.PaidTime = timestamppb.New(*p.PaidAt)
	}
	if p.ClosedAt != nil {
		out.CloseTime = timestamppb.New(*p.ClosedAt)
	}
	return out
}
