package sandbox_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/paycenter/paycenter/server/internal/sandbox"
)

func TestRewriteTransport(t *testing.T) {
	t.Parallel()
	var gotHost, gotURI string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotURI = r.Host, r.RequestURI
	}))
	defer srv.Close()

	rt, err := sandbox.RewriteTransport(srv.URL+"/wx/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/a%2Fb?mchid=1", nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gotHost != srv.Listener.Addr().String() || gotURI != "/wx/v3/pay/transactions/out-trade-no/a%2Fb?mchid=1" {
		t.Fatalf("got host %q uri %q", gotHost, gotURI)
	}
	if req.URL.Host != "api.mch.weixin.qq.com" {
		t.Fatal("the caller's request was modified")
	}
	for _, bad := range []string{"", "ftp://x", "http://", "http://h?x=1", "://"} {
		if _, err := sandbox.RewriteTransport(bad, nil); err == nil {
			t.Errorf("RewriteTransport(%q) accepted", bad)
		}
	}
}

func TestSandboxesShareOneMux(t *testing.T) {
	t.Parallel()
	ali, err := sandbox.NewAlipay(sandbox.AlipayOptions{Options: testOptions(t, keyAlipaySandbox)})
	if err != nil {
		t.Fatal(err)
	}
	defer ali.Close()
	wx, err := sandbox.NewWechatPay(sandbox.WechatPayOptions{Options: testOptions(t, keyWechatSandbox), PublicKeyID: "PUB_KEY_ID_0100000000000000000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	defer wx.Close()
	mux := http.NewServeMux()
	mux.Handle(sandbox.AlipayGatewayPath, ali)
	mux.Handle(sandbox.AlipayControlPrefix+"/", ali)
	mux.Handle("/v3/", wx)
	mux.Handle(sandbox.WechatPayControlPrefix+"/", wx)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var a, w map[string]string
	getJSON(t, srv, sandbox.AlipayControlPrefix+"/public-key", &a)
	getJSON(t, srv, sandbox.WechatPayControlPrefix+"/public-key", &w)
	if a["public_key_pem"] != ali.PublicKeyPEM() || w["public_key_pem"] != wx.PublicKeyPEM() || w["public_key_id"] != wx.PublicKeyID() {
		t.Fatalf("public keys: %v %v", a, w)
	}
	resp, err := srv.Client().Get(srv.URL + "/v3/pay/transactions/out-trade-no/x?mchid=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Wechatpay-Serial") != wx.PublicKeyID() {
		t.Fatalf("unsigned WeChat request: %d", resp.StatusCode)
	}
}
