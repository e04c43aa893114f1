package alipay

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/paycenter/paycenter/server/internal/merchant"
)

func testSettings(t *testing.T) merchant.AlipaySettings {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := x509.MarshalPKCS8PrivateKey(key)
	return merchant.AlipaySettings{
		AlipayAppID: "2021000000000009",
		// The app's own public key in PKCS#1 form stands in for Alipay's: it must load.
		AlipayPublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)})),
		GatewayURL:         "http://127.0.0.1:9/gateway.do",
		AppPrivateKeyPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})),
	}
}

func TestClientCacheFollowsConfiguration(t *testing.T) {
	t.Parallel()
	c := New()
	s := testSettings(t)
	updated := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := merchant.ChannelConfig{AppID: "app1", Alipay: &s, UpdatedAt: updated}

	first, err := c.client(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.client(cfg); again != first {
		t.Fatal("same configuration: the client was rebuilt")
	}
	if first.Production() {
		t.Fatal("a local gateway must run in sandbox mode")
	}
	cfg.UpdatedAt = updated.Add(time.Second)
	if changed, _ := c.client(cfg); changed == first {
		t.Fatal("new updated_at: the old client was reused")
	}
	rotated := s
	rotated.GatewayURL = "http://127.0.0.1:10/gateway.do"
	cfg.Alipay = &rotated
	second, _ := c.client(cfg)
	if third, _ := c.client(cfg); third != second {
		t.Fatal("client not cached after a change")
	}
	if c.clients.Len() != 1 {
		t.Fatalf("one app, %d cache entries", c.clients.Len())
	}
	other := merchant.ChannelConfig{AppID: "app2", Alipay: &s, UpdatedAt: updated}
	if o, _ := c.client(other); o == second {
		t.Fatal("two apps share a client")
	}
}

func TestProductionGatewayByConfiguration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url        string
		production bool
		ok         bool
	}{
		{ProductionGateway, true, true},
		{"https://openapi.alipay.com/gateway.do?charset=utf-8", true, true},
		{"https://openapi-sandbox.dl.alipaydev.com/gateway.do", false, true},
		{"http://127.0.0.1:8080/gateway.do", false, true},
		{"http://openapi.alipay.com/gateway.do", false, false},
		{"", false, false},
		{"ftp://x/gateway.do", false, false},
	} {
		_, production, err := parseGateway(tc.url)
		if (err == nil) != tc.ok || production != tc.production {
			t.Errorf("%q: production %v, %v", tc.url, production, err)
		}
	}

	c := New()
	s := testSettings(t)
	s.GatewayURL = ProductionGateway
	cl, err := c.client(merchant.ChannelConfig{AppID: "app1", Alipay: &s})
	if err != nil {
		t.Fatal(err)
	}
	if !cl.Production() {
		t.Fatal("Alipay's gateway URL must run the SDK in production mode")
	}
}
