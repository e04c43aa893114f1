package alipay

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	alipaysdk "github.com/smartwalle/alipay/v3"

	"github.com/paycenter/paycenter/server/internal/merchant"
)

// ProductionGateway is Alipay's OpenAPI gateway. A configuration whose gateway_url has
// Alipay's production host runs the SDK in production mode; any other URL (Alipay's own
// sandbox, paycenter's local sandbox) runs it in sandbox mode against that URL.
const ProductionGateway = "https://openapi.alipay.com/gateway.do"

const productionHost = "openapi.alipay.com"

// maxClients bounds the client cache: one entry per app, replaced when its configuration
// changes, so it only needs a bound against pathological numbers of apps.
const maxClients = 4096

// clientCache keeps one SDK client per app so that a request does not parse RSA keys.
// An entry is reused only while the app's configuration is unchanged: its fingerprint
// covers UpdatedAt and every setting (secrets included, as a SHA-256 digest that never
// leaves memory), so a rotated key is picked up even if UpdatedAt did not move.
type clientCache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	fingerprint [sha256.Size]byte
	client      *alipaysdk.Client
}

func (c *clientCache) get(key string, fp [sha256.Size]byte) *alipaysdk.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && e.fingerprint == fp {
		return e.client
	}
	return nil
}

func (c *clientCache) put(key string, fp [sha256.Size]byte, client *alipaysdk.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]cacheEntry{}
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= maxClients {
		for k := range c.entries { // evict an arbitrary entry: it is rebuilt on its next use
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = cacheEntry{fingerprint: fp, client: client}
}

func (c *clientCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// fingerprint identifies one version of an app's Alipay configuration.
func fingerprint(cfg merchant.ChannelConfig) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(cfg.UpdatedAt.UnixNano()))
	h.Write(n[:])
	s := cfg.Alipay
	for _, f := range []string{s.AlipayAppID, s.GatewayURL, s.AlipayPublicKeyPEM, s.AppPrivateKeyPEM} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}

// client returns the SDK client for cfg, building and caching it on first use.
func (c *Channel) client(cfg merchant.ChannelConfig) (*alipaysdk.Client, error) {
	s := cfg.Alipay
	if s == nil {
		return nil, fmt.Errorf("alipay: app %s has no Alipay configuration", cfg.AppID)
	}
	key := cfg.AppID + "\x00" + s.AlipayAppID
	fp := fingerprint(cfg)
	if cl := c.clients.get(key, fp); cl != nil {
		return cl, nil
	}
	cl, err := c.newClient(*s)
	if err != nil {
		return nil, fmt.Errorf("alipay: app %s: %w", cfg.AppID, err)
	}
	c.clients.put(key, fp, cl)
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
