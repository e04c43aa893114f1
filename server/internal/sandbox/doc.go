// Package sandbox provides local stand-ins for the Alipay OpenAPI gateway and
// the WeChat Pay API v3, speaking their wire protocols closely enough that the
// real SDKs (github.com/smartwalle/alipay/v3 and
// github.com/wechatpay-apiv3/wechatpay-go) run against them unmodified: real
// RSA keys, real request and response signatures, real signed (and, for
// WeChat Pay, AEAD_AES_256_GCM-encrypted) asynchronous notifications.
//
// The internet is out of reach for tests and for `make run`, so paycenter's
// channel adapters are pointed at these servers by configuration alone. The
// package deliberately imports neither SDK: it implements the protocols, and
// its tests prove the SDKs accept them.
//
// Each sandbox is an http.Handler that also plays the payer ("the user scans
// and pays", "the refund completes") through Go methods and small JSON
// control endpoints (see registerControl), and can misbehave on purpose when
// it delivers notifications (see Fault). State lives in memory behind a
// mutex; notifications are delivered by one goroutine per sandbox, which
// Close stops.
//
// # Pointing the SDKs at a sandbox
//
// Alipay (public-key mode, production flag off):
//
//	client, _ := alipay.New(appID, appPrivateKeyPEM, false,
//		alipay.WithSandboxGateway(baseURL+sandbox.AlipayGatewayPath),
//		alipay.WithHTTPClient(httpClient))
//	_ = client.LoadAliPayPublicKey(ali.PublicKeyPEM())
//
// WeChat Pay (public-key mode; the API host is a constant in the SDK):
//
//	rt, _ := sandbox.RewriteTransport(baseURL, nil)
//	client, _ := core.NewClient(ctx,
//		option.WithWechatPayPublicKeyAuthCipher(mchID, serialNo, merchantKey, wx.PublicKeyID(), wx.PublicKey()),
//		option.WithHTTPClient(&http.Client{Transport: rt}))
//
// # Mounting
//
// Both handlers can share one http.ServeMux:
//
//	mux.Handle(sandbox.AlipayGatewayPath, ali)
//	mux.Handle(sandbox.AlipayControlPrefix+"/", ali)
//	mux.Handle("/v3/", wx)
//	mux.Handle(sandbox.WechatPayControlPrefix+"/", wx)
//
// The control endpoints are unauthenticated by design: never expose a
// sandbox outside a development machine.
package sandbox
