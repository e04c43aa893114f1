// Package alipay is paycenter's Alipay channel: channel.Channel over the Alipay OpenAPI
// gateway with github.com/smartwalle/alipay/v3 (RSA2, public-key mode). Every call gets the
// app's configuration; its gateway URL alone decides between Alipay's production gateway
// and a sandbox (see ProductionGateway).
//
// Amounts cross this package as int64 fen and become Alipay's "12.34" yuan strings only at
// the wire, with integer arithmetic (FormatYuan, ParseYuan).
package alipay

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	alipaysdk "github.com/smartwalle/alipay/v3"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/merchant"
)

// DefaultTimeout bounds one call to Alipay when New is not given WithTimeout.
const DefaultTimeout = 10 * time.Second

// wireTime is Alipay's time format, in Beijing time.
const wireTime = "2006-01-02 15:04:05"

// beijing is Alipay's time zone (China has no daylight saving time).
var beijing = time.FixedZone("CST", 8*60*60)

// Product codes of the four ways to pay.
const (
	productQR     = "FACE_TO_FACE_PAYMENT"
	productPCPage = "FAST_INSTANT_TRADE_PAY"
	productWAP    = "QUICK_WAP_WAY"
	productApp    = "QUICK_MSECURITY_PAY"
)

// Alipay sub-codes the adapter acts on.
const (
	subTradeNotExist     = "ACQ.TRADE_NOT_EXIST"
	subSystemError       = "ACQ.SYSTEM_ERROR"
	subDiscordantRequest = "ACQ.DISCORDANT_REPEAT_REQUEST"
)

// ErrCancelRefunded: closing an order Alipay did not know yet used alipay.trade.cancel (so
// that an unscanned precreate QR code dies), and the payer paid in the instant between the
// two calls, so Alipay's cancel refunded the payment in full. The trade is closed and the
// money is back with the payer; Close returns this (it is not channel.ErrTradePaid: nothing
// remains paid) so that the race is logged and the payment is re-examined.
var ErrCancelRefunded = errors.New("alipay cancel refunded a payment made while the trade was being closed")

// Channel is the Alipay adapter. It is safe for concurrent use.
type Channel struct {
	httpClient *http.Client
	timeout    time.Duration
	clients    channel.ClientCache[*alipaysdk.Client]
}

var _ channel.Channel = (*Channel)(nil)

// Option configures a Channel.
type Option func(*Channel)

// WithHTTPClient sets the client that reaches Alipay (default: a client with a 30 s timeout
// over http.DefaultTransport).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Channel) {
		if hc != nil {
			c.httpClient = hc
		}
	}
}

// WithTimeout bounds each call to Alipay (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *Channel) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// New returns an Alipay adapter.
func New(opts ...Option) *Channel {
	c := &Channel{httpClient: &http.Client{Timeout: 30 * time.Second}, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Prepay opens the trade: QR is alipay.trade.precreate (PayerAction.QRCode), PC_PAGE and
// WAP are the signed alipay.trade.page.pay / wap.pay URLs the payer's browser opens
// (PayURL), APP is the signed order string for the Alipay app SDK (AppParams). Alipay has
// no JSAPI: channel.ErrUnsupportedMethod. Only the QR method calls Alipay here; the others
// reach Alipay when the payer opens them.
func (c *Channel) Prepay(ctx context.Context, cfg merchant.ChannelConfig, req channel.PrepayRequest) (channel.PayerAction, error) {
	switch req.Method {
	case channel.MethodQR, channel.MethodPCPage, channel.MethodWAP, channel.MethodApp:
	default:
		return channel.PayerAction{}, fmt.Errorf("alipay prepay %s: method %q: %w", req.TradeNo, req.Method, channel.ErrUnsupportedMethod)
	}
	if req.Currency != "" && req.Currency != "CNY" {
		return channel.PayerAction{}, fmt.Errorf("alipay prepay %s: currency %q (CNY only): %w", req.TradeNo, req.Currency, channel.ErrUnsupportedMethod)
	}
	amount, err := FormatYuan(req.Amount)
	if err != nil {
		return channel.PayerAction{}, fmt.Errorf("alipay prepay %s: %w", req.TradeNo, err)
	}
	cl, err := c.client(cfg)
	if err != nil {
		return channel.PayerAction{}, err
	}
	trade := alipaysdk.Trade{
		NotifyURL: req.NotifyURL, ReturnURL: req.ReturnURL,
		Subject: subject(req), OutTradeNo: req.TradeNo, TotalAmount: amount,
	}
	expire := ""
	if !req.ExpireAt.IsZero() {
		expire = req.ExpireAt.In(beijing).Format(wireTime)
	}
	op := fmt.Sprintf("alipay prepay %s (%s)", req.TradeNo, req.Method)
	switch req.Method {
	case channel.MethodQR:
		trade.ProductCode, trade.TimeExpire = productQR, expire
		var rsp *alipaysdk.TradePreCreateRsp
		err := c.call(ctx, func(ctx context.Context) (err error) {
			rsp, err = cl.TradePreCreate(ctx, alipaysdk.TradePreCreate{Trade: trade})
			return err
		})
		if err != nil {
			return channel.PayerAction{}, callError(op, err)
		}
		if !rsp.IsSuccess() {
			return channel.PayerAction{}, businessError(op, rsp.Error)
		}
		if rsp.QRCode == "" {
			return channel.PayerAction{}, fmt.Errorf("%s: Alipay returned no qr_code", op)
		}
		return channel.PayerAction{QRCode: rsp.QRCode}, nil
	case channel.MethodPCPage:
		trade.ProductCode, trade.TimeExpire = productPCPage, expire
		u, err := cl.TradePagePay(alipaysdk.TradePagePay{Trade: trade})
		if err != nil {
			return channel.PayerAction{}, fmt.Errorf("%s: %w", op, err)
		}
		return channel.PayerAction{PayURL: u.String()}, nil
	case channel.MethodWAP:
		trade.ProductCode = productWAP
		// TradeWapPay has its own time_expire field, which shadows Trade's in the JSON.
		u, err := cl.TradeWapPay(alipaysdk.TradeWapPay{Trade: trade, QuitURL: req.ReturnURL, TimeExpire: expire})
		if err != nil {
			return channel.PayerAction{}, fmt.Errorf("%s: %w", op, err)
		}
		return channel.PayerAction{PayURL: u.String()}, nil
	default: // channel.MethodApp
		trade.ProductCode, trade.TimeExpire = productApp, expire
		order, err := cl.TradeAppPay(alipaysdk.TradeAppPay{Trade: trade})
		if err != nil {
			return channel.PayerAction{}, fmt.Errorf("%s: %w", op, err)
		}
		return channel.PayerAction{AppParams: order}, nil
	}
}

// subject is the order title Alipay shows: 1 to 256 characters.
func subject(req channel.PrepayRequest) string {
	s := strings.TrimSpace(req.Subject)
	if s == "" {
		return req.TradeNo
	}
	if utf8.RuneCountInString(s) > 256 {
		s = string([]rune(s)[:256])
	}
	return s
}

// Query is alipay.trade.query. TRADE_SUCCESS and TRADE_FINISHED are SUCCEEDED (Amount from
// total_amount, TransactionID = trade_no, PaidAt from send_pay_date), WAIT_BUYER_PAY is
// PENDING, TRADE_CLOSED is CLOSED (closed unpaid, or paid and fully refunded: either way no
// money is kept), ACQ.TRADE_NOT_EXIST is channel.ErrTradeNotFound (page, wap, app and
// precreate trades exist at Alipay only once the payer opened them).
func (c *Channel) Query(ctx context.Context, cfg merchant.ChannelConfig, tradeNo string) (channel.Trade, error) {
	cl, err := c.client(cfg)
	if err != nil {
		return channel.Trade{}, err
	}
	return c.query(ctx, cl, tradeNo)
}

func (c *Channel) query(ctx context.Context, cl *alipaysdk.Client, tradeNo string) (channel.Trade, error) {
	op := "alipay query " + tradeNo
	var rsp *alipaysdk.TradeQueryRsp
	err := c.call(ctx, func(ctx context.Context) (err error) {
		rsp, err = cl.TradeQuery(ctx, alipaysdk.TradeQuery{OutTradeNo: tradeNo})
		return err
	})
	if err != nil {
		return channel.Trade{}, callError(op, err)
	}
	if !rsp.IsSuccess() {
		if rsp.SubCode == subTradeNotExist {
			return channel.Trade{}, fmt.Errorf("%s: %w", op, channel.ErrTradeNotFound)
		}
		return channel.Trade{}, businessError(op, rsp.Error)
	}
	if rsp.OutTradeNo != "" && rsp.OutTradeNo != tradeNo {
		return channel.Trade{}, fmt.Errorf("%s: Alipay answered about trade %s", op, rsp.OutTradeNo)
	}
	t := channel.Trade{TradeNo: tradeNo, TransactionID: rsp.TradeNo, Currency: "CNY"}
	if rsp.TransCurrency != "" {
		t.Currency = rsp.TransCurrency
	}
	amount, amountErr := ParseYuan(rsp.TotalAmount)
	t.Amount = amount
	switch rsp.TradeStatus {
	case alipaysdk.TradeStatusSuccess, alipaysdk.TradeStatusFinished:
		if amountErr != nil {
			return channel.Trade{}, fmt.Errorf("%s: total_amount: %w", op, amountErr)
		}
		t.State = channel.TradeSucceeded
		if rsp.SendPayDate != "" {
			if paid, err := time.ParseInLocation(wireTime, rsp.SendPayDate, beijing); err == nil {
				t.PaidAt = paid
			}
		}
	case alipaysdk.TradeStatusWaitBuyerPay:
		t.State = channel.TradePending
	case alipaysdk.TradeStatusClosed:
		t.State = channel.TradeClosed
	default:
		return channel.Trade{}, fmt.Errorf("%s: unknown trade_status %q", op, rsp.TradeStatus)
	}
	return t, nil
}

// Close makes an unpaid trade unpayable without ever moving money:
//
//  1. alipay.trade.close. Success: closed. It never refunds; on a paid trade it fails.
//  2. Close said ACQ.TRADE_NOT_EXIST: Alipay does not know the trade yet — a precreate QR
//     code nobody scanned (or a page/wap/app order never opened). Only alipay.trade.cancel
//     kills an unscanned QR code, so the adapter cancels: the trade was unknown a moment
//     ago, so it was not paid. Cancel answering ACQ.TRADE_NOT_EXIST means there is nothing
//     to close (nil). In the instant between the two calls the payer could still scan and
//     pay; Alipay's cancel then refunds in full (action=refund) and Close returns
//     ErrCancelRefunded. A page/wap/app order never opened stays openable until its
//     time_expire, which Prepay always sends: a late payment is then a payment after close.
//  3. Close failed otherwise (ACQ.TRADE_STATUS_ERROR on a paid or finished trade...): the
//     adapter queries. Paid is channel.ErrTradePaid, closed is nil, unknown is step 2,
//     anything else is the close's error.
//
// Cancel is never sent for a trade Alipay reported as existing, so a paid trade is never
// refunded by Close.
func (c *Channel) Close(ctx context.Context, cfg merchant.ChannelConfig, tradeNo string) error {
	cl, err := c.client(cfg)
	if err != nil {
		return err
	}
	op := "alipay close " + tradeNo
	var rsp *alipaysdk.TradeCloseRsp
	err = c.call(ctx, func(ctx context.Context) (err error) {
		rsp, err = cl.TradeClose(ctx, alipaysdk.TradeClose{OutTradeNo: tradeNo})
		return err
	})
	if err != nil {
		return callError(op, err)
	}
	if rsp.IsSuccess() {
		return nil
	}
	if rsp.SubCode == subTradeNotExist {
		return c.cancelUnknown(ctx, cl, tradeNo)
	}
	closeErr := businessError(op, rsp.Error)
	t, err := c.query(ctx, cl, tradeNo)
	switch {
	case errors.Is(err, channel.ErrTradeNotFound):
		return c.cancelUnknown(ctx, cl, tradeNo)
	case err != nil:
		return fmt.Errorf("%w (then %v)", closeErr, err)
	case t.State == channel.TradeSucceeded:
		return fmt.Errorf("%s: %w", op, channel.ErrTradePaid)
	case t.State == channel.TradeClosed:
		return nil
	}
	return closeErr
}

// cancelUnknown cancels a trade that alipay.trade.close just reported as unknown.
func (c *Channel) cancelUnknown(ctx context.Context, cl *alipaysdk.Client, tradeNo string) error {
	op := "alipay cancel " + tradeNo
	var rsp *alipaysdk.TradeCancelRsp
	err := c.call(ctx, func(ctx context.Context) (err error) {
		rsp, err = cl.TradeCancel(ctx, alipaysdk.TradeCancel{OutTradeNo: tradeNo})
		return err
	})
	if err != nil {
		return callError(op, err)
	}
	if !rsp.IsSuccess() {
		if rsp.SubCode == subTradeNotExist {
			return nil // nothing to close
		}
		return businessError(op, rsp.Error)
	}
	if rsp.Action == "refund" {
		return fmt.Errorf("%s: %w", op, ErrCancelRefunded)
	}
	return nil
}

// Refund is alipay.trade.refund with out_request_no = RefundNo, so a repeated request is
// the same refund. fund_change=Y is SUCCEEDED; N (processing, or a repeat of an earlier
// refund) is PENDING: QueryRefund settles it. A business refusal (insufficient balance,
// amount beyond what is refundable, trade closed...) means Alipay created no refund: it is
// FAILED with the sub-code as reason. Alipay system errors and a conflicting repeat of the
// same out_request_no are errors (retry later / look at it), never FAILED, because a FAILED
// refund's amount becomes refundable again.
func (c *Channel) Refund(ctx context.Context, cfg merchant.ChannelConfig, req channel.RefundRequest) (channel.Refund, error) {
	op := fmt.Sprintf("alipay refund %s of %s", req.RefundNo, req.TradeNo)
	if req.Currency != "" && req.Currency != "CNY" {
		return channel.Refund{}, fmt.Errorf("%s: currency %q (CNY only)", op, req.Currency)
	}
	amount, err := FormatYuan(req.Amount)
	if err != nil {
		return channel.Refund{}, fmt.Errorf("%s: %w", op, err)
	}
	cl, err := c.client(cfg)
	if err != nil {
		return channel.Refund{}, err
	}
	var rsp *alipaysdk.TradeRefundRsp
	err = c.call(ctx, func(ctx context.Context) (err error) {
		rsp, err = cl.TradeRefund(ctx, alipaysdk.TradeRefund{
			OutTradeNo: req.TradeNo, RefundAmount: amount, RefundReason: req.Reason, OutRequestNo: req.RefundNo,
		})
		return err
	})
	if err != nil {
		return channel.Refund{}, callError(op, err)
	}
	out := channel.Refund{TradeNo: req.TradeNo, RefundNo: req.RefundNo, Amount: req.Amount, State: channel.RefundPending}
	if !rsp.IsSuccess() {
		switch {
		case rsp.SubCode == subTradeNotExist:
			return channel.Refund{}, fmt.Errorf("%s: %w", op, channel.ErrTradeNotFound)
		case refusedRefund(rsp.Error):
			out.State, out.FailureReason = channel.RefundFailed, rsp.SubCode+": "+rsp.SubMsg
			return out, nil
		}
		return channel.Refund{}, businessError(op, rsp.Error)
	}
	if rsp.FundChange == "Y" {
		out.State = channel.RefundSucceeded
	}
	return out, nil
}

// refusedRefund tells whether Alipay definitely refused to create the refund.
func refusedRefund(e alipaysdk.Error) bool {
	if e.Code != alipaysdk.CodeBusinessFailed {
		return false
	}
	sub := e.SubCode
	return sub != "" && sub != subDiscordantRequest && !strings.Contains(sub, "SYSTEM_ERROR") && !strings.HasPrefix(sub, "isp.")
}

// QueryRefund is alipay.trade.fastpay.refund.query. REFUND_SUCCESS is SUCCEEDED. Alipay
// says nothing else: a refund it knows but has not finished (refund_status absent) is
// PENDING, and a refund it does not know at all (a bare success without out_request_no) is
// channel.ErrTradeNotFound, so the caller submits it again (idempotent).
func (c *Channel) QueryRefund(ctx context.Context, cfg merchant.ChannelConfig, tradeNo, refundNo string) (channel.Refund, error) {
	op := fmt.Sprintf("alipay query refund %s of %s", refundNo, tradeNo)
	cl, err := c.client(cfg)
	if err != nil {
		return channel.Refund{}, err
	}
	var rsp *alipaysdk.TradeFastPayRefundQueryRsp
	err = c.call(ctx, func(ctx context.Context) (err error) {
		rsp, err = cl.TradeFastPayRefundQuery(ctx, alipaysdk.TradeFastPayRefundQuery{OutTradeNo: tradeNo, OutRequestNo: refundNo})
		return err
	})
	if err != nil {
		return channel.Refund{}, callError(op, err)
	}
	if !rsp.IsSuccess() {
		if rsp.SubCode == subTradeNotExist {
			return channel.Refund{}, fmt.Errorf("%s: %w", op, channel.ErrTradeNotFound)
		}
		return channel.Refund{}, businessError(op, rsp.Error)
	}
	if rsp.OutRequestNo == "" && rsp.RefundStatus == "" {
		return channel.Refund{}, fmt.Errorf("%s: refund unknown to Alipay: %w", op, channel.ErrTradeNotFound)
	}
	if rsp.OutRequestNo != "" && rsp.OutRequestNo != refundNo {
		return channel.Refund{}, fmt.Errorf("%s: Alipay answered about refund %s", op, rsp.OutRequestNo)
	}
	out := channel.Refund{TradeNo: tradeNo, RefundNo: refundNo, State: channel.RefundPending}
	if rsp.RefundAmount != "" {
		amount, err := ParseYuan(rsp.RefundAmount)
		if err != nil {
			return channel.Refund{}, fmt.Errorf("%s: refund_amount: %w", op, err)
		}
		out.Amount = amount
	}
	if rsp.RefundStatus == "REFUND_SUCCESS" {
		out.State = channel.RefundSucceeded
	}
	return out, nil
}

// call runs one request to Alipay under the adapter's timeout.
func (c *Channel) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return f(ctx)
}

// callError wraps a failed call. A response whose signature does not verify is
// channel.ErrBadSignature; an unsigned error answer (Alipay could not authenticate the
// request: wrong key or app id) keeps Alipay's codes.
func callError(op string, err error) error {
	if errors.Is(err, rsa.ErrVerification) {
		return fmt.Errorf("%s: response %w", op, channel.ErrBadSignature)
	}
	var aerr *alipaysdk.Error
	if errors.As(err, &aerr) {
		return businessError(op, *aerr)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// businessError reports an answer whose code is not success.
func businessError(op string, e alipaysdk.Error) error {
	return fmt.Errorf("%s: Alipay answered %s %s: %s", op, e.Code, e.SubCode, e.SubMsg)
}
