package merchant

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/paycenter/paycenter/server/internal/errs"
)

func validName(field, s string) error {
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) || n < 1 || n > 128 || strings.TrimSpace(s) != s {
		return errs.Invalid(field, "must be 1 to 128 characters without leading or trailing spaces")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errs.Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

func validEmail(field, s string) error {
	if s == "" {
		return nil
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || len(s) > 254 {
		return errs.Invalid(field, "must be an e-mail address like ops@example.com")
	}
	return nil
}

// validURL checks an absolute http(s) URL; empty is allowed when optional.
func validURL(field, s string, optional bool) error {
	if s == "" && optional {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(s) > 2048 || u.User != nil {
		return errs.Invalid(field, "must be an absolute http or https URL of at most 2048 characters")
	}
	return nil
}

func validReason(field, s string) error {
	n := utf8.RuneCountInString(s)
	if n < 1 || n > 256 {
		return errs.Invalid(field, "must be 1 to 256 characters")
	}
	return nil
}

func required(field, s string) error {
	if s == "" {
		return errs.Invalid(field, "is required")
	}
	if len(s) > 64 {
		return errs.Invalid(field, "must be at most 64 characters")
	}
	return nil
}

var (
	digits    = regexp.MustCompile(`^[0-9]{1,32}$`)
	hexSerial = regexp.MustCompile(`^[0-9A-Fa-f]{8,64}$`)
	plainID   = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)
)

func matches(field, s string, re *regexp.Regexp, what string) error {
	if !re.MatchString(s) {
		return errs.Invalid(field, "must be %s", what)
	}
	return nil
}

// parseRSAPrivateKey accepts PKCS#1 or PKCS#8 PEM.
func parseRSAPrivateKey(field, s string) error {
	block, rest := pem.Decode([]byte(s))
	if block == nil || strings.TrimSpace(string(rest)) != "" {
		return errs.Invalid(field, "must be one PEM-encoded RSA private key")
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return errs.Invalid(field, "is not a PKCS#1 or PKCS#8 private key")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return errs.Invalid(field, "must be an RSA key")
	}
	if rk.N.BitLen() < 2048 {
		return errs.Invalid(field, "must be an RSA key of at least 2048 bits")
	}
	return nil
}

// parseRSAPublicKey accepts PKIX or PKCS#1 PEM.
func parseRSAPublicKey(field, s string) error {
	block, rest := pem.Decode([]byte(s))
	if block == nil || strings.TrimSpace(string(rest)) != "" {
		return errs.Invalid(field, "must be one PEM-encoded RSA public key")
	}
	if _, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		return nil
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return errs.Invalid(field, "is not a PKIX or PKCS#1 public key")
	}
	if _, ok := key.(*rsa.PublicKey); !ok {
		return errs.Invalid(field, "must be an RSA key")
	}
	return nil
}

func validateAlipay(c AlipaySettings) error {
	for _, err := range []error{
		matches("alipay.alipay_app_id", c.AlipayAppID, digits, "1 to 32 digits"),
		parseRSAPrivateKey("alipay.app_private_key_pem", c.AppPrivateKeyPEM),
		parseRSAPublicKey("alipay.alipay_public_key_pem", c.AlipayPublicKeyPEM),
		validURL("alipay.gateway_url", c.GatewayURL, false),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func validateWechatPay(c WechatPaySettings) error {
	for _, err := range []error{
		matches("wechatpay.mch_id", c.MchID, digits, "1 to 32 digits"),
		matches("wechatpay.wechat_app_id", c.WechatAppID, plainID, "1 to 64 of [0-9A-Za-z_-]"),
		matches("wechatpay.merchant_certificate_serial", c.MerchantCertificateSerial, hexSerial, "8 to 64 hex digits"),
		parseRSAPrivateKey("wechatpay.merchant_private_key_pem", c.MerchantPrivateKeyPEM),
		validAPIv3Key(c.APIv3Key),
		parseRSAPublicKey("wechatpay.platform_public_key_pem", c.PlatformPublicKeyPEM),
		matches("wechatpay.platform_public_key_id", c.PlatformPublicKeyID, plainID, "1 to 64 of [0-9A-Za-z_-]"),
		validURL("wechatpay.api_base_url", c.APIBaseURL, false),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func validAPIv3Key(k string) error {
	if len(k) != 32 {
		return errs.Invalid("wechatpay.api_v3_key", "must be exactly 32 bytes (got %d)", len(k))
	}
	return nil
}
