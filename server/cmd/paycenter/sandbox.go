package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/config"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/sandbox"
	"github.com/paycenter/paycenter/server/internal/server"
)

// startSandbox serves both sandbox channels until ctx ends.
func startSandbox(ctx context.Context, addr string, logger *slog.Logger) (*sandbox.Pair, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("PAYCENTER_SANDBOX_ADDR: listen on %s: %w", addr, err)
	}
	url := "http://" + ln.Addr().String()
	pair, err := sandbox.NewPair(sandbox.Options{PublicURL: url, Logger: logger.With("component", "sandbox")})
	if err != nil {
		ln.Close()
		return nil, "", err
	}
	hs := &http.Server{Handler: pair, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdownCtx)
		pair.Close()
	}()
	return pair, url, nil
}

// configureSandboxChannels points an app's Alipay and WeChat Pay configurations at the
// sandbox (whose keys are new on every start) and turns the collector channel on.
func configureSandboxChannels(ctx context.Context, srv *server.Server, pair *sandbox.Pair, url, appID string) error {
	ctx = auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindAdmin})
	creds, err := pair.NewCredentials(1)
	if err != nil {
		return err
	}
	alipay, wechat := sandboxSettings(creds, url)
	if _, err := srv.Merchants.SetChannel(ctx, appID, &alipay, nil, false); err != nil {
		return fmt.Errorf("configure Alipay: %w", err)
	}
	if _, err := srv.Merchants.SetChannel(ctx, appID, nil, &wechat, false); err != nil {
		return fmt.Errorf("configure WeChat Pay: %w", err)
	}
	if _, err := srv.Merchants.SetChannel(ctx, appID, nil, nil, true); err != nil {
		return fmt.Errorf("configure collector: %w", err)
	}
	return nil
}

func sandboxSettings(c sandbox.Credentials, url string) (merchant.AlipaySettings, merchant.WechatPaySettings) {
	return merchant.AlipaySettings{
			AlipayAppID: c.Alipay.AppID, AppPrivateKeyPEM: c.Alipay.PrivateKeyPEM,
			AlipayPublicKeyPEM: c.Alipay.AlipayPublicKeyPEM, GatewayURL: url + sandbox.AlipayGatewayPath,
		}, merchant.WechatPaySettings{
			MchID: c.WechatPay.MchID, WechatAppID: "wxd0000000000000001", MerchantCertificateSerial: c.WechatPay.SerialNo,
			MerchantPrivateKeyPEM: c.WechatPay.PrivateKeyPEM, APIv3Key: c.WechatPay.APIv3Key,
			PlatformPublicKeyPEM: c.WechatPay.PlatformPublicKeyPEM, PlatformPublicKeyID: c.WechatPay.PlatformPublicKeyID,
			APIBaseURL: url,
		}
}

// runSandbox is `paycenter sandbox`: the sandbox channels alone, with one registered
// Alipay app and WeChat Pay merchant whose settings are printed for SetChannelConfig.
func runSandbox(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	pair, url, err := startSandbox(ctx, cfg.SandboxAddr, logger)
	if err != nil {
		return err
	}
	creds, err := pair.NewCredentials(1)
	if err != nil {
		return err
	}
	alipay, wechat := sandboxSettings(creds, url)
	out, _ := json.MarshalIndent(map[string]any{
		"alipay": map[string]string{"alipay_app_id": alipay.AlipayAppID, "app_private_key_pem": alipay.AppPrivateKeyPEM,
			"alipay_public_key_pem": alipay.AlipayPublicKeyPEM, "gateway_url": alipay.GatewayURL},
		"wechatpay": map[string]string{"mch_id": wechat.MchID, "wechat_app_id": wechat.WechatAppID,
			"merchant_certificate_serial": wechat.MerchantCertificateSerial, "merchant_private_key_pem": wechat.MerchantPrivateKeyPEM,
			"api_v3_key": wechat.APIv3Key, "platform_public_key_pem": wechat.PlatformPublicKeyPEM,
			"platform_public_key_id": wechat.PlatformPublicKeyID, "api_base_url": wechat.APIBaseURL},
	}, "", "  ")
	fmt.Printf("sandbox channels on %s\nchannel settings for SetChannelConfig (new keys on every start):\n%s\n", url, out)
	<-ctx.Done()
	return nil
}
