package merchant

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/gen/go/paycenter/v1/paycenterv1connect"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/page"
)

// Handler serves MerchantService: it translates proto to domain and back.
type Handler struct {
	svc *Service
}

var _ paycenterv1connect.MerchantServiceHandler = (*Handler)(nil)

// NewHandler returns a Handler calling svc.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

func (h *Handler) CreateMerchant(ctx context.Context, req *connect.Request[paycenterv1.CreateMerchantRequest]) (*connect.Response[paycenterv1.CreateMerchantResponse], error) {
	m, err := h.svc.CreateMerchant(ctx, req.Msg.GetName(), req.Msg.GetContactEmail())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.CreateMerchantResponse{Merchant: merchantProto(m)}), nil
}

func (h *Handler) GetMerchant(ctx context.Context, req *connect.Request[paycenterv1.GetMerchantRequest]) (*connect.Response[paycenterv1.GetMerchantResponse], error) {
	m, err := h.svc.Merchant(ctx, req.Msg.GetMerchantId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.GetMerchantResponse{Merchant: merchantProto(m)}), nil
}

func (h *Handler) ListMerchants(ctx context.Context, req *connect.Request[paycenterv1.ListMerchantsRequest]) (*connect.Response[paycenterv1.ListMerchantsResponse], error) {
	ms, next, err := h.svc.Merchants(ctx, page.Request{Size: req.Msg.GetPageSize(), Token: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.ListMerchantsResponse{NextPageToken: next}
	for _, m := range ms {
		res.Merchants = append(res.Merchants, merchantProto(m))
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) UpdateMerchant(ctx context.Context, req *connect.Request[paycenterv1.UpdateMerchantRequest]) (*connect.Response[paycenterv1.UpdateMerchantResponse], error) {
	m, err := h.svc.UpdateMerchant(ctx, req.Msg.GetMerchantId(), MerchantUpdate{Name: req.Msg.Name, ContactEmail: req.Msg.ContactEmail})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.UpdateMerchantResponse{Merchant: merchantProto(m)}), nil
}

func (h *Handler) FreezeMerchant(ctx context.Context, req *connect.Request[paycenterv1.FreezeMerchantRequest]) (*connect.Response[paycenterv1.FreezeMerchantResponse], error) {
	m, err := h.svc.Freeze(ctx, req.Msg.GetMerchantId(), req.Msg.GetReason())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.FreezeMerchantResponse{Merchant: merchantProto(m)}), nil
}

func (h *Handler) UnfreezeMerchant(ctx context.Context, req *connect.Request[paycenterv1.UnfreezeMerchantRequest]) (*connect.Response[paycenterv1.UnfreezeMerchantResponse], error) {
	m, err := h.svc.Unfreeze(ctx, req.Msg.GetMerchantId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.UnfreezeMerchantResponse{Merchant: merchantProto(m)}), nil
}

func (h *Handler) CreateApp(ctx context.Context, req *connect.Request[paycenterv1.CreateAppRequest]) (*connect.Response[paycenterv1.CreateAppResponse], error) {
	a, err := h.svc.CreateApp(ctx, req.Msg.GetMerchantId(), req.Msg.GetName(), req.Msg.GetWebhookUrl())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.CreateAppResponse{App: appProto(a.App), ApiKey: a.APIKey, WebhookSecret: a.WebhookSecret}), nil
}

func (h *Handler) GetApp(ctx context.Context, req *connect.Request[paycenterv1.GetAppRequest]) (*connect.Response[paycenterv1.GetAppResponse], error) {
	a, err := h.svc.App(ctx, req.Msg.GetAppId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.GetAppResponse{App: appProto(a)}), nil
}

func (h *Handler) ListApps(ctx context.Context, req *connect.Request[paycenterv1.ListAppsRequest]) (*connect.Response[paycenterv1.ListAppsResponse], error) {
	as, next, err := h.svc.Apps(ctx, req.Msg.GetMerchantId(), page.Request{Size: req.Msg.GetPageSize(), Token: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.ListAppsResponse{NextPageToken: next}
	for _, a := range as {
		res.Apps = append(res.Apps, appProto(a))
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) UpdateApp(ctx context.Context, req *connect.Request[paycenterv1.UpdateAppRequest]) (*connect.Response[paycenterv1.UpdateAppResponse], error) {
	a, err := h.svc.UpdateApp(ctx, req.Msg.GetAppId(), AppUpdate{Name: req.Msg.Name, WebhookURL: req.Msg.WebhookUrl})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.UpdateAppResponse{App: appProto(a)}), nil
}

func (h *Handler) RotateAppKey(ctx context.Context, req *connect.Request[paycenterv1.RotateAppKeyRequest]) (*connect.Response[paycenterv1.RotateAppKeyResponse], error) {
	a, key, err := h.svc.RotateKey(ctx, req.Msg.GetAppId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.RotateAppKeyResponse{App: appProto(a), ApiKey: key}), nil
}

func (h *Handler) RotateWebhookSecret(ctx context.Context, req *connect.Request[paycenterv1.RotateWebhookSecretRequest]) (*connect.Response[paycenterv1.RotateWebhookSecretResponse], error) {
	a, secret, err := h.svc.RotateWebhookSecret(ctx, req.Msg.GetAppId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.RotateWebhookSecretResponse{App: appProto(a), WebhookSecret: secret}), nil
}

func (h *Handler) SetChannelConfig(ctx context.Context, req *connect.Request[paycenterv1.SetChannelConfigRequest]) (*connect.Response[paycenterv1.SetChannelConfigResponse], error) {
	var (
		alipay    *AlipaySettings
		wechat    *WechatPaySettings
		collector bool
	)
	switch c := req.Msg.GetConfig().(type) {
	case *paycenterv1.SetChannelConfigRequest_Alipay:
		alipay = &AlipaySettings{
			AlipayAppID:        c.Alipay.GetAlipayAppId(),
			AppPrivateKeyPEM:   c.Alipay.GetAppPrivateKeyPem(),
			AlipayPublicKeyPEM: c.Alipay.GetAlipayPublicKeyPem(),
			GatewayURL:         c.Alipay.GetGatewayUrl(),
		}
	case *paycenterv1.SetChannelConfigRequest_Wechatpay:
		wechat = &WechatPaySettings{
			MchID:                     c.Wechatpay.GetMchId(),
			WechatAppID:               c.Wechatpay.GetWechatAppId(),
			MerchantCertificateSerial: c.Wechatpay.GetMerchantCertificateSerial(),
			MerchantPrivateKeyPEM:     c.Wechatpay.GetMerchantPrivateKeyPem(),
			APIv3Key:                  c.Wechatpay.GetApiV3Key(),
			PlatformPublicKeyPEM:      c.Wechatpay.GetPlatformPublicKeyPem(),
			PlatformPublicKeyID:       c.Wechatpay.GetPlatformPublicKeyId(),
			APIBaseURL:                c.Wechatpay.GetApiBaseUrl(),
		}
	case *paycenterv1.SetChannelConfigRequest_Collector:
		collector = c.Collector.GetEnabled()
	}
	cfg, err := h.svc.SetChannel(ctx, req.Msg.GetAppId(), alipay, wechat, collector)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.SetChannelConfigResponse{ChannelConfig: channelProto(cfg)}), nil
}

func (h *Handler) ListChannelConfigs(ctx context.Context, req *connect.Request[paycenterv1.ListChannelConfigsRequest]) (*connect.Response[paycenterv1.ListChannelConfigsResponse], error) {
	cs, next, err := h.svc.Channels(ctx, req.Msg.GetAppId(), page.Request{Size: req.Msg.GetPageSize(), Token: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.ListChannelConfigsResponse{NextPageToken: next}
	for _, c := range cs {
		res.ChannelConfigs = append(res.ChannelConfigs, channelProto(c))
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) DisableChannel(ctx context.Context, req *connect.Request[paycenterv1.DisableChannelRequest]) (*connect.Response[paycenterv1.DisableChannelResponse], error) {
	ch, err := ChannelFromProto(req.Msg.GetChannel())
	if err != nil {
		return nil, err
	}
	cfg, err := h.svc.DisableChannel(ctx, req.Msg.GetAppId(), ch)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.DisableChannelResponse{ChannelConfig: channelProto(cfg)}), nil
}

// ChannelFromProto converts a proto channel, rejecting unspecified and unknown values.
func ChannelFromProto(c paycenterv1.Channel) (Channel, error) {
	switch c {
	case paycenterv1.Channel_CHANNEL_ALIPAY:
		return ChannelAlipay, nil
	case paycenterv1.Channel_CHANNEL_WECHATPAY:
		return ChannelWechatPay, nil
	case paycenterv1.Channel_CHANNEL_COLLECTOR:
		return ChannelCollector, nil
	}
	return "", errs.Invalid("channel", "must be CHANNEL_ALIPAY, CHANNEL_WECHATPAY or CHANNEL_COLLECTOR")
}

// ChannelProto converts a domain channel to proto.
func ChannelProto(c Channel) paycenterv1.Channel {
	switch c {
	case ChannelAlipay:
		return paycenterv1.Channel_CHANNEL_ALIPAY
	case ChannelWechatPay:
		return paycenterv1.Channel_CHANNEL_WECHATPAY
	case ChannelCollector:
		return paycenterv1.Channel_CHANNEL_COLLECTOR
	}
	return paycenterv1.Channel_CHANNEL_UNSPECIFIED
}

func merchantProto(m Merchant) *paycenterv1.Merchant {
	status := paycenterv1.MerchantStatus_MERCHANT_STATUS_ACTIVE
	if m.Status == StatusFrozen {
		status = paycenterv1.MerchantStatus_MERCHANT_STATUS_FROZEN
	}
	return &paycenterv1.Merchant{
		MerchantId:   m.ID,
		Name:         m.Name,
		ContactEmail: m.ContactEmail,
		Status:       status,
		FreezeReason: m.FreezeReason,
		CreateTime:   timestamppb.New(m.CreatedAt),
		UpdateTime:   timestamppb.New(m.UpdatedAt),
	}
}

func appProto(a App) *paycenterv1.App {
	return &paycenterv1.App{
		AppId:        a.ID,
		MerchantId:   a.MerchantID,
		Name:         a.Name,
		WebhookUrl:   a.WebhookURL,
		ApiKeyPrefix: a.APIKeyPrefix,
		CreateTime:   timestamppb.New(a.CreatedAt),
		UpdateTime:   timestamppb.New(a.UpdatedAt),
	}
}

func channelProto(c ChannelConfig) *paycenterv1.ChannelConfig {
	out := &paycenterv1.ChannelConfig{
		AppId:      c.AppID,
		Channel:    ChannelProto(c.Channel),
		Enabled:    c.Enabled,
		CreateTime: timestamppb.New(c.CreatedAt),
		UpdateTime: timestamppb.New(c.UpdatedAt),
	}
	switch {
	case c.Alipay != nil:
		out.Details = &paycenterv1.ChannelConfig_Alipay{Alipay: &paycenterv1.AlipayConfigInfo{
			AlipayAppId: c.Alipay.AlipayAppID,
			GatewayUrl:  c.Alipay.GatewayURL,
		}}
	case c.WechatPay != nil:
		out.Details = &paycenterv1.ChannelConfig_Wechatpay{Wechatpay: &paycenterv1.WechatPayConfigInfo{
			MchId:                     c.WechatPay.MchID,
			WechatAppId:               c.WechatPay.WechatAppID,
			MerchantCertificateSerial: c.WechatPay.MerchantCertificateSerial,
			PlatformPublicKeyId:       c.WechatPay.PlatformPublicKeyID,
			ApiBaseUrl:                c.WechatPay.APIBaseURL,
		}}
	}
	return out
}
