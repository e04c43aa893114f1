// Package merchant manages merchants, their apps (API keys, webhook secrets) and each app's
// channel configurations, whose secrets are encrypted at rest and never returned.
package merchant

import "time"

// Status of a merchant.
type Status string

// Merchant states.
const (
	StatusActive Status = "ACTIVE"
	StatusFrozen Status = "FROZEN"
)

// Channel is a payment channel an app can be configured for.
type Channel string

// Channels.
const (
	ChannelAlipay    Channel = "ALIPAY"
	ChannelWechatPay Channel = "WECHATPAY"
	ChannelCollector Channel = "COLLECTOR"
)

// Merchant is a business collecting money through paycenter.
type Merchant struct {
	ID           string    `db:"merchant_id"`
	Name         string    `db:"name"`
	ContactEmail string    `db:"contact_email"`
	Status       Status    `db:"status"`
	FreezeReason string    `db:"freeze_reason"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`
}

// App is one integration of a merchant.
type App struct {
	ID           string    `db:"app_id"`
	MerchantID   string    `db:"merchant_id"`
	Name         string    `db:"name"`
	WebhookURL   string    `db:"webhook_url"`
	APIKeyPrefix string    `db:"api_key_prefix"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`
}

// AlipaySettings are an app's Alipay settings; AppPrivateKeyPEM is secret.
type AlipaySettings struct {
	AlipayAppID        string `json:"alipay_app_id"`
	AlipayPublicKeyPEM string `json:"alipay_public_key_pem"`
	GatewayURL         string `json:"gateway_url"`
	AppPrivateKeyPEM   string `json:"-"`
}

// WechatPaySettings are an app's WeChat Pay settings; the private key and APIv3 key are secret.
type WechatPaySettings struct {
	MchID                     string `json:"mch_id"`
	WechatAppID               string `json:"wechat_app_id"`
	MerchantCertificateSerial string `json:"merchant_certificate_serial"`
	PlatformPublicKeyPEM      string `json:"platform_public_key_pem"`
	PlatformPublicKeyID       string `json:"platform_public_key_id"`
	APIBaseURL                string `json:"api_base_url"`
	MerchantPrivateKeyPEM     string `json:"-"`
	APIv3Key                  string `json:"-"`
}

// ChannelConfig is an app's configuration of one channel. Secret fields are filled only by
// Service.Credentials, for channel adapters.
type ChannelConfig struct {
	AppID      string
	MerchantID string
	Channel    Channel
	Enabled    bool
	Alipay     *AlipaySettings
	WechatPay  *WechatPaySettings
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// NewApp is a created app with the credentials shown only once.
type NewApp struct {
	App           App
	APIKey        string
	WebhookSecret string
}

// MerchantUpdate holds the fields to change; nil leaves a field alone.
type MerchantUpdate struct {
	Name         *string
	ContactEmail *string
}

// AppUpdate holds the fields to change; nil leaves a field alone.
type AppUpdate struct {
	Name       *string
	WebhookURL *string
}
