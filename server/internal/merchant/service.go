package merchant

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/ids"
	"github.com/paycenter/paycenter/server/internal/page"
	"github.com/paycenter/paycenter/server/internal/secret"
)

// Service holds the merchant domain's rules. Mutations need an admin; an app may read its own
// merchant's objects; anything else is NOT_FOUND, so ids never leak across tenants.
type Service struct {
	store       *Store
	keyring     *secret.Keyring
	credentials ttlCache[credentialsKey, ChannelConfig]
	webhooks    ttlCache[string, webhookTarget]
}

// NewService returns a Service storing through store and sealing secrets with keyring.
func NewService(store *Store, keyring *secret.Keyring) *Service {
	return &Service{store: store, keyring: keyring}
}

// CreateMerchant registers an active merchant.
func (s *Service) CreateMerchant(ctx context.Context, name, email string) (Merchant, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return Merchant{}, err
	}
	if err := firstError(validName("name", name), validEmail("contact_email", email)); err != nil {
		return Merchant{}, err
	}
	return s.store.insertMerchant(ctx, Merchant{ID: ids.New("mch"), Name: name, ContactEmail: email, Status: StatusActive})
}

// Merchant returns a merchant the caller may see.
func (s *Service) Merchant(ctx context.Context, id string) (Merchant, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return Merchant{}, err
	}
	if err := required("merchant_id", id); err != nil {
		return Merchant{}, err
	}
	if !p.CanSeeMerchant(id) {
		return Merchant{}, errs.NotFound("merchant %s", id)
	}
	return s.store.merchant(ctx, id)
}

// Merchants lists merchants (admins only).
func (s *Service) Merchants(ctx context.Context, pg page.Request) ([]Merchant, string, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return nil, "", err
	}
	size, after, err := pg.Parse(20, 100)
	if err != nil {
		return nil, "", err
	}
	ms, err := s.store.merchants(ctx, after, size+1)
	if err != nil {
		return nil, "", err
	}
	ms, next := page.Cut(ms, size, func(m Merchant) string { return m.ID })
	return ms, next, nil
}

// UpdateMerchant changes the given fields.
func (s *Service) UpdateMerchant(ctx context.Context, id string, u MerchantUpdate) (Merchant, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return Merchant{}, err
	}
	errList := []error{required("merchant_id", id)}
	if u.Name != nil {
		errList = append(errList, validName("name", *u.Name))
	}
	if u.ContactEmail != nil {
		errList = append(errList, validEmail("contact_email", *u.ContactEmail))
	}
	if err := firstError(errList...); err != nil {
		return Merchant{}, err
	}
	return s.store.updateMerchant(ctx, id, u)
}

// Freeze stops the merchant's apps from moving money. Freezing a frozen merchant changes nothing.
func (s *Service) Freeze(ctx context.Context, id, reason string) (Merchant, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return Merchant{}, err
	}
	if err := firstError(required("merchant_id", id), validReason("reason", reason)); err != nil {
		return Merchant{}, err
	}
	return s.store.setMerchantStatus(ctx, id, StatusFrozen, reason)
}

// Unfreeze lifts a freeze.
func (s *Service) Unfreeze(ctx context.Context, id string) (Merchant, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return Merchant{}, err
	}
	if err := required("merchant_id", id); err != nil {
		return Merchant{}, err
	}
	return s.store.setMerchantStatus(ctx, id, StatusActive, "")
}

// CreateApp creates an app with a fresh API key and webhook secret.
func (s *Service) CreateApp(ctx context.Context, merchantID, name, webhookURL string) (NewApp, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return NewApp{}, err
	}
	if err := firstError(required("merchant_id", merchantID), validName("name", name),
		validURL("webhook_url", webhookURL, true)); err != nil {
		return NewApp{}, err
	}
	if _, err := s.store.merchant(ctx, merchantID); err != nil {
		return NewApp{}, err
	}
	appID := ids.New("app")
	key, prefix := auth.NewAppKey()
	webhookSecret := "whsec_" + ids.Secret(40)
	keyID, enc := s.keyring.Seal([]byte(webhookSecret), webhookAAD(appID))
	app, err := s.store.insertApp(ctx, App{ID: appID, MerchantID: merchantID, Name: name, WebhookURL: webhookURL},
		appSecrets{keyHash: auth.HashKey(key), keyPrefix: prefix, webhookKeyID: keyID, webhookSecret: enc})
	if err != nil {
		return NewApp{}, err
	}
	return NewApp{App: app, APIKey: key, WebhookSecret: webhookSecret}, nil
}

// App returns an app the caller may see.
func (s *Service) App(ctx context.Context, id string) (App, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return App{}, err
	}
	if err := required("app_id", id); err != nil {
		return App{}, err
	}
	a, err := s.store.app(ctx, id)
	if err != nil {
		return App{}, err
	}
	if !p.CanSeeMerchant(a.MerchantID) {
		return App{}, errs.NotFound("app %s", id)
	}
	return a, nil
}

// Apps lists a merchant's apps; an app key lists its own merchant's (merchantID may be empty).
func (s *Service) Apps(ctx context.Context, merchantID string, pg page.Request) ([]App, string, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, "", err
	}
	if merchantID == "" && !p.IsAdmin() {
		merchantID = p.MerchantID
	}
	if err := required("merchant_id", merchantID); err != nil {
		return nil, "", err
	}
	if !p.CanSeeMerchant(merchantID) {
		return nil, "", errs.NotFound("merchant %s", merchantID)
	}
	size, after, err := pg.Parse(20, 100)
	if err != nil {
		return nil, "", err
	}
	if _, err := s.store.merchant(ctx, merchantID); err != nil {
		return nil, "", err
	}
	as, err := s.store.apps(ctx, merchantID, after, size+1)
	if err != nil {
		return nil, "", err
	}
	as, next := page.Cut(as, size, func(a App) string { return a.ID })
	return as, next, nil
}

// UpdateApp changes the given fields.
func (s *Service) UpdateApp(ctx context.Context, id string, u AppUpdate) (App, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return App{}, err
	}
	errList := []error{required("app_id", id)}
	if u.Name != nil {
		errList = append(errList, validName("name", *u.Name))
	}
	if u.WebhookURL != nil {
		errList = append(errList, validURL("webhook_url", *u.WebhookURL, true))
	}
	if err := firstError(errList...); err != nil {
		return App{}, err
	}
	a, err := s.store.updateApp(ctx, id, u)
	s.webhooks.drop(id)
	return a, err
}

// RotateKey replaces the app's API key; the old key stops working at once.
func (s *Service) RotateKey(ctx context.Context, id string) (App, string, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return App{}, "", err
	}
	if err := required("app_id", id); err != nil {
		return App{}, "", err
	}
	key, prefix := auth.NewAppKey()
	a, err := s.store.setAppKey(ctx, id, auth.HashKey(key), prefix)
	return a, key, err
}

// RotateWebhookSecret replaces the app's webhook signing secret.
func (s *Service) RotateWebhookSecret(ctx context.Context, id string) (App, string, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return App{}, "", err
	}
	if err := required("app_id", id); err != nil {
		return App{}, "", err
	}
	webhookSecret := "whsec_" + ids.Secret(40)
	keyID, enc := s.keyring.Seal([]byte(webhookSecret), webhookAAD(id))
	a, err := s.store.setWebhookSecret(ctx, id, keyID, enc)
	s.webhooks.drop(id)
	return a, webhookSecret, err
}

// WebhookSecret returns an app's webhook signing secret, for webhook delivery only.
func (s *Service) WebhookSecret(ctx context.Context, appID string) (string, error) {
	keyID, enc, err := s.store.webhookSecret(ctx, appID)
	if err != nil {
		return "", err
	}
	pt, err := s.keyring.Open(keyID, enc, webhookAAD(appID))
	if err != nil {
		return "", fmt.Errorf("open webhook secret of %s: %w", appID, err)
	}
	return string(pt), nil
}

func webhookAAD(appID string) []byte { return []byte("apps/" + appID + "/webhook_secret") }

func channelAAD(appID string, ch Channel) []byte {
	return []byte("channel_configs/" + appID + "/" + string(ch))
}

// ResolveAppKey implements auth.Resolver.
func (s *Service) ResolveAppKey(ctx context.Context, hash []byte) (auth.Principal, error) {
	o, err := s.store.appByKeyHash(ctx, hash)
	if err != nil {
		return auth.Principal{}, err
	}
	return auth.Principal{Kind: auth.KindApp, AppID: o.AppID, MerchantID: o.MerchantID, MerchantFrozen: o.Status == StatusFrozen}, nil
}

// channelSecrets is the encrypted part of a channel configuration.
type channelSecrets struct {
	AppPrivateKeyPEM      string `json:"app_private_key_pem,omitempty"`
	MerchantPrivateKeyPEM string `json:"merchant_private_key_pem,omitempty"`
	APIv3Key              string `json:"api_v3_key,omitempty"`
}

// SetChannel stores an app's configuration of one channel (exactly one of the settings) and
// enables it.
func (s *Service) SetChannel(ctx context.Context, appID string, alipay *AlipaySettings, wechat *WechatPaySettings, collector bool) (ChannelConfig, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return ChannelConfig{}, err
	}
	if err := required("app_id", appID); err != nil {
		return ChannelConfig{}, err
	}
	row := channelRow{AppID: appID}
	var sec *channelSecrets
	switch {
	case alipay != nil:
		if err := validateAlipay(*alipay); err != nil {
			return ChannelConfig{}, err
		}
		row.Channel, row.Settings = ChannelAlipay, marshalJSON(alipay)
		sec = &channelSecrets{AppPrivateKeyPEM: alipay.AppPrivateKeyPEM}
	case wechat != nil:
		if err := validateWechatPay(*wechat); err != nil {
			return ChannelConfig{}, err
		}
		row.Channel, row.Settings = ChannelWechatPay, marshalJSON(wechat)
		sec = &channelSecrets{MerchantPrivateKeyPEM: wechat.MerchantPrivateKeyPEM, APIv3Key: wechat.APIv3Key}
	case collector:
		row.Channel, row.Settings = ChannelCollector, []byte(`{}`)
	default:
		return ChannelConfig{}, errs.Invalid("config", "set one of alipay, wechatpay or collector (with enabled true; use DisableChannel to disable)")
	}
	app, err := s.store.app(ctx, appID)
	if err != nil {
		return ChannelConfig{}, err
	}
	row.MerchantID = app.MerchantID
	if sec != nil {
		row.SecretsKeyID, row.SecretsEnc = s.keyring.Seal(marshalJSON(sec), channelAAD(appID, row.Channel))
	}
	stored, err := s.store.upsertChannel(ctx, row)
	if err != nil {
		return ChannelConfig{}, err
	}
	s.credentials.drop(credentialsKey{appID, row.Channel})
	return publicConfig(stored)
}

// Channels lists an app's channel configurations, without secrets.
func (s *Service) Channels(ctx context.Context, appID string, pg page.Request) ([]ChannelConfig, string, error) {
	if _, err := s.App(ctx, appID); err != nil {
		return nil, "", err
	}
	size, after, err := pg.Parse(20, 100)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.store.channels(ctx, appID, Channel(after), size+1)
	if err != nil {
		return nil, "", err
	}
	rows, next := page.Cut(rows, size, func(r channelRow) string { return string(r.Channel) })
	out := make([]ChannelConfig, 0, len(rows))
	for _, r := range rows {
		c, err := publicConfig(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, c)
	}
	return out, next, nil
}

// DisableChannel stops new payments on an app's channel.
func (s *Service) DisableChannel(ctx context.Context, appID string, ch Channel) (ChannelConfig, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return ChannelConfig{}, err
	}
	if err := required("app_id", appID); err != nil {
		return ChannelConfig{}, err
	}
	row, err := s.store.disableChannel(ctx, appID, ch)
	if err != nil {
		return ChannelConfig{}, err
	}
	s.credentials.drop(credentialsKey{appID, ch})
	return publicConfig(row)
}

// Credentials returns an app's full configuration of a channel, secrets included, for the
// channel adapters. It is never exposed through an RPC. Results are cached briefly (see
// credentialsTTL).
func (s *Service) Credentials(ctx context.Context, appID string, ch Channel) (ChannelConfig, error) {
	key, now := credentialsKey{appID, ch}, time.Now()
	if c, ok := s.credentials.get(key, now); ok {
		return c.clone(), nil
	}
	c, err := s.loadCredentials(ctx, appID, ch)
	if err == nil {
		s.credentials.put(key, c.clone(), now)
	}
	return c, err
}

func (s *Service) loadCredentials(ctx context.Context, appID string, ch Channel) (ChannelConfig, error) {
	row, err := s.store.channel(ctx, appID, ch)
	if err != nil {
		return ChannelConfig{}, err
	}
	c, err := publicConfig(row)
	if err != nil || row.SecretsEnc == nil {
		return c, err
	}
	pt, err := s.keyring.Open(row.SecretsKeyID, row.SecretsEnc, channelAAD(appID, ch))
	if err != nil {
		return ChannelConfig{}, fmt.Errorf("open %s secrets of %s: %w", ch, appID, err)
	}
	var sec channelSecrets
	if err := json.Unmarshal(pt, &sec); err != nil {
		return ChannelConfig{}, fmt.Errorf("decode %s secrets of %s: %w", ch, appID, err)
	}
	switch {
	case c.Alipay != nil:
		c.Alipay.AppPrivateKeyPEM = sec.AppPrivateKeyPEM
	case c.WechatPay != nil:
		c.WechatPay.MerchantPrivateKeyPEM, c.WechatPay.APIv3Key = sec.MerchantPrivateKeyPEM, sec.APIv3Key
	}
	return c, nil
}

func publicConfig(r channelRow) (ChannelConfig, error) {
	c := ChannelConfig{AppID: r.AppID, MerchantID: r.MerchantID, Channel: r.Channel, Enabled: r.Enabled,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	var target any
	switch r.Channel {
	case ChannelAlipay:
		c.Alipay = &AlipaySettings{}
		target = c.Alipay
	case ChannelWechatPay:
		c.WechatPay = &WechatPaySettings{}
		target = c.WechatPay
	default:
		return c, nil
	}
	if err := json.Unmarshal(r.Settings, target); err != nil {
		return ChannelConfig{}, fmt.Errorf("decode %s settings of %s: %w", r.Channel, r.AppID, err)
	}
	return c, nil
}

func firstError(list ...error) error {
	for _, err := range list {
		if err != nil {
			return err
		}
	}
	return nil
}

// WebhookTarget returns where and with what secret an app's webhooks are sent, for webhook
// delivery only. An empty URL means the app takes no webhooks. Results are cached briefly.
func (s *Service) WebhookTarget(ctx context.Context, appID string) (url, secret string, err error) {
	now := time.Now()
	if t, ok := s.webhooks.get(appID, now); ok {
		return t.url, t.secret, nil
	}
	url, keyID, enc, err := s.store.webhookTarget(ctx, appID)
	if err != nil {
		return "", "", err
	}
	pt, err := s.keyring.Open(keyID, enc, webhookAAD(appID))
	if err != nil {
		return "", "", fmt.Errorf("open webhook secret of %s: %w", appID, err)
	}
	s.webhooks.put(appID, webhookTarget{url: url, secret: string(pt)}, now)
	return url, string(pt), nil
}
