package servertest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	paycenter "github.com/paycenter/paycenter/clients/go"
	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/sandbox"
)

// Sandbox is both sandbox channels on a local HTTP server, with notification retries
// compressed to fractions of a second.
type Sandbox struct {
	*sandbox.Pair
	URL string
	n   atomic.Int32
}

// StartSandbox runs the sandboxes until the test ends.
func StartSandbox(tb testing.TB) *Sandbox {
	tb.Helper()
	pair, err := sandbox.NewPair(sandbox.Options{
		RetrySchedule: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
			800 * time.Millisecond, time.Second, 2 * time.Second},
		ReorderHold: 300 * time.Millisecond,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(pair)
	tb.Cleanup(func() { pair.Close(); srv.Close() })
	return &Sandbox{Pair: pair, URL: srv.URL}
}

// Tenant is a merchant with one app whose Alipay, WeChat Pay and collector channels are
// configured on the sandbox.
type Tenant struct {
	MerchantID    string
	AppID         string
	APIKey        string
	WebhookSecret string
	Client        *paycenter.Client
	Credentials   sandbox.Credentials
}

// NewTenant creates a merchant and an app (webhookURL may be empty) through the API and
// configures its channels on sb.
func (e *Env) NewTenant(tb testing.TB, sb *Sandbox, webhookURL string) Tenant {
	tb.Helper()
	ctx := context.Background()
	admin := e.Admin()
	n := int(sb.n.Add(1))
	m, err := admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: fmt.Sprintf("Merchant %d", n)}))
	if err != nil {
		tb.Fatal(err)
	}
	app, err := admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{
		MerchantId: m.Msg.Merchant.MerchantId, Name: "Billing", WebhookUrl: webhookURL}))
	if err != nil {
		tb.Fatal(err)
	}
	creds, err := sb.NewCredentials(n)
	if err != nil {
		tb.Fatal(err)
	}
	appID := app.Msg.App.AppId
	for _, req := range []*paycenterv1.SetChannelConfigRequest{
		{AppId: appID, Config: &paycenterv1.SetChannelConfigRequest_Alipay{Alipay: &paycenterv1.AlipayConfig{
			AlipayAppId: creds.Alipay.AppID, AppPrivateKeyPem: creds.Alipay.PrivateKeyPEM,
			AlipayPublicKeyPem: creds.Alipay.AlipayPublicKeyPEM, GatewayUrl: sb.URL + sandbox.AlipayGatewayPath}}},
		{AppId: appID, Config: &paycenterv1.SetChannelConfigRequest_Wechatpay{Wechatpay: &paycenterv1.WechatPayConfig{
			MchId: creds.WechatPay.MchID, WechatAppId: fmt.Sprintf("wx%016d", n), MerchantCertificateSerial: creds.WechatPay.SerialNo,
			MerchantPrivateKeyPem: creds.WechatPay.PrivateKeyPEM, ApiV3Key: creds.WechatPay.APIv3Key,
			PlatformPublicKeyPem: creds.WechatPay.PlatformPublicKeyPEM, PlatformPublicKeyId: creds.WechatPay.PlatformPublicKeyID,
			ApiBaseUrl: sb.URL}}},
		{AppId: appID, Config: &paycenterv1.SetChannelConfigRequest_Collector{Collector: &paycenterv1.CollectorConfig{Enabled: true}}},
	} {
		if _, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(req)); err != nil {
			tb.Fatal(err)
		}
	}
	return Tenant{MerchantID: m.Msg.Merchant.MerchantId, AppID: appID, APIKey: app.Msg.ApiKey,
		WebhookSecret: app.Msg.WebhookSecret, Client: e.Client(app.Msg.ApiKey), Credentials: creds}
}
