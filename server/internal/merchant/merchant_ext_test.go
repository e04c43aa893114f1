package merchant_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	paycenter "github.com/paycenter/paycenter/clients/go"
	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
	"github.com/paycenter/paycenter/server/internal/server/servertest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	keysOnce sync.Once
	privPEM  string // an RSA private key, PKCS#8 PEM
	pubPEM   string // its public key, PKIX PEM
)

func testKeys(t *testing.T) (string, string) {
	keysOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		privPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		pubPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	})
	return privPEM, pubPEM
}

const apiV3Key = "0123456789abcdef0123456789ABCDEF"

func alipayConfig(t *testing.T) *paycenterv1.AlipayConfig {
	priv, pub := testKeys(t)
	return &paycenterv1.AlipayConfig{AlipayAppId: "2021000000000001", AppPrivateKeyPem: priv, AlipayPublicKeyPem: pub, GatewayUrl: "http://127.0.0.1:9/gateway.do"}
}

func wechatConfig(t *testing.T) *paycenterv1.WechatPayConfig {
	priv, pub := testKeys(t)
	return &paycenterv1.WechatPayConfig{MchId: "1900000001", WechatAppId: "wx0123456789", MerchantCertificateSerial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
		MerchantPrivateKeyPem: priv, ApiV3Key: apiV3Key, PlatformPublicKeyPem: pub, PlatformPublicKeyId: "PUB_KEY_ID_0001", ApiBaseUrl: "http://127.0.0.1:9"}
}

// must(call())(t) fails the test when call returned an error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantCode(t *testing.T, err error, code connect.Code, contains string) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("got %v, want %v", err, code)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not mention %q", err, contains)
	}
}

func TestMerchantAndAppLifecycle(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	ctx := context.Background()

	m := must(admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: "Green Court Property", ContactEmail: "ops@greencourt.example"})))(t).Msg.Merchant
	if m.Status != paycenterv1.MerchantStatus_MERCHANT_STATUS_ACTIVE || !strings.HasPrefix(m.MerchantId, "mch_") {
		t.Fatalf("created merchant: %v", m)
	}
	for i := 0; i < 2; i++ {
		must(admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: "Other " + string(rune('A'+i))})))(t)
	}
	// Pagination walks all three merchants, one page at a time, without repeats.
	var seen []string
	token := ""
	for {
		res := must(admin.Merchants.ListMerchants(ctx, connect.NewRequest(&paycenterv1.ListMerchantsRequest{PageSize: 1, PageToken: token})))(t).Msg
		for _, x := range res.Merchants {
			seen = append(seen, x.MerchantId)
		}
		if token = res.NextPageToken; token == "" {
			break
		}
	}
	if len(seen) != 3 || seen[0] != m.MerchantId {
		t.Fatalf("listed %v, want 3 merchants starting with %s", seen, m.MerchantId)
	}

	newName := "Green Court Holdings"
	m = must(admin.Merchants.UpdateMerchant(ctx, connect.NewRequest(&paycenterv1.UpdateMerchantRequest{MerchantId: m.MerchantId, Name: &newName})))(t).Msg.Merchant
	if m.Name != newName || m.ContactEmail != "ops@greencourt.example" {
		t.Fatalf("update changed unset fields or missed set ones: %v", m)
	}
	m = must(admin.Merchants.FreezeMerchant(ctx, connect.NewRequest(&paycenterv1.FreezeMerchantRequest{MerchantId: m.MerchantId, Reason: "KYC review"})))(t).Msg.Merchant
	if m.Status != paycenterv1.MerchantStatus_MERCHANT_STATUS_FROZEN || m.FreezeReason != "KYC review" {
		t.Fatalf("frozen merchant: %v", m)
	}
	again := must(admin.Merchants.FreezeMerchant(ctx, connect.NewRequest(&paycenterv1.FreezeMerchantRequest{MerchantId: m.MerchantId, Reason: "other"})))(t).Msg.Merchant
	if again.FreezeReason != "KYC review" {
		t.Fatalf("freezing twice changed the merchant: %v", again)
	}
	m = must(admin.Merchants.UnfreezeMerchant(ctx, connect.NewRequest(&paycenterv1.UnfreezeMerchantRequest{MerchantId: m.MerchantId})))(t).Msg.Merchant
	if m.Status != paycenterv1.MerchantStatus_MERCHANT_STATUS_ACTIVE || m.FreezeReason != "" {
		t.Fatalf("unfrozen merchant: %v", m)
	}

	created := must(admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{MerchantId: m.MerchantId, Name: "Billing", WebhookUrl: "https://billing.example/hooks"})))(t).Msg
	if !strings.HasPrefix(created.ApiKey, created.App.ApiKeyPrefix) || !strings.HasPrefix(created.WebhookSecret, "whsec_") {
		t.Fatalf("created app: %v", created)
	}
	app := created.App
	got := must(admin.Merchants.GetApp(ctx, connect.NewRequest(&paycenterv1.GetAppRequest{AppId: app.AppId})))(t).Msg.App
	if !proto.Equal(got, app) {
		t.Fatalf("GetApp = %v, want %v", got, app)
	}
	empty := ""
	app = must(admin.Merchants.UpdateApp(ctx, connect.NewRequest(&paycenterv1.UpdateAppRequest{AppId: app.AppId, WebhookUrl: &empty})))(t).Msg.App
	if app.WebhookUrl != "" || app.Name != "Billing" {
		t.Fatalf("updated app: %v", app)
	}
	apps := must(admin.Merchants.ListApps(ctx, connect.NewRequest(&paycenterv1.ListAppsRequest{MerchantId: m.MerchantId})))(t).Msg.Apps
	if len(apps) != 1 || apps[0].AppId != app.AppId {
		t.Fatalf("ListApps = %v", apps)
	}

	// The app key works for its own merchant, until it is rotated.
	oldKey := env.Client(created.ApiKey)
	must(oldKey.Merchants.GetMerchant(ctx, connect.NewRequest(&paycenterv1.GetMerchantRequest{MerchantId: m.MerchantId})))(t)
	rotated := must(admin.Merchants.RotateAppKey(ctx, connect.NewRequest(&paycenterv1.RotateAppKeyRequest{AppId: app.AppId})))(t).Msg
	if rotated.ApiKey == created.ApiKey {
		t.Fatal("rotation returned the same key")
	}
	_, err := oldKey.Merchants.GetMerchant(ctx, connect.NewRequest(&paycenterv1.GetMerchantRequest{MerchantId: m.MerchantId}))
	wantCode(t, err, connect.CodeUnauthenticated, "")
	must(env.Client(rotated.ApiKey).Merchants.GetApp(ctx, connect.NewRequest(&paycenterv1.GetAppRequest{AppId: app.AppId})))(t)

	secret := must(admin.Merchants.RotateWebhookSecret(ctx, connect.NewRequest(&paycenterv1.RotateWebhookSecretRequest{AppId: app.AppId})))(t).Msg.WebhookSecret
	if secret == created.WebhookSecret {
		t.Fatal("webhook secret not rotated")
	}
	if stored := must(env.Server.Merchants.WebhookSecret(ctx, app.AppId))(t); stored != secret {
		t.Fatalf("stored webhook secret %q, want the rotated one", stored)
	}

	// Channel configurations: set all three, list them, disable one.
	for _, req := range []*paycenterv1.SetChannelConfigRequest{
		{AppId: app.AppId, Config: &paycenterv1.SetChannelConfigRequest_Alipay{Alipay: alipayConfig(t)}},
		{AppId: app.AppId, Config: &paycenterv1.SetChannelConfigRequest_Wechatpay{Wechatpay: wechatConfig(t)}},
		{AppId: app.AppId, Config: &paycenterv1.SetChannelConfigRequest_Collector{Collector: &paycenterv1.CollectorConfig{Enabled: true}}},
	} {
		cfg := must(admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(req)))(t).Msg.ChannelConfig
		if !cfg.Enabled {
			t.Fatalf("set config not enabled: %v", cfg)
		}
	}
	configs := must(admin.Merchants.ListChannelConfigs(ctx, connect.NewRequest(&paycenterv1.ListChannelConfigsRequest{AppId: app.AppId})))(t).Msg.ChannelConfigs
	if len(configs) != 3 || configs[0].GetAlipay().GetAlipayAppId() != "2021000000000001" || configs[2].GetWechatpay().GetMchId() != "1900000001" {
		t.Fatalf("ListChannelConfigs = %v", configs)
	}
	disabled := must(admin.Merchants.DisableChannel(ctx, connect.NewRequest(&paycenterv1.DisableChannelRequest{AppId: app.AppId, Channel: paycenterv1.Channel_CHANNEL_WECHATPAY})))(t).Msg.ChannelConfig
	if disabled.Enabled || disabled.GetWechatpay().GetMchId() != "1900000001" {
		t.Fatalf("disabled config: %v", disabled)
	}
	// Setting a configuration again replaces it and enables it.
	again2 := must(admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(&paycenterv1.SetChannelConfigRequest{AppId: app.AppId, Config: &paycenterv1.SetChannelConfigRequest_Wechatpay{Wechatpay: wechatConfig(t)}})))(t).Msg.ChannelConfig
	if !again2.Enabled {
		t.Fatal("re-set configuration stays disabled")
	}
}

func TestSecretsAreNeverReturnedNorStoredInPlaintext(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	ctx := context.Background()
	m := must(admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: "M"})))(t).Msg.Merchant
	created := must(admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{MerchantId: m.MerchantId, Name: "A"})))(t).Msg
	appID := created.App.AppId
	alipay, wechat := alipayConfig(t), wechatConfig(t)
	var responses []proto.Message
	for _, req := range []*paycenterv1.SetChannelConfigRequest{
		{AppId: appID, Config: &paycenterv1.SetChannelConfigRequest_Alipay{Alipay: alipay}},
		{AppId: appID, Config: &paycenterv1.SetChannelConfigRequest_Wechatpay{Wechatpay: wechat}},
	} {
		responses = append(responses, must(admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(req)))(t).Msg)
	}
	responses = append(responses,
		must(admin.Merchants.ListChannelConfigs(ctx, connect.NewRequest(&paycenterv1.ListChannelConfigsRequest{AppId: appID})))(t).Msg,
		must(admin.Merchants.GetApp(ctx, connect.NewRequest(&paycenterv1.GetAppRequest{AppId: appID})))(t).Msg,
		must(admin.Merchants.ListApps(ctx, connect.NewRequest(&paycenterv1.ListAppsRequest{MerchantId: m.MerchantId})))(t).Msg)
	privBody := pemBody(alipay.AppPrivateKeyPem)
	secrets := []string{privBody, apiV3Key, created.ApiKey, created.WebhookSecret}
	for _, res := range responses {
		text := protojson.Format(res)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Fatalf("response %T returns a secret: %s", res, text)
			}
		}
	}

	// The rows hold ciphertext and hashes only.
	var rows []struct {
		Settings []byte `db:"settings"`
		Secrets  []byte `db:"secrets_enc"`
		KeyID    string `db:"secrets_keyid"`
	}
	if err := env.DB.SelectContext(ctx, &rows, `SELECT settings, secrets_enc, secrets_keyid FROM channel_configs WHERE app_id = $1`, appID); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d channel rows, want 2", len(rows))
	}
	for _, r := range rows {
		if r.KeyID != "test" || len(r.Secrets) == 0 {
			t.Fatalf("row not encrypted under the master key: key id %q, %d bytes", r.KeyID, len(r.Secrets))
		}
		for _, col := range [][]byte{r.Settings, r.Secrets} {
			for _, s := range []string{privBody, privBody[:64], apiV3Key} {
				if bytes.Contains(col, []byte(s)) {
					t.Fatalf("channel_configs stores a secret in plaintext: %q", col)
				}
			}
		}
	}
	var app struct {
		Hash    []byte `db:"api_key_hash"`
		Webhook []byte `db:"webhook_secret_enc"`
	}
	if err := env.DB.GetContext(ctx, &app, `SELECT api_key_hash, webhook_secret_enc FROM apps WHERE app_id = $1`, appID); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(app.Hash, []byte(created.ApiKey)) || !bytes.Equal(app.Hash, auth.HashKey(created.ApiKey)) {
		t.Fatal("api key not stored as its SHA-256 hash")
	}
	if bytes.Contains(app.Webhook, []byte(created.WebhookSecret)) {
		t.Fatal("webhook secret stored in plaintext")
	}

	// The channel adapters, in process, get the secrets back intact.
	cfg := must(env.Server.Merchants.Credentials(ctx, appID, merchant.ChannelWechatPay))(t)
	if cfg.WechatPay.APIv3Key != apiV3Key || cfg.WechatPay.MerchantPrivateKeyPEM != wechat.MerchantPrivateKeyPem {
		t.Fatal("decrypted WeChat Pay secrets differ from what was set")
	}
	cfg = must(env.Server.Merchants.Credentials(ctx, appID, merchant.ChannelAlipay))(t)
	if cfg.Alipay.AppPrivateKeyPEM != alipay.AppPrivateKeyPem || cfg.Alipay.AlipayPublicKeyPEM != alipay.AlipayPublicKeyPem {
		t.Fatal("decrypted Alipay settings differ from what was set")
	}
}

func pemBody(p string) string {
	lines := strings.Split(strings.TrimSpace(p), "\n")
	return strings.Join(lines[1:len(lines)-1], "")[:200]
}

func TestTenantIsolationAndAuthentication(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	ctx := context.Background()
	type tenant struct {
		merchantID, appID string
		client            *paycenter.Client
	}
	newTenant := func(name string) tenant {
		m := must(admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: name})))(t).Msg.Merchant
		a := must(admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{MerchantId: m.MerchantId, Name: "app"})))(t).Msg
		must(admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(&paycenterv1.SetChannelConfigRequest{AppId: a.App.AppId, Config: &paycenterv1.SetChannelConfigRequest_Collector{Collector: &paycenterv1.CollectorConfig{Enabled: true}}})))(t)
		return tenant{m.MerchantId, a.App.AppId, env.Client(a.ApiKey)}
	}
	a, b := newTenant("A"), newTenant("B")

	// Own data is visible.
	must(a.client.Merchants.GetMerchant(ctx, connect.NewRequest(&paycenterv1.GetMerchantRequest{MerchantId: a.merchantID})))(t)
	own := must(a.client.Merchants.ListApps(ctx, connect.NewRequest(&paycenterv1.ListAppsRequest{})))(t).Msg.Apps
	if len(own) != 1 || own[0].AppId != a.appID {
		t.Fatalf("app key lists %v, want its own app", own)
	}
	// Another tenant's ids are NOT_FOUND, exactly like ids that do not exist.
	_, err := a.client.Merchants.GetMerchant(ctx, connect.NewRequest(&paycenterv1.GetMerchantRequest{MerchantId: b.merchantID}))
	wantCode(t, err, connect.CodeNotFound, "")
	_, err = a.client.Merchants.GetApp(ctx, connect.NewRequest(&paycenterv1.GetAppRequest{AppId: b.appID}))
	wantCode(t, err, connect.CodeNotFound, "")
	_, err = a.client.Merchants.ListApps(ctx, connect.NewRequest(&paycenterv1.ListAppsRequest{MerchantId: b.merchantID}))
	wantCode(t, err, connect.CodeNotFound, "")
	_, err = a.client.Merchants.ListChannelConfigs(ctx, connect.NewRequest(&paycenterv1.ListChannelConfigsRequest{AppId: b.appID}))
	wantCode(t, err, connect.CodeNotFound, "")
	_, err = admin.Merchants.GetMerchant(ctx, connect.NewRequest(&paycenterv1.GetMerchantRequest{MerchantId: "mch_doesnotexist"}))
	wantCode(t, err, connect.CodeNotFound, "")

	// App keys cannot manage merchants; no key or a bad key is UNAUTHENTICATED.
	_, err = a.client.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: "X"}))
	wantCode(t, err, connect.CodePermissionDenied, "admin")
	_, err = a.client.Merchants.RotateAppKey(ctx, connect.NewRequest(&paycenterv1.RotateAppKeyRequest{AppId: a.appID}))
	wantCode(t, err, connect.CodePermissionDenied, "admin")
	_, err = a.client.Merchants.ListMerchants(ctx, connect.NewRequest(&paycenterv1.ListMerchantsRequest{}))
	wantCode(t, err, connect.CodePermissionDenied, "admin")
	for name, key := range map[string]string{"none": "", "unknown app key": "pk_unknownunknownunknownunknown", "wrong admin key": "test-admin-key-0123456789abcdeX"} {
		_, err = env.Client(key).Merchants.GetMerchant(ctx, connect.NewRequest(&paycenterv1.GetMerchantRequest{MerchantId: a.merchantID}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s: got %v, want UNAUTHENTICATED", name, err)
		}
	}
	// The same holds over the gRPC protocol.
	_, err = env.Client(servertest.AdminKey, paycenter.WithGRPC()).Merchants.GetMerchant(ctx, connect.NewRequest(&paycenterv1.GetMerchantRequest{MerchantId: "mch_nope"}))
	wantCode(t, err, connect.CodeNotFound, "")
}

func TestBadInputIsInvalidArgumentNamingTheFieldAndWritesNothing(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	ctx := context.Background()
	m := must(admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: "M"})))(t).Msg.Merchant
	app := must(admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{MerchantId: m.MerchantId, Name: "A"})))(t).Msg.App
	priv, pub := testKeys(t)
	long := strings.Repeat("x", 129)
	withAlipay := func(mut func(c *paycenterv1.AlipayConfig)) *paycenterv1.SetChannelConfigRequest {
		c := alipayConfig(t)
		mut(c)
		return &paycenterv1.SetChannelConfigRequest{AppId: app.AppId, Config: &paycenterv1.SetChannelConfigRequest_Alipay{Alipay: c}}
	}
	withWechat := func(mut func(c *paycenterv1.WechatPayConfig)) *paycenterv1.SetChannelConfigRequest {
		c := wechatConfig(t)
		mut(c)
		return &paycenterv1.SetChannelConfigRequest{AppId: app.AppId, Config: &paycenterv1.SetChannelConfigRequest_Wechatpay{Wechatpay: c}}
	}
	cases := []struct {
		name  string
		field string
		call  func() error
	}{
		{"empty merchant name", "name", func() error {
			_, err := admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: ""}))
			return err
		}},
		{"oversize merchant name", "name", func() error {
			_, err := admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: long}))
			return err
		}},
		{"bad e-mail", "contact_email", func() error {
			_, err := admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: "N", ContactEmail: "not-an-email"}))
			return err
		}},
		{"oversize name on update", "name", func() error {
			_, err := admin.Merchants.UpdateMerchant(ctx, connect.NewRequest(&paycenterv1.UpdateMerchantRequest{MerchantId: m.MerchantId, Name: &long}))
			return err
		}},
		{"empty freeze reason", "reason", func() error {
			_, err := admin.Merchants.FreezeMerchant(ctx, connect.NewRequest(&paycenterv1.FreezeMerchantRequest{MerchantId: m.MerchantId}))
			return err
		}},
		{"missing merchant id", "merchant_id", func() error {
			_, err := admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{Name: "A"}))
			return err
		}},
		{"ftp webhook", "webhook_url", func() error {
			_, err := admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{MerchantId: m.MerchantId, Name: "A", WebhookUrl: "ftp://x.example/h"}))
			return err
		}},
		{"relative webhook", "webhook_url", func() error {
			_, err := admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{MerchantId: m.MerchantId, Name: "A", WebhookUrl: "/hooks"}))
			return err
		}},
		{"webhook without host", "webhook_url", func() error {
			bad := "https:///hooks"
			_, err := admin.Merchants.UpdateApp(ctx, connect.NewRequest(&paycenterv1.UpdateAppRequest{AppId: app.AppId, WebhookUrl: &bad}))
			return err
		}},
		{"malformed private key PEM", "alipay.app_private_key_pem", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(withAlipay(func(c *paycenterv1.AlipayConfig) {
				c.AppPrivateKeyPem = "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----"
			})))
			return err
		}},
		{"public key given as private key", "alipay.app_private_key_pem", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(withAlipay(func(c *paycenterv1.AlipayConfig) { c.AppPrivateKeyPem = pub })))
			return err
		}},
		{"private key given as public key", "alipay.alipay_public_key_pem", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(withAlipay(func(c *paycenterv1.AlipayConfig) { c.AlipayPublicKeyPem = priv })))
			return err
		}},
		{"non-numeric alipay app id", "alipay.alipay_app_id", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(withAlipay(func(c *paycenterv1.AlipayConfig) { c.AlipayAppId = "abc" })))
			return err
		}},
		{"bad gateway URL", "alipay.gateway_url", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(withAlipay(func(c *paycenterv1.AlipayConfig) { c.GatewayUrl = "gateway" })))
			return err
		}},
		{"short APIv3 key", "wechatpay.api_v3_key", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(withWechat(func(c *paycenterv1.WechatPayConfig) { c.ApiV3Key = apiV3Key[:31] })))
			return err
		}},
		{"long APIv3 key", "wechatpay.api_v3_key", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(withWechat(func(c *paycenterv1.WechatPayConfig) { c.ApiV3Key = apiV3Key + "x" })))
			return err
		}},
		{"truncated platform key", "wechatpay.platform_public_key_pem", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(withWechat(func(c *paycenterv1.WechatPayConfig) { c.PlatformPublicKeyPem = pub[:100] })))
			return err
		}},
		{"bad certificate serial", "wechatpay.merchant_certificate_serial", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(withWechat(func(c *paycenterv1.WechatPayConfig) { c.MerchantCertificateSerial = "zz" })))
			return err
		}},
		{"no configuration", "config", func() error {
			_, err := admin.Merchants.SetChannelConfig(ctx, connect.NewRequest(&paycenterv1.SetChannelConfigRequest{AppId: app.AppId}))
			return err
		}},
		{"unknown channel enum", "channel", func() error {
			_, err := admin.Merchants.DisableChannel(ctx, connect.NewRequest(&paycenterv1.DisableChannelRequest{AppId: app.AppId, Channel: paycenterv1.Channel(99)}))
			return err
		}},
		{"unspecified channel", "channel", func() error {
			_, err := admin.Merchants.DisableChannel(ctx, connect.NewRequest(&paycenterv1.DisableChannelRequest{AppId: app.AppId}))
			return err
		}},
		{"page size too large", "page_size", func() error {
			_, err := admin.Merchants.ListMerchants(ctx, connect.NewRequest(&paycenterv1.ListMerchantsRequest{PageSize: 101}))
			return err
		}},
		{"forged page token", "page_token", func() error {
			_, err := admin.Merchants.ListMerchants(ctx, connect.NewRequest(&paycenterv1.ListMerchantsRequest{PageToken: "%%%"}))
			return err
		}},
	}
	counts := func() [3]int {
		var c [3]int
		for i, table := range []string{"merchants", "apps", "channel_configs"} {
			if err := env.DB.GetContext(ctx, &c[i], `SELECT count(*) FROM `+table); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	var updatedAt []string
	before := counts()
	if err := env.DB.SelectContext(ctx, &updatedAt, `SELECT updated_at::text FROM merchants UNION ALL SELECT updated_at::text FROM apps`); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		err := c.call()
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
			t.Errorf("%s: got %v, want INVALID_ARGUMENT", c.name, err)
			continue
		}
		if !strings.HasPrefix(ce.Message(), c.field+":") {
			t.Errorf("%s: message %q does not name field %q", c.name, ce.Message(), c.field)
		}
	}
	var updatedAfter []string
	if err := env.DB.SelectContext(ctx, &updatedAfter, `SELECT updated_at::text FROM merchants UNION ALL SELECT updated_at::text FROM apps`); err != nil {
		t.Fatal(err)
	}
	if after := counts(); after != before || strings.Join(updatedAfter, ",") != strings.Join(updatedAt, ",") {
		t.Fatalf("rejected requests wrote rows: counts %v -> %v", before, after)
	}
}
