package sandbox

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	// AlipayGatewayPath is the OpenAPI gateway endpoint; point the SDK at
	// base URL + AlipayGatewayPath with alipay.WithSandboxGateway.
	AlipayGatewayPath = "/gateway.do"
	// AlipayControlPrefix prefixes the Alipay sandbox's payer, cashier and
	// control endpoints.
	AlipayControlPrefix = "/sandbox/alipay"
)

// alipayTime is Alipay's wire format for times (Beijing time).
const alipayTime = "2006-01-02 15:04:05"

// maxBody bounds request bodies: a fake gateway gets garbage too.
const maxBody = 1 << 20

// AlipayOptions configures an Alipay sandbox.
type AlipayOptions struct {
	Options
	// HideUnscannedTrades makes query, close and refund answer
	// ACQ.TRADE_NOT_EXIST for a precreate trade until the payer has opened
	// its QR code, as real Alipay does (it creates the trade on scan).
	// Cancel still closes such a trade. Off by default.
	HideUnscannedTrades bool
}

// Alipay is a local Alipay OpenAPI gateway (RSA2, public-key mode). It is an
// http.Handler serving AlipayGatewayPath and AlipayControlPrefix.
type Alipay struct {
	opts     AlipayOptions
	log      *slog.Logger
	key      *rsa.PrivateKey
	keys     KeyPair
	instance string // random digits that keep trade numbers unique across restarts
	notifier *notifier
	mux      *http.ServeMux

	mu            sync.Mutex
	apps          map[string]*rsa.PublicKey
	book          book
	manualRefunds bool
	balanceShort  map[string]bool
}

// NewAlipay starts an Alipay sandbox, including its notification goroutine:
// call Close when done.
func NewAlipay(opts AlipayOptions) (*Alipay, error) {
	key, err := loadOrGenerateKey(opts.PrivateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("alipay sandbox key: %w", err)
	}
	keys, err := keyPairOf(key)
	if err != nil {
		return nil, fmt.Errorf("alipay sandbox key: %w", err)
	}
	log := opts.logger().With("sandbox", "alipay")
	a := &Alipay{
		opts: opts, log: log, key: key, keys: keys,
		instance:      randomString(6, "0123456789"),
		notifier:      opts.newNotifier(log, alipayRetrySchedule),
		apps:          map[string]*rsa.PublicKey{},
		book:          newBook(),
		manualRefunds: opts.ManualRefunds,
		balanceShort:  map[string]bool{},
	}
	a.routes()
	return a, nil
}

// Close stops notification delivery and waits for it to end.
func (a *Alipay) Close() { a.notifier.close() }

// PublicKeyPEM is the sandbox's "Alipay public key": load it into the SDK
// with client.LoadAliPayPublicKey to verify responses and notifications.
func (a *Alipay) PublicKeyPEM() string { return a.keys.PublicKeyPEM }

// RegisterApp makes appID known, with the app's public key (PEM or bare
// base64), as uploading it in the Alipay console would.
func (a *Alipay) RegisterApp(appID, appPublicKeyPEM string) error {
	if appID == "" {
		return fmt.Errorf("register alipay app: empty app id: %w", ErrRejected)
	}
	pub, err := ParsePublicKey(appPublicKeyPEM)
	if err != nil {
		return fmt.Errorf("register alipay app %s: %w", appID, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apps[appID] = pub
	return nil
}

// AlipayApp is a complete credential set for one Alipay app.
type AlipayApp struct {
	AppID              string
	PrivateKeyPEM      string // the app's private key: alipay.New(appID, PrivateKeyPEM, ...)
	PublicKeyPEM       string // the app's public key, registered with the sandbox
	AlipayPublicKeyPEM string // the sandbox's key: client.LoadAliPayPublicKey
}

// NewApp generates a key pair for appID, registers the app and returns
// everything a client needs.
func (a *Alipay) NewApp(appID string) (AlipayApp, error) {
	kp, err := GenerateKeyPair()
	if err != nil {
		return AlipayApp{}, err
	}
	if err := a.RegisterApp(appID, kp.PublicKeyPEM); err != nil {
		return AlipayApp{}, err
	}
	return AlipayApp{
		AppID: appID, PrivateKeyPEM: kp.PrivateKeyPEM, PublicKeyPEM: kp.PublicKeyPEM,
		AlipayPublicKeyPEM: a.keys.PublicKeyPEM,
	}, nil
}

func (a *Alipay) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *Alipay) routes() {
	a.mux = http.NewServeMux()
	a.mux.HandleFunc(AlipayGatewayPath, a.serveGateway)
	p := AlipayControlPrefix
	a.mux.HandleFunc("GET "+p+"/qr/{token}", a.serveQR)
	a.mux.HandleFunc("POST "+p+"/cashier/{token}/pay", a.serveCashierPay)
	a.mux.HandleFunc("POST "+p+"/app-orders", a.serveAppOrder)
	registerControl(a.mux, p, a)
}

// alipayError is an error answer in Alipay's format.
type alipayError struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	SubMsg  string `json:"sub_msg"`
	// unsigned: Alipay cannot vouch for requests it could not authenticate,
	// so those answers carry no signature (the SDK then returns them as an
	// *alipay.Error).
	unsigned bool
}

func (e *alipayError) Error() string { return e.Code + " " + e.SubCode + ": " + e.SubMsg }

func missingArgument(sub, msg string) *alipayError {
	return &alipayError{Code: "40001", Msg: "Missing Required Arguments", SubCode: sub, SubMsg: msg, unsigned: true}
}

func invalidArgument(sub, msg string) *alipayError {
	return &alipayError{Code: "40002", Msg: "Invalid Arguments", SubCode: sub, SubMsg: msg, unsigned: true}
}

func businessFailed(sub, msg string) *alipayError {
	return &alipayError{Code: "40004", Msg: "Business Failed", SubCode: sub, SubMsg: msg}
}

func invalidParameter(msg string) *alipayError { return businessFailed("ACQ.INVALID_PARAMETER", msg) }

// alipayResult opens every successful response object.
type alipayResult struct {
	Code string `json:"code"`
	Msg  string `json:"msg"`
}

var alipaySuccess = alipayResult{Code: "10000", Msg: "Success"}

// alipayBiz holds the biz_content fields the sandbox understands.
type alipayBiz struct {
	OutTradeNo     string `json:"out_trade_no"`
	TradeNo        string `json:"trade_no"`
	TotalAmount    string `json:"total_amount"`
	Subject        string `json:"subject"`
	ProductCode    string `json:"product_code"`
	TimeoutExpress string `json:"timeout_express"`
	TimeExpire     string `json:"time_expire"`
	PassbackParams string `json:"passback_params"`
	RefundAmount   string `json:"refund_amount"`
	RefundReason   string `json:"refund_reason"`
	OutRequestNo   string `json:"out_request_no"`
}

// alipayCall is one authenticated gateway request.
type alipayCall struct {
	appID  string
	method string
	form   url.Values
	biz    alipayBiz
	base   string
}

type alipayHandler func(a *Alipay, c *alipayCall) (any, *alipayError)

var alipayMethods = map[string]alipayHandler{
	"alipay.trade.precreate":            (*Alipay).precreate,
	"alipay.trade.query":                (*Alipay).query,
	"alipay.trade.close":                (*Alipay).closeTrade,
	"alipay.trade.cancel":               (*Alipay).cancel,
	"alipay.trade.refund":               (*Alipay).refund,
	"alipay.trade.fastpay.refund.query": (*Alipay).refundQuery,
}

// alipayPayMethods are answered with the cashier page, not JSON: the SDK
// builds their URL (page, wap) or order string (app) locally and the payer's
// browser or Alipay app brings it to the gateway.
var alipayPayMethods = map[string]bool{
	"alipay.trade.page.pay": true,
	"alipay.trade.wap.pay":  true,
	"alipay.trade.app.pay":  true,
}

func (a *Alipay) serveGateway(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		a.writeResponse(w, "error_response", invalidArgument("isv.invalid-parameter", "请求参数无法解析: "+err.Error()))
		return
	}
	method := r.Form.Get("method")
	if alipayPayMethods[method] {
		a.serveCashierOrder(w, r)
		return
	}
	handler, ok := alipayMethods[method]
	switch {
	case method == "":
		a.writeResponse(w, "error_response", missingArgument("isv.missing-method", "缺少方法名参数"))
		return
	case !ok:
		a.writeResponse(w, "error_response", invalidArgument("isv.invalid-method", "不存在的方法名: "+method))
		return
	}
	key := strings.ReplaceAll(method, ".", "_") + "_response"
	call, aerr := a.authenticate(r.Form)
	if aerr != nil {
		a.log.Info("alipay request rejected", "method", method, "sub_code", aerr.SubCode)
		a.writeResponse(w, key, aerr)
		return
	}
	call.base = a.opts.baseURL(r)
	a.mu.Lock()
	resp, aerr := handler(a, call)
	a.mu.Unlock()
	if aerr != nil {
		a.log.Info("alipay business failure", "method", method, "app_id", call.appID, "sub_code", aerr.SubCode)
		a.writeResponse(w, key, aerr)
		return
	}
	a.writeResponse(w, key, resp)
}

// authenticate checks the common parameters and the app's RSA2 signature,
// and decodes biz_content.
func (a *Alipay) authenticate(form url.Values) (*alipayCall, *alipayError) {
	appID := form.Get("app_id")
	switch {
	case appID == "":
		return nil, missingArgument("isv.missing-app-id", "缺少AppID参数")
	case form.Get("sign") == "":
		return nil, missingArgument("isv.missing-signature", "缺少签名参数")
	case form.Get("sign_type") != "RSA2":
		return nil, invalidArgument("isv.invalid-signature-type", "无效的签名类型: "+form.Get("sign_type"))
	case form.Get("charset") != "" && !strings.EqualFold(form.Get("charset"), "utf-8"):
		return nil, invalidArgument("isv.invalid-charset", "字符集错误")
	case form.Get("encrypt_type") != "":
		return nil, invalidArgument("isv.invalid-encrypt-type", "沙箱不支持接口内容加密")
	}
	a.mu.Lock()
	pub := a.apps[appID]
	a.mu.Unlock()
	if pub == nil {
		return nil, invalidArgument("isv.invalid-app-id", "无效的AppID参数")
	}
	content := signContent(form, "sign")
	if err := verifyRSA2(pub, content, form.Get("sign")); err != nil {
		return nil, invalidArgument("isv.invalid-signature",
			"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："+content)
	}
	call := &alipayCall{appID: appID, method: form.Get("method"), form: form}
	if bc := form.Get("biz_content"); bc != "" {
		if err := json.Unmarshal([]byte(bc), &call.biz); err != nil {
			return nil, invalidParameter("biz_content 不是合法的 JSON: " + err.Error())
		}
	}
	return call, nil
}

// signContent is Alipay's string to sign: every k=v pair except the ignored
// keys, sorted, joined by &, values unescaped.
func signContent(values url.Values, ignore ...string) string {
	pairs := make([]string, 0, len(values))
	for k, vs := range values {
		if contains(ignore, k) {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, k+"="+v)
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// writeResponse answers {"<key>": <object>, "sign": "..."}, the signature
// covering the exact bytes of <object> as written.
func (a *Alipay) writeResponse(w http.ResponseWriter, key string, v any) {
	signed := true
	if e, ok := v.(*alipayError); ok && e.unsigned {
		signed = false
	}
	raw, err := marshalJSON(v)
	if err != nil {
		a.log.Error("alipay response encoding failed", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	b.WriteString(`{"` + key + `":`)
	b.Write(raw)
	if signed {
		sig, err := signRSA2(a.key, string(raw))
		if err != nil {
			a.log.Error("alipay response signing failed", "error", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		b.WriteString(`,"sign":"` + sig + `"`)
	}
	b.WriteString("}")
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// marshalJSON encodes without HTML escaping (URLs keep their &) and without
// the encoder's trailing newline.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// alipayExpiry turns timeout_express ("90m", "2h", "1d", "1c") or
// time_expire ("2006-01-02 15:04[:05]", Beijing time) into a deadline.
func alipayExpiry(now time.Time, timeoutExpress, timeExpire string) (time.Time, error) {
	if timeExpire != "" {
		for _, layout := range []string{alipayTime, "2006-01-02 15:04"} {
			if t, err := time.ParseInLocation(layout, timeExpire, beijing); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("time_expire %q is not yyyy-MM-dd HH:mm:ss", timeExpire)
	}
	if timeoutExpress == "" {
		return time.Time{}, nil
	}
	if timeoutExpress == "1c" {
		y, m, d := now.In(beijing).Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, beijing), nil
	}
	n, unit := timeoutExpress[:len(timeoutExpress)-1], timeoutExpress[len(timeoutExpress)-1]
	var step time.Duration
	switch unit {
	case 'm':
		step = time.Minute
	case 'h':
		step = time.Hour
	case 'd':
		step = 24 * time.Hour
	}
	if step == 0 || n == "" || len(n) > 5 || !allDigits(n) {
		return time.Time{}, fmt.Errorf("timeout_express %q is not like 90m, 2h, 15d or 1c", timeoutExpress)
	}
	var count int
	for _, c := range n {
		count = count*10 + int(c-'0')
	}
	d := time.Duration(count) * step
	if d < time.Minute || d > 15*24*time.Hour {
		return time.Time{}, fmt.Errorf("timeout_express %q is outside 1m..15d", timeoutExpress)
	}
	return now.Add(d), nil
}
