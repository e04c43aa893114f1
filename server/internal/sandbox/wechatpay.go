package sandbox

import (
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WechatPayControlPrefix prefixes the WeChat Pay sandbox's payer, cashier
// and control endpoints. The API itself lives under /v3/, as at WeChat.
const WechatPayControlPrefix = "/sandbox/wechatpay"

// wechatAuthType is the only signature scheme of API v3 (RSA keys).
const wechatAuthType = "WECHATPAY2-SHA256-RSA2048"

// wechatClockSkew is how far a request timestamp may be from the sandbox's
// clock, as at WeChat Pay (and in the SDK's own response check).
const wechatClockSkew = 5 * time.Minute

// WechatPayOptions configures a WeChat Pay sandbox.
type WechatPayOptions struct {
	Options
	// PublicKeyID names the sandbox's "WeChat Pay public key" in the
	// Wechatpay-Serial header. Empty generates one like PUB_KEY_ID_01....
	PublicKeyID string
}

// WechatPay is a local WeChat Pay API v3 server in public-key mode (no
// platform certificates). It is an http.Handler serving /v3/... and
// WechatPayControlPrefix. The SDK cannot be given a host, so clients reach it
// through RewriteTransport.
type WechatPay struct {
	opts        WechatPayOptions
	log         *slog.Logger
	key         *rsa.PrivateKey
	keys        KeyPair
	publicKeyID string
	instance    string // random digits that keep ids unique across restarts
	notifier    *notifier
	mux         *http.ServeMux

	mu            sync.Mutex
	merchants     map[string]*wechatMerchant
	book          book
	refunds       map[tradeKey]*trade // (mchid, out_refund_no) → its trade
	manualRefunds bool
	balanceShort  map[string]bool
}

type wechatMerchant struct {
	serialNo  string
	publicKey *rsa.PublicKey
	apiV3Key  []byte
}

// NewWechatPay starts a WeChat Pay sandbox, including its notification
// goroutine: call Close when done.
func NewWechatPay(opts WechatPayOptions) (*WechatPay, error) {
	key, err := loadOrGenerateKey(opts.PrivateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("wechatpay sandbox key: %w", err)
	}
	keys, err := keyPairOf(key)
	if err != nil {
		return nil, fmt.Errorf("wechatpay sandbox key: %w", err)
	}
	keyID := opts.PublicKeyID
	if keyID == "" {
		keyID = "PUB_KEY_ID_01" + randomString(26, "0123456789")
	}
	log := opts.logger().With("sandbox", "wechatpay")
	wx := &WechatPay{
		opts: opts, log: log, key: key, keys: keys, publicKeyID: keyID,
		instance:      randomString(6, "0123456789"),
		notifier:      opts.newNotifier(log, wechatRetrySchedule),
		merchants:     map[string]*wechatMerchant{},
		book:          newBook(),
		refunds:       map[tradeKey]*trade{},
		manualRefunds: opts.ManualRefunds,
		balanceShort:  map[string]bool{},
	}
	wx.routes()
	return wx, nil
}

// Close stops notification delivery and waits for it to end.
func (wx *WechatPay) Close() { wx.notifier.close() }

// PublicKeyPEM is the sandbox's "WeChat Pay public key" (PKIX PEM).
func (wx *WechatPay) PublicKeyPEM() string { return wx.keys.PublicKeyPEM }

// PublicKeyID is the id sent in Wechatpay-Serial, for
// option.WithWechatPayPublicKeyAuthCipher and
// verifiers.NewSHA256WithRSAPubkeyVerifier.
func (wx *WechatPay) PublicKeyID() string { return wx.publicKeyID }

// PublicKey is the sandbox's public key, parsed.
func (wx *WechatPay) PublicKey() *rsa.PublicKey { return &wx.key.PublicKey }

func (wx *WechatPay) publicKey() (pem, id string) { return wx.keys.PublicKeyPEM, wx.publicKeyID }

// RegisterMerchant makes mchID known with its API certificate serial
// number, its public key and its 32-byte APIv3 key (which encrypts
// notifications), as the merchant platform would.
func (wx *WechatPay) RegisterMerchant(mchID, serialNo, merchantPublicKeyPEM, apiV3Key string) error {
	if mchID == "" || serialNo == "" {
		return fmt.Errorf("register wechatpay merchant: mchid and serial number are required: %w", ErrRejected)
	}
	if len(apiV3Key) != 32 {
		return fmt.Errorf("register wechatpay merchant %s: APIv3 key must be 32 bytes: %w", mchID, ErrRejected)
	}
	pub, err := ParsePublicKey(merchantPublicKeyPEM)
	if err != nil {
		return fmt.Errorf("register wechatpay merchant %s: %w", mchID, err)
	}
	wx.mu.Lock()
	defer wx.mu.Unlock()
	wx.merchants[mchID] = &wechatMerchant{serialNo: serialNo, publicKey: pub, apiV3Key: []byte(apiV3Key)}
	return nil
}

// WechatMerchant is a complete credential set for one WeChat Pay merchant.
type WechatMerchant struct {
	MchID                string
	SerialNo             string // the merchant API certificate's serial number
	PrivateKeyPEM        string // the merchant's private key (PKCS#8), signs requests
	PublicKeyPEM         string // registered with the sandbox
	APIv3Key             string // 32 bytes, decrypts notifications
	PlatformPublicKeyID  string // the sandbox's key id (Wechatpay-Serial)
	PlatformPublicKeyPEM string // the sandbox's public key, verifies responses and notifications
}

// NewMerchant generates keys, a serial number and an APIv3 key for mchID,
// registers the merchant and returns everything a client needs.
func (wx *WechatPay) NewMerchant(mchID string) (WechatMerchant, error) {
	kp, err := GenerateKeyPair()
	if err != nil {
		return WechatMerchant{}, err
	}
	m := WechatMerchant{
		MchID:                mchID,
		SerialNo:             randomString(40, "0123456789ABCDEF"),
		PrivateKeyPEM:        kp.PrivateKeyPEM,
		PublicKeyPEM:         kp.PublicKeyPEM,
		APIv3Key:             randomString(32, alnum),
		PlatformPublicKeyID:  wx.publicKeyID,
		PlatformPublicKeyPEM: wx.keys.PublicKeyPEM,
	}
	if err := wx.RegisterMerchant(m.MchID, m.SerialNo, m.PublicKeyPEM, m.APIv3Key); err != nil {
		return WechatMerchant{}, err
	}
	return m, nil
}

func (wx *WechatPay) ServeHTTP(w http.ResponseWriter, r *http.Request) { wx.mux.ServeHTTP(w, r) }

func (wx *WechatPay) routes() {
	wx.mux = http.NewServeMux()
	wx.mux.HandleFunc("POST /v3/pay/transactions/{kind}", wx.api(wx.prepay))
	wx.mux.HandleFunc("GET /v3/pay/transactions/out-trade-no/{out_trade_no}", wx.api(wx.queryByOutTradeNo))
	wx.mux.HandleFunc("GET /v3/pay/transactions/id/{transaction_id}", wx.api(wx.queryByTransactionID))
	wx.mux.HandleFunc("POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close", wx.api(wx.closeOrder))
	wx.mux.HandleFunc("POST /v3/refund/domestic/refunds", wx.api(wx.createRefund))
	wx.mux.HandleFunc("GET /v3/refund/domestic/refunds/{out_refund_no}", wx.api(wx.queryRefund))
	wx.mux.HandleFunc("/v3/", func(w http.ResponseWriter, r *http.Request) {
		wx.writeError(w, &wechatError{http.StatusNotFound, "NOT_FOUND", "请求的资源不存在: " + r.Method + " " + r.URL.Path})
	})
	p := WechatPayControlPrefix
	wx.mux.HandleFunc("GET "+p+"/cashier/{token}", wx.serveCashier)
	wx.mux.HandleFunc("POST "+p+"/cashier/{token}/pay", wx.serveCashierPay)
	registerControl(wx.mux, p, wx)
}

// wechatError is an error answer in WeChat Pay's format.
type wechatError struct {
	status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *wechatError) Error() string { return e.Code + ": " + e.Message }

func paramError(msg string) *wechatError {
	return &wechatError{http.StatusBadRequest, "PARAM_ERROR", msg}
}

func invalidRequest(msg string) *wechatError {
	return &wechatError{http.StatusBadRequest, "INVALID_REQUEST", msg}
}

func signError(msg string) *wechatError {
	return &wechatError{http.StatusUnauthorized, "SIGN_ERROR", msg}
}

// wechatCall is one authenticated API request.
type wechatCall struct {
	mchID string
	body  []byte
	r     *http.Request
	base  string
}

// wechatHandler answers a status and a JSON body (nil for none). It runs
// with wx.mu held.
type wechatHandler func(c *wechatCall) (int, any, *wechatError)

func (wx *WechatPay) api(h wechatHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			wx.writeError(w, paramError("请求体无法读取: "+err.Error()))
			return
		}
		mchID, werr := wx.authenticate(r, body)
		if werr != nil {
			wx.log.Info("wechatpay request rejected", "path", r.URL.Path, "code", werr.Code, "message", werr.Message)
			wx.writeError(w, werr)
			return
		}
		c := &wechatCall{mchID: mchID, body: body, r: r, base: wx.opts.baseURL(r)}
		wx.mu.Lock()
		status, v, werr := h(c)
		wx.mu.Unlock()
		if werr != nil {
			wx.log.Info("wechatpay request failed", "path", r.URL.Path, "mchid", mchID, "code", werr.Code)
			wx.writeError(w, werr)
			return
		}
		wx.writeJSON(w, status, v)
	}
}

// authenticate checks the Authorization header: the merchant, its serial
// number, the timestamp and the signature over
// METHOD\nURI\ntimestamp\nnonce\nbody\n.
func (wx *WechatPay) authenticate(r *http.Request, body []byte) (string, *wechatError) {
	scheme, params, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if scheme != wechatAuthType {
		return "", signError("Authorization 头缺失或认证类型不是 " + wechatAuthType)
	}
	fields := parseAuthParams(params)
	mchID, nonce, ts, serial, sig := fields["mchid"], fields["nonce_str"], fields["timestamp"], fields["serial_no"], fields["signature"]
	if mchID == "" || nonce == "" || ts == "" || serial == "" || sig == "" {
		return "", signError("Authorization 缺少 mchid、nonce_str、timestamp、serial_no 或 signature")
	}
	wx.mu.Lock()
	m := wx.merchants[mchID]
	wx.mu.Unlock()
	if m == nil {
		return "", &wechatError{http.StatusBadRequest, "MCH_NOT_EXISTS", "商户号不存在"}
	}
	if serial != m.serialNo {
		return "", signError("商户证书序列号有误: " + serial)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || math.Abs(float64(time.Now().Unix()-unix)) > wechatClockSkew.Seconds() {
		return "", signError("请求的时间戳已过期或格式错误")
	}
	message := r.Method + "\n" + r.URL.RequestURI() + "\n" + ts + "\n" + nonce + "\n" + string(body) + "\n"
	if err := verifyRSA2(m.publicKey, message, sig); err != nil {
		return "", signError("签名错误")
	}
	return mchID, nil
}

// parseAuthParams splits k="v",k="v" (signatures are base64: no commas or
// quotes inside values).
func parseAuthParams(s string) map[string]string {
	fields := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			fields[k] = strings.Trim(v, `"`)
		}
	}
	return fields
}

func (wx *WechatPay) writeError(w http.ResponseWriter, e *wechatError) {
	wx.writeJSON(w, e.status, e)
}

// writeJSON answers with the Wechatpay-* signature headers over
// timestamp\nnonce\nbody\n, as WeChat Pay signs every answer (204 included).
func (wx *WechatPay) writeJSON(w http.ResponseWriter, status int, v any) {
	var body []byte
	if v != nil {
		var err error
		if body, err = marshalJSON(v); err != nil {
			wx.log.Error("wechatpay response encoding failed", "error", err)
			status, body = http.StatusInternalServerError, []byte(`{"code":"SYSTEM_ERROR","message":"系统错误"}`)
		}
	}
	h, err := wx.signatureHeaders(body, false)
	if err != nil {
		wx.log.Error("wechatpay response signing failed", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	for k, v := range h {
		w.Header()[k] = v
	}
	if body != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.Header().Set("Request-Id", randomString(32, "0123456789ABCDEF"))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// signatureHeaders signs body for a response or a notification. A forged
// signature covers different content, so it cannot verify.
func (wx *WechatPay) signatureHeaders(body []byte, forged bool) (http.Header, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := randomString(32, alnum)
	message := ts + "\n" + nonce + "\n" + string(body) + "\n"
	if forged {
		message += "forged\n"
	}
	sig, err := signRSA2(wx.key, message)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Wechatpay-Serial", wx.publicKeyID)
	h.Set("Wechatpay-Signature", sig)
	h.Set("Wechatpay-Timestamp", ts)
	h.Set("Wechatpay-Nonce", nonce)
	return h, nil
}
