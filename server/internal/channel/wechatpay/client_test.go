package wechatpay

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/paycenter/paycenter/server/internal/merchant"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportFor(t *testing.T) {
	t.Parallel()
	var seen *http.Request
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: r}, nil
	})
	const sdkURL = ProductionBaseURL + "/v3/pay/transactions/out-trade-no/T%2F1?mchid=1900000109"

	for _, tc := range []struct {
		base    string
		rewrite bool
		want    string // URL the request reaches
	}{
		{ProductionBaseURL, false, sdkURL},
		{ProductionBaseURL + "/", false, sdkURL},
		{"https://api2.mch.weixin.qq.com", true, "https://api2.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/T%2F1?mchid=1900000109"},
		{"http://127.0.0.1:8080", true, "http://127.0.0.1:8080/v3/pay/transactions/out-trade-no/T%2F1?mchid=1900000109"},
		{"http://127.0.0.1:8080/sandbox/", true, "http://127.0.0.1:8080/sandbox/v3/pay/transactions/out-trade-no/T%2F1?mchid=1900000109"},
	} {
		rt, err := transportFor(tc.base, next)
		if err != nil {
			t.Fatalf("%s: %v", tc.base, err)
		}
		if _, isRewrite := rt.(*rewriteTransport); isRewrite != tc.rewrite {
			t.Errorf("%s: rewrite %v", tc.base, isRewrite)
		}
		req := httptest.NewRequest(http.MethodGet, sdkURL, nil)
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if seen.URL.String() != tc.want || seen.Host != seen.URL.Host && seen.Host != "" {
			t.Errorf("%s: reached %s (Host %s), want %s", tc.base, seen.URL, seen.Host, tc.want)
		}
		if req.URL.String() != sdkURL {
			t.Errorf("%s: the caller's request was modified: %s", tc.base, req.URL)
		}
	}
	for _, bad := range []string{"", "/v3", "ftp://x", "http://x?y=1", "http://user:pw@x"} {
		if _, err := transportFor(bad, next); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestClientCacheFollowsConfiguration(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := merchant.WechatPaySettings{
		MchID: "1900000109", WechatAppID: "wx1", MerchantCertificateSerial: "ABCDEF01",
		// PKCS#1 forms, which the merchant service accepts and the SDK's loaders do not.
		PlatformPublicKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)})),
		MerchantPrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		PlatformPublicKeyID:   "PUB_KEY_ID_1", APIBaseURL: "http://127.0.0.1:9", APIv3Key: "0123456789abcdefghijABCDEFGHIJ01",
	}
	c := New()
	updated := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := merchant.ChannelConfig{AppID: "app1", WechatPay: &s, UpdatedAt: updated}
	first, err := c.client(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.client(cfg); again != first {
		t.Fatal("same configuration: the client was rebuilt")
	}
	cfg.UpdatedAt = updated.Add(time.Second)
	if changed, _ := c.client(cfg); changed == first {
		t.Fatal("new updated_at: the old client was reused")
	}
	rotated := s
	rotated.APIv3Key = "ABCDEFGHIJ0123456789abcdefghij01"
	cfg.WechatPay = &rotated
	second, _ := c.client(cfg)
	if third, _ := c.client(cfg); third != second {
		t.Fatal("client not cached after a change")
	}
	if c.clients.Len() != 1 {
		t.Fatalf("one app, %d cache entries", c.clients.Len())
	}
}
