// Package wechatpay is paycenter's WeChat Pay channel: channel.Channel over WeChat Pay API
// v3 with github.com/wechatpay-apiv3/wechatpay-go in public-key mode (no platform
// certificate downloads). Every call gets the app's configuration; its api_base_url alone
// decides between WeChat Pay's host and another one such as a sandbox (see
// ProductionBaseURL). Amounts are integer fen on the wire too; the currency is CNY.
package wechatpay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/app"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/h5"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/jsapi"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/native"
	"github.com/wechatpay-apiv3/wechatpay-go/services/refunddomestic"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/merchant"
)

// DefaultTimeout bounds one call to WeChat Pay when New is not given WithTimeout.
const DefaultTimeout = 10 * time.Second

// beijing is WeChat Pay's time zone for time_expire (China has no daylight saving time).
var beijing = time.FixedZone("CST", 8*60*60)

// Limits of WeChat Pay request fields, in bytes (description) and characters (reason).
const (
	maxDescription  = 127
	maxRefundReason = 80
)

// Channel is the WeChat Pay adapter. It is safe for concurrent use.
type Channel struct {
	httpClient *http.Client
	timeout    time.Duration
	clients    channel.ClientCache[*client]
}

var _ channel.Channel = (*Channel)(nil)

// Option configures a Channel.
type Option func(*Channel)

// WithHTTPClient sets the client whose Transport and Timeout reach WeChat Pay (default:
// http.DefaultTransport, 30 s). Its Transport is wrapped when api_base_url is not WeChat
// Pay's production host.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Channel) {
		if hc != nil {
			c.httpClient = hc
		}
	}
}

// WithTimeout bounds each call to WeChat Pay (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *Channel) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// New returns a WeChat Pay adapter.
func New(opts ...Option) *Channel {
	c := &Channel{httpClient: &http.Client{Timeout: 30 * time.Second}, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

// appParams are what the WeChat app SDK (PayReq) needs to open the payment, signed by the
// merchant over appid\ntimestamp\nnoncestr\nprepayid\n.
type appParams struct {
	AppID     string `json:"appid"`
	PartnerID string `json:"partnerid"`
	PrepayID  string `json:"prepayid"`
	Package   string `json:"package"`
	NonceStr  string `json:"noncestr"`
	Timestamp string `json:"timestamp"`
	Sign      string `json:"sign"`
}

// jsapiParams are the arguments of WeixinJSBridge getBrandWCPayRequest / wx.requestPayment,
// signed by the merchant over appId\ntimeStamp\nnonceStr\npackage\n.
type jsapiParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// Prepay opens the order: QR is a native order (PayerAction.QRCode = code_url), WAP an H5
// order (PayURL = h5_url, with redirect_url = ReturnURL when given; needs ClientIP), APP an
// app order (AppParams: JSON for the WeChat app SDK), JSAPI a JSAPI order (JSAPIParams: JSON
// for wx.requestPayment; needs OpenID). WeChat Pay has no PC web cashier: PC_PAGE is
// channel.ErrUnsupportedMethod (a PC page shows the QR method's code instead). A request the
// method cannot serve (no openid, no client IP, a currency other than CNY) is
// channel.ErrUnsupportedMethod too.
func (c *Channel) Prepay(ctx context.Context, cfg merchant.ChannelConfig, req channel.PrepayRequest) (channel.PayerAction, error) {
	op := fmt.Sprintf("wechatpay prepay %s (%s)", req.TradeNo, req.Method)
	switch {
	case req.Method != channel.MethodQR && req.Method != channel.MethodWAP && req.Method != channel.MethodApp && req.Method != channel.MethodJSAPI:
		return channel.PayerAction{}, fmt.Errorf("%s: %w", op, channel.ErrUnsupportedMethod)
	case req.Currency != "" && req.Currency != "CNY":
		return channel.PayerAction{}, fmt.Errorf("%s: currency %q (CNY only): %w", op, req.Currency, channel.ErrUnsupportedMethod)
	case req.Method == channel.MethodJSAPI && req.OpenID == "":
		return channel.PayerAction{}, fmt.Errorf("%s: JSAPI needs the payer's openid: %w", op, channel.ErrUnsupportedMethod)
	case req.Method == channel.MethodWAP && req.ClientIP == "":
		return channel.PayerAction{}, fmt.Errorf("%s: H5 needs the payer's client IP: %w", op, channel.ErrUnsupportedMethod)
	case req.Amount < 1:
		return channel.PayerAction{}, fmt.Errorf("%s: amount %d fen is not positive", op, req.Amount)
	}
	if err := checkNotifyURL(req.NotifyURL); err != nil {
		return channel.PayerAction{}, fmt.Errorf("%s: %w", op, err)
	}
	cl, err := c.client(cfg)
	if err != nil {
		return channel.PayerAction{}, err
	}
	var expire *time.Time
	if !req.ExpireAt.IsZero() {
		t := req.ExpireAt.Truncate(time.Second).In(beijing) // RFC 3339 without fractions, +08:00
		expire = &t
	}
	appID, mchID := core.String(cl.appID), core.String(cl.mchID)
	desc, outTradeNo, notifyURL := core.String(description(req)), core.String(req.TradeNo), core.String(req.NotifyURL)
	total, cny := core.Int64(req.Amount), core.String("CNY")

	var action channel.PayerAction
	err = c.call(ctx, func(ctx context.Context) error {
		switch req.Method {
		case channel.MethodQR:
			rsp, _, err := (&native.NativeApiService{Client: cl.api}).Prepay(ctx, native.PrepayRequest{
				Appid: appID, Mchid: mchID, Description: desc, OutTradeNo: outTradeNo, TimeExpire: expire,
				NotifyUrl: notifyURL, Amount: &native.Amount{Total: total, Currency: cny},
			})
			if err != nil {
				return err
			}
			if rsp.CodeUrl == nil || *rsp.CodeUrl == "" {
				return errors.New("no code_url in the answer")
			}
			action.QRCode = *rsp.CodeUrl
		case channel.MethodWAP:
			rsp, _, err := (&h5.H5ApiService{Client: cl.api}).Prepay(ctx, h5.PrepayRequest{
				Appid: appID, Mchid: mchID, Description: desc, OutTradeNo: outTradeNo, TimeExpire: expire,
				NotifyUrl: notifyURL, Amount: &h5.Amount{Total: total, Currency: cny},
				SceneInfo: &h5.SceneInfo{PayerClientIp: core.String(req.ClientIP), H5Info: &h5.H5Info{Type: core.String("Wap")}},
			})
			if err != nil {
				return err
			}
			if rsp.H5Url == nil || *rsp.H5Url == "" {
				return errors.New("no h5_url in the answer")
			}
			action.PayURL = withRedirect(*rsp.H5Url, req.ReturnURL)
		case channel.MethodApp:
			rsp, _, err := (&app.AppApiService{Client: cl.api}).PrepayWithRequestPayment(ctx, app.PrepayRequest{
				Appid: appID, Mchid: mchID, Description: desc, OutTradeNo: outTradeNo, TimeExpire: expire,
				NotifyUrl: notifyURL, Amount: &app.Amount{Total: total, Currency: cny},
			})
			if err != nil {
				return err
			}
			b, err := json.Marshal(appParams{
				AppID: cl.appID, PartnerID: deref(rsp.PartnerId), PrepayID: deref(rsp.PrepayId), Package: deref(rsp.Package),
				NonceStr: deref(rsp.NonceStr), Timestamp: deref(rsp.TimeStamp), Sign: deref(rsp.Sign),
			})
			if err != nil {
				return err
			}
			action.AppParams = string(b)
		case channel.MethodJSAPI:
			rsp, _, err := (&jsapi.JsapiApiService{Client: cl.api}).PrepayWithRequestPayment(ctx, jsapi.PrepayRequest{
				Appid: appID, Mchid: mchID, Description: desc, OutTradeNo: outTradeNo, TimeExpire: expire,
				NotifyUrl: notifyURL, Amount: &jsapi.Amount{Total: total, Currency: cny},
				Payer: &jsapi.Payer{Openid: core.String(req.OpenID)},
			})
			if err != nil {
				return err
			}
			b, err := json.Marshal(jsapiParams{
				AppID: deref(rsp.Appid), TimeStamp: deref(rsp.TimeStamp), NonceStr: deref(rsp.NonceStr),
				Package: deref(rsp.Package), SignType: deref(rsp.SignType), PaySign: deref(rsp.PaySign),
			})
			if err != nil {
				return err
			}
			action.JSAPIParams = string(b)
		}
		return nil
	})
	if err != nil {
		return channel.PayerAction{}, callError(op, err)
	}
	return action, nil
}

// description is the order description WeChat shows: at most 127 bytes of UTF-8.
func description(req channel.PrepayRequest) string {
	s := strings.TrimSpace(req.Subject)
	if s == "" {
		return req.TradeNo
	}
	for len(s) > maxDescription {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// withRedirect appends redirect_url to an h5_url, as WeChat's H5 documentation says: the
// payer's browser returns there after paying.
func withRedirect(h5URL, returnURL string) string {
	if returnURL == "" {
		return h5URL
	}
	sep := "&"
	if !strings.Contains(h5URL, "?") {
		sep = "?"
	}
	return h5URL + sep + "redirect_url=" + url.QueryEscape(returnURL)
}

// checkNotifyURL enforces WeChat's rule: an absolute http(s) URL without a query string
// (routing belongs in the path).
func checkNotifyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("notify_url %q is not an absolute http(s) URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("notify_url %q has a query string, which WeChat Pay refuses", s)
	}
	return nil
}

// Query asks for an order by out_trade_no. SUCCESS and REFUND (paid, then refunded in part
// or in full) are SUCCEEDED, NOTPAY and USERPAYING are PENDING, CLOSED and REVOKED are
// CLOSED, PAYERROR is FAILED; ORDER_NOT_EXIST is channel.ErrTradeNotFound. Amount is
// amount.total, the order's amount (what paycenter asked for), not payer_total, which
// coupons can lower.
func (c *Channel) Query(ctx context.Context, cfg merchant.ChannelConfig, tradeNo string) (channel.Trade, error) {
	op := "wechatpay query " + tradeNo
	cl, err := c.client(cfg)
	if err != nil {
		return channel.Trade{}, err
	}
	var tx *payments.Transaction
	err = c.call(ctx, func(ctx context.Context) (err error) {
		tx, _, err = (&native.NativeApiService{Client: cl.api}).QueryOrderByOutTradeNo(ctx, native.QueryOrderByOutTradeNoRequest{
			OutTradeNo: core.String(tradeNo), Mchid: core.String(cl.mchID),
		})
		return err
	})
	if err != nil {
		if notFound(err) {
			return channel.Trade{}, fmt.Errorf("%s: %w", op, channel.ErrTradeNotFound)
		}
		return channel.Trade{}, callError(op, err)
	}
	t, err := tradeOf(tx)
	if err != nil {
		return channel.Trade{}, fmt.Errorf("%s: %w", op, err)
	}
	if t.TradeNo != tradeNo {
		return channel.Trade{}, fmt.Errorf("%s: WeChat Pay answered about order %q", op, t.TradeNo)
	}
	return t, nil
}

// tradeOf maps a transaction (from a query or a notification).
func tradeOf(tx *payments.Transaction) (channel.Trade, error) {
	t := channel.Trade{TradeNo: deref(tx.OutTradeNo), TransactionID: deref(tx.TransactionId), Currency: "CNY"}
	if tx.Amount != nil {
		if tx.Amount.Total != nil {
			t.Amount = *tx.Amount.Total
		}
		if tx.Amount.Currency != nil && *tx.Amount.Currency != "" {
			t.Currency = *tx.Amount.Currency
		}
	}
	switch state := deref(tx.TradeState); state {
	case "SUCCESS", "REFUND":
		if tx.Amount == nil || tx.Amount.Total == nil {
			return channel.Trade{}, errors.New("paid order without amount.total")
		}
		t.State = channel.TradeSucceeded
		if paid, err := time.Parse(time.RFC3339, deref(tx.SuccessTime)); err == nil {
			t.PaidAt = paid
		}
	case "NOTPAY", "USERPAYING":
		t.State = channel.TradePending
	case "CLOSED", "REVOKED":
		t.State = channel.TradeClosed
	case "PAYERROR":
		t.State = channel.TradeFailed
	default:
		return channel.Trade{}, fmt.Errorf("unknown trade_state %q", state)
	}
	return t, nil
}

// Close closes an unpaid order. ORDERPAID is channel.ErrTradePaid; an order WeChat Pay does
// not know (ORDER_NOT_EXIST) or already closed is nil. Closing never moves money.
func (c *Channel) Close(ctx context.Context, cfg merchant.ChannelConfig, tradeNo string) error {
	op := "wechatpay close " + tradeNo
	cl, err := c.client(cfg)
	if err != nil {
		return err
	}
	err = c.call(ctx, func(ctx context.Context) error {
		_, err := (&native.NativeApiService{Client: cl.api}).CloseOrder(ctx, native.CloseOrderRequest{
			OutTradeNo: core.String(tradeNo), Mchid: core.String(cl.mchID),
		})
		return err
	})
	switch {
	case err == nil, notFound(err), apiCode(err) == "ORDER_CLOSED":
		return nil
	case apiCode(err) == "ORDERPAID" || apiCode(err) == "ORDER_PAID":
		return fmt.Errorf("%s: %w", op, channel.ErrTradePaid)
	}
	return callError(op, err)
}

// Refund creates a domestic refund with out_refund_no = RefundNo (the same number again is
// the same refund). PROCESSING is PENDING, SUCCESS SUCCEEDED, ABNORMAL and CLOSED FAILED.
// When WeChat Pay refuses the request (400/403: insufficient balance, amount beyond what
// is refundable...), the adapter asks for the refund by number: if none exists the refusal
// is final and the refund is FAILED with WeChat's code as reason; if one exists, its state
// is the answer. A FAILED refund's amount becomes refundable again, so FAILED is only said
// when no refund exists.
func (c *Channel) Refund(ctx context.Context, cfg merchant.ChannelConfig, req channel.RefundRequest) (channel.Refund, error) {
	op := fmt.Sprintf("wechatpay refund %s of %s", req.RefundNo, req.TradeNo)
	switch {
	case req.Currency != "" && req.Currency != "CNY":
		return channel.Refund{}, fmt.Errorf("%s: currency %q (CNY only)", op, req.Currency)
	case req.Amount < 1 || req.TotalAmount < req.Amount:
		return channel.Refund{}, fmt.Errorf("%s: amount %d of total %d fen", op, req.Amount, req.TotalAmount)
	}
	create := refunddomestic.CreateRequest{
		OutTradeNo: core.String(req.TradeNo), OutRefundNo: core.String(req.RefundNo),
		Amount: &refunddomestic.AmountReq{Refund: core.Int64(req.Amount), Total: core.Int64(req.TotalAmount), Currency: core.String("CNY")},
	}
	if reason := strings.TrimSpace(req.Reason); reason != "" {
		if utf8.RuneCountInString(reason) > maxRefundReason {
			reason = string([]rune(reason)[:maxRefundReason])
		}
		create.Reason = core.String(reason)
	}
	if req.NotifyURL != "" {
		if err := checkNotifyURL(req.NotifyURL); err != nil {
			return channel.Refund{}, fmt.Errorf("%s: %w", op, err)
		}
		create.NotifyUrl = core.String(req.NotifyURL)
	}
	cl, err := c.client(cfg)
	if err != nil {
		return channel.Refund{}, err
	}
	var rsp *refunddomestic.Refund
	err = c.call(ctx, func(ctx context.Context) (err error) {
		rsp, _, err = (&refunddomestic.RefundsApiService{Client: cl.api}).Create(ctx, create)
		return err
	})
	switch {
	case err == nil:
		return refundOf(rsp)
	case notFound(err):
		return channel.Refund{}, fmt.Errorf("%s: %w", op, channel.ErrTradeNotFound)
	case !refused(err):
		return channel.Refund{}, callError(op, err)
	}
	refusal := callError(op, err)
	existing, qerr := c.queryRefund(ctx, cl, req.RefundNo)
	switch {
	case errors.Is(qerr, channel.ErrTradeNotFound):
		var apiErr *core.APIError
		errors.As(err, &apiErr)
		return channel.Refund{
			TradeNo: req.TradeNo, RefundNo: req.RefundNo, Amount: req.Amount, State: channel.RefundFailed,
			FailureReason: apiErr.Code + ": " + apiErr.Message,
		}, nil
	case qerr != nil:
		return channel.Refund{}, fmt.Errorf("%w (then %v)", refusal, qerr)
	case existing.TradeNo != req.TradeNo || existing.Amount != req.Amount:
		return channel.Refund{}, fmt.Errorf("%w: refund %s exists with other terms (trade %s, %d fen)", refusal, req.RefundNo, existing.TradeNo, existing.Amount)
	}
	return existing, nil
}

// refused tells whether WeChat Pay turned a request down for business reasons, as opposed
// to failing (5xx, rate limit) or not accepting paycenter's credentials.
func refused(err error) bool {
	var apiErr *core.APIError
	if !errors.As(err, &apiErr) || (apiErr.StatusCode != http.StatusBadRequest && apiErr.StatusCode != http.StatusForbidden) {
		return false
	}
	switch apiErr.Code {
	case "", "SIGN_ERROR", "MCH_NOT_EXISTS", "SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED":
		return false
	}
	return true
}

// QueryRefund asks for a refund by out_refund_no; RESOURCE_NOT_EXISTS is
// channel.ErrTradeNotFound (submit it again: refunds are idempotent on the number).
func (c *Channel) QueryRefund(ctx context.Context, cfg merchant.ChannelConfig, tradeNo, refundNo string) (channel.Refund, error) {
	cl, err := c.client(cfg)
	if err != nil {
		return channel.Refund{}, err
	}
	r, err := c.queryRefund(ctx, cl, refundNo)
	if err != nil {
		return channel.Refund{}, err
	}
	if tradeNo != "" && r.TradeNo != tradeNo {
		return channel.Refund{}, fmt.Errorf("wechatpay query refund %s: it belongs to order %q, not %q", refundNo, r.TradeNo, tradeNo)
	}
	return r, nil
}

func (c *Channel) queryRefund(ctx context.Context, cl *client, refundNo string) (channel.Refund, error) {
	op := "wechatpay query refund " + refundNo
	var rsp *refunddomestic.Refund
	err := c.call(ctx, func(ctx context.Context) (err error) {
		rsp, _, err = (&refunddomestic.RefundsApiService{Client: cl.api}).QueryByOutRefundNo(ctx,
			refunddomestic.QueryByOutRefundNoRequest{OutRefundNo: core.String(refundNo)})
		return err
	})
	if err != nil {
		if notFound(err) {
			return channel.Refund{}, fmt.Errorf("%s: %w", op, channel.ErrTradeNotFound)
		}
		return channel.Refund{}, callError(op, err)
	}
	r, err := refundOf(rsp)
	if err != nil {
		return channel.Refund{}, fmt.Errorf("%s: %w", op, err)
	}
	return r, nil
}

func refundOf(r *refunddomestic.Refund) (channel.Refund, error) {
	out := channel.Refund{TradeNo: deref(r.OutTradeNo), RefundNo: deref(r.OutRefundNo), ChannelRefundID: deref(r.RefundId)}
	if r.Amount != nil && r.Amount.Refund != nil {
		out.Amount = *r.Amount.Refund
	}
	status := ""
	if r.Status != nil {
		status = string(*r.Status)
	}
	state, reason, err := refundState(status)
	if err != nil {
		return channel.Refund{}, err
	}
	out.State, out.FailureReason = state, reason
	return out, nil
}

func refundState(status string) (channel.RefundState, string, error) {
	switch status {
	case "SUCCESS":
		return channel.RefundSucceeded, "", nil
	case "PROCESSING":
		return channel.RefundPending, "", nil
	case "ABNORMAL", "CLOSED":
		return channel.RefundFailed, status, nil
	}
	return "", "", fmt.Errorf("unknown refund status %q", status)
}

// call runs one request to WeChat Pay under the adapter's timeout.
func (c *Channel) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return f(ctx)
}

// apiCode is the code of WeChat Pay's error answer, or "".
func apiCode(err error) string {
	var apiErr *core.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return ""
}

// notFound tells whether WeChat Pay said the order or refund does not exist.
func notFound(err error) bool {
	var apiErr *core.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.Code {
	case "ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS":
		return true
	}
	return false
}

// apiError is WeChat Pay's error answer in one line (the SDK's own message lists every
// response header); it unwraps to the *core.APIError.
type apiError struct {
	op  string
	err *core.APIError
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s: WeChat Pay answered %d %s: %s", e.op, e.err.StatusCode, e.err.Code, e.err.Message)
}

func (e *apiError) Unwrap() error { return e.err }

func callError(op string, err error) error {
	var apiErr *core.APIError
	if errors.As(err, &apiErr) {
		return &apiError{op: op, err: apiErr}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
