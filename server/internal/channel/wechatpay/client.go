package wechatpay

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/merchant"
)

// ProductionBaseURL is WeChat Pay's API host, which the SDK has built in. A configuration
// with any other api_base_url (WeChat's backup host, paycenter's local sandbox) reaches it
// through a transport that rewrites scheme and host.
const ProductionBaseURL = "https://api.mch.weixin.qq.com"

const productionHost = "api.mch.weixin.qq.com"

// client is everything built from one version of an app's configuration.
type client struct {
	api    *core.Client
	notify *notify.Handler
	mchID  string
	appID  string
}

// client returns the client for cfg, building and caching it on first use.
func (c *Channel) client(cfg merchant.ChannelConfig) (*client, error) {
	s := cfg.WechatPay
	if s == nil {
		return nil, fmt.Errorf("wechatpay: app %s has no WeChat Pay configuration", cfg.AppID)
	}
	key := cfg.AppID + "\x00" + s.MchID
	fp := channel.Fingerprint(cfg.UpdatedAt, s.MchID, s.WechatAppID, s.MerchantCertificateSerial, s.PlatformPublicKeyPEM, s.PlatformPublicKeyID, s.APIBaseURL, s.MerchantPrivateKeyPEM, s.APIv3Key)
	if cl, ok := c.clients.Get(key, fp); ok {
		return cl, nil
	}
	cl, err := c.newClient(*s)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: app %s: %w", cfg.AppID, err)
	}
	c.clients.Put(key, fp, cl)
	return cl, nil
}

func (c *Channel) newClient(s merchant.WechatPaySettings) (*client, error) {
	for _, f := range []struct{ name, value string }{
		{"mch_id", s.MchID}, {"wechat_app_id", s.WechatAppID},
		{"merchant_certificate_serial", s.MerchantCertificateSerial}, {"platform_public_key_id", s.PlatformPublicKeyID},
	} {
		if f.value == "" {
			return nil, fmt.Errorf("%s is not configured", f.name)
		}
	}
	if len(s.APIv3Key) != 32 {
		return nil, errors.New("api_v3_key must be 32 bytes")
	}
	key, err := parsePrivateKey(s.MerchantPrivateKeyPEM)
	if err != nil {
		return nil, err
	}
	pub, err := parsePublicKey(s.PlatformPublicKeyPEM)
	if err != nil {
		return nil, err
	}
	rt, err := transportFor(s.APIBaseURL, c.httpClient.Transport)
	if err != nil {
		return nil, err
	}
	api, err := core.NewClient(context.Background(),
		option.WithWechatPayPublicKeyAuthCipher(s.MchID, s.MerchantCertificateSerial, key, s.PlatformPublicKeyID, pub),
		option.WithHTTPClient(&http.Client{Transport: rt, Timeout: c.httpClient.Timeout}))
	if err != nil {
		return nil, fmt.Errorf("sdk client: %w", err)
	}
	handler, err := notify.NewRSANotifyHandler(s.APIv3Key, verifiers.NewSHA256WithRSAPubkeyVerifier(s.PlatformPublicKeyID, *pub))
	if err != nil {
		return nil, errors.New("api_v3_key is not a valid AES-256 key")
	}
	return &client{api: api, notify: handler, mchID: s.MchID, appID: s.WechatAppID}, nil
}

// transportFor returns the RoundTripper that reaches baseURL: next itself for WeChat Pay's
// production host (the SDK's built-in one), a rewriting transport for any other.
func transportFor(baseURL string, next http.RoundTripper) (http.RoundTripper, error) {
	if baseURL == "" {
		return nil, errors.New("api_base_url is not configured")
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("api_base_url %q must be http(s)://host[/prefix]", baseURL)
	}
	prefix := strings.TrimRight(u.Path, "/")
	if strings.EqualFold(u.Host, productionHost) && u.Scheme == "https" && prefix == "" {
		return next, nil
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &rewriteTransport{scheme: u.Scheme, host: u.Host, prefix: prefix, next: next}, nil
}

// rewriteTransport sends each request to another scheme and host (and path prefix). The
// WeChat Pay signature covers method, path and query as the SDK built them, which stay as
// they were; the server at the other end strips the prefix, if any, before verifying.
// (paycenter's sandbox package has the same helper; production code does not import the
// sandbox.)
type rewriteTransport struct {
	scheme, host, prefix string
	next                 http.RoundTripper
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context()) // a RoundTripper must not modify the caller's request
	out.URL.Scheme, out.URL.Host, out.Host = t.scheme, t.host, t.host
	if t.prefix != "" {
		out.URL.Path = t.prefix + out.URL.Path
		if out.URL.RawPath != "" {
			out.URL.RawPath = t.prefix + out.URL.RawPath
		}
	}
	return t.next.RoundTrip(out)
}

// parsePrivateKey reads the merchant's RSA private key, PKCS#8 or PKCS#1 PEM (the SDK's
// own loader takes PKCS#8 only). Errors never quote the key.
func parsePrivateKey(s string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("merchant private key is not PEM")
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("merchant private key is neither PKCS#8 nor PKCS#1")
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("merchant private key is not an RSA key")
	}
	return key, nil
}

// parsePublicKey reads the WeChat Pay public key, PKIX or PKCS#1 PEM.
func parsePublicKey(s string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("platform public key is not PEM")
	}
	if key, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("platform public key is neither PKIX nor PKCS#1")
	}
	key, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("platform public key is not an RSA key")
	}
	return key, nil
}
