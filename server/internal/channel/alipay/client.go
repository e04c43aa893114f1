package alipay

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"

	alipaysdk "github.com/smartwalle/alipay/v3"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/merchant"
)

// ProductionGateway is Alipay's OpenAPI gateway. A configuration whose gateway_url has
// Alipay's production host runs the SDK in production mode; any other URL (Alipay's own
// sandbox, paycenter's local sandbox) runs it in sandbox mode against that URL.
const ProductionGateway = "https://openapi.alipay.com/gateway.do"

const productionHost = "openapi.alipay.com"

// client returns the SDK client for cfg, building and caching it on first use.
func (c *Channel) client(cfg merchant.ChannelConfig) (*alipaysdk.Client, error) {
	s := cfg.Alipay
	if s == nil {
		return nil, fmt.Errorf("alipay: app %s has no Alipay configuration", cfg.AppID)
	}
	key := cfg.AppID + "\x00" + s.AlipayAppID
	fp := channel.Fingerprint(cfg.UpdatedAt, s.AlipayAppID, s.GatewayURL, s.AlipayPublicKeyPEM, s.AppPrivateKeyPEM)
	if cl, ok := c.clients.Get(key, fp); ok {
		return cl, nil
	}
	cl, err := c.newClient(*s)
	if err != nil {
		return nil, fmt.Errorf("alipay: app %s: %w", cfg.AppID, err)
	}
	c.clients.Put(key, fp, cl)
	return cl, nil
}

func (c *Channel) newClient(s merchant.AlipaySettings) (*alipaysdk.Client, error) {
	if s.AlipayAppID == "" {
		return nil, errors.New("alipay_app_id is not configured")
	}
	gateway, production, err := parseGateway(s.GatewayURL)
	if err != nil {
		return nil, err
	}
	// Without the Alipay public key the SDK in production mode would download
	// certificates: paycenter runs in public-key mode only.
	publicKey, err := publicKeyPEM(s.AlipayPublicKeyPEM)
	if err != nil {
		return nil, err
	}
	cl, err := alipaysdk.New(s.AlipayAppID, s.AppPrivateKeyPEM, production,
		alipaysdk.WithSandboxGateway(gateway),    // applies in sandbox mode only
		alipaysdk.WithProductionGateway(gateway), // applies in production mode only
		alipaysdk.WithHTTPClient(c.httpClient),
		alipaysdk.WithTimeLocation(beijing))
	if err != nil {
		// The SDK's parse errors never quote the key.
		return nil, fmt.Errorf("app private key: %w", err)
	}
	if err := cl.LoadAliPayPublicKey(publicKey); err != nil {
		return nil, fmt.Errorf("alipay public key: %w", err)
	}
	return cl, nil
}

// parseGateway checks a configured gateway URL and tells whether it is Alipay's production
// gateway. The URL decides; no code change moves an app between sandbox and production.
func parseGateway(raw string) (gateway string, production bool, err error) {
	if raw == "" {
		return "", false, errors.New("gateway_url is not configured")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, fmt.Errorf("gateway_url %q is not an absolute http(s) URL", raw)
	}
	production = strings.EqualFold(u.Hostname(), productionHost)
	if production && u.Scheme != "https" {
		return "", false, fmt.Errorf("gateway_url %q: Alipay's production gateway needs https", raw)
	}
	return raw, production, nil
}

// publicKeyPEM accepts the Alipay public key as PKIX or PKCS#1 PEM (what the merchant
// service accepts) and returns PKIX PEM, the only form the SDK loads.
func publicKeyPEM(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("alipay_public_key_pem is not configured")
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return "", errors.New("alipay public key is not PEM")
	}
	if pub, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		if _, ok := pub.(*rsa.PublicKey); !ok {
			return "", errors.New("alipay public key is not an RSA key")
		}
		return s, nil
	}
	pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
	if err != nil {
		return "", errors.New("alipay public key is neither PKIX nor PKCS#1")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("alipay public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
