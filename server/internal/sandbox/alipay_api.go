package sandbox

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// The handlers in this file run with a.mu held.

// alipaySellerID is the sandbox merchant's Alipay user id.
const alipaySellerID = "2088000000000001"

func alipayTradeStatus(t *trade) string {
	switch t.state {
	case tradePending:
		return "WAIT_BUYER_PAY"
	case tradePaid:
		// A fully refunded trade is closed at Alipay.
		if t.refunded() >= t.amount {
			return "TRADE_CLOSED"
		}
		return "TRADE_SUCCESS"
	default:
		return "TRADE_CLOSED"
	}
}

func alipayRefundStatus(r *refund) string {
	switch r.state {
	case refundSucceeded:
		return "REFUND_SUCCESS"
	case refundFailed:
		return "REFUND_FAIL"
	default:
		return "REFUND_PROCESSING"
	}
}

// checkOutNo validates a merchant number: Alipay allows up to 64 letters,
// digits and underscores.
func checkOutNo(field, v string) *alipayError {
	if v == "" || len(v) > 64 {
		return invalidParameter(field + " 不能为空且不超过64个字符")
	}
	for _, c := range v {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return invalidParameter(field + " 只能包含字母、数字、下划线")
		}
	}
	return nil
}

// orderTerms are the fields every way of creating a trade carries.
type orderTerms struct {
	amount   int64
	expireAt time.Time
}

func checkOrder(b alipayBiz, now time.Time) (orderTerms, *alipayError) {
	if aerr := checkOutNo("out_trade_no", b.OutTradeNo); aerr != nil {
		return orderTerms{}, aerr
	}
	if b.Subject == "" || utf8.RuneCountInString(b.Subject) > 256 {
		return orderTerms{}, invalidParameter("subject 不能为空且不超过256个字符")
	}
	amount, err := parseYuan(b.TotalAmount)
	if err != nil {
		return orderTerms{}, invalidParameter("total_amount: " + err.Error())
	}
	expireAt, err := alipayExpiry(now, b.TimeoutExpress, b.TimeExpire)
	if err != nil {
		return orderTerms{}, invalidParameter(err.Error())
	}
	if !expireAt.IsZero() && !expireAt.After(now) {
		return orderTerms{}, invalidParameter("time_expire 不能早于当前时间")
	}
	return orderTerms{amount: amount, expireAt: expireAt}, nil
}

// existingOrder answers a repeated order for the same out_trade_no the way
// Alipay does: the same terms continue the pending trade, anything else fails.
func existingOrder(t *trade, b alipayBiz, terms orderTerms) *alipayError {
	switch t.state {
	case tradePaid:
		return businessFailed("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
	case tradeClosed, tradeFailed:
		return businessFailed("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
	}
	if t.amount != terms.amount || t.subject != b.Subject {
		return businessFailed("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
	}
	return nil
}

// newTrade records a trade created by c. Callers hold a.mu.
func (a *Alipay) newTrade(c *alipayCall, terms orderTerms, now time.Time) *trade {
	seq := a.book.next()
	t := &trade{
		owner:      c.appID,
		outTradeNo: c.biz.OutTradeNo,
		channelNo:  fmt.Sprintf("%s2200%s%010d", now.In(beijing).Format("20060102"), a.instance, seq),
		product:    c.method,
		subject:    c.biz.Subject,
		attach:     c.biz.PassbackParams,
		amount:     terms.amount,
		currency:   "CNY",
		notifyURL:  c.form.Get("notify_url"),
		returnURL:  c.form.Get("return_url"),
		token:      "bax0" + randomString(20, "0123456789abcdefghijklmnopqrstuvwxyz"),
		state:      tradePending,
		expireAt:   terms.expireAt,
		created:    now,
	}
	a.book.add(t)
	return t
}

type alipayPrecreateResponse struct {
	alipayResult
	OutTradeNo string `json:"out_trade_no"`
	QRCode     string `json:"qr_code"`
}

func (a *Alipay) precreate(c *alipayCall) (any, *alipayError) {
	now := time.Now()
	terms, aerr := checkOrder(c.biz, now)
	if aerr != nil {
		return nil, aerr
	}
	t := a.book.get(c.appID, c.biz.OutTradeNo, now)
	if t != nil {
		if aerr := existingOrder(t, c.biz, terms); aerr != nil {
			return nil, aerr
		}
	} else {
		t = a.newTrade(c, terms, now)
	}
	return alipayPrecreateResponse{
		alipayResult: alipaySuccess,
		OutTradeNo:   t.outTradeNo,
		QRCode:       c.base + AlipayControlPrefix + "/qr/" + t.token,
	}, nil
}

// findTrade resolves trade_no (preferred, as at Alipay) or out_trade_no.
// includeUnscanned lets cancel reach trades the payer never opened.
func (a *Alipay) findTrade(c *alipayCall, includeUnscanned bool) (*trade, *alipayError) {
	now := time.Now()
	var t *trade
	switch {
	case c.biz.TradeNo != "":
		t = a.book.getByChannelNo(c.appID, c.biz.TradeNo, now)
	case c.biz.OutTradeNo != "":
		t = a.book.get(c.appID, c.biz.OutTradeNo, now)
	default:
		return nil, invalidParameter("out_trade_no 和 trade_no 不能同时为空")
	}
	if t == nil || (!includeUnscanned && a.opts.HideUnscannedTrades && !t.scanned) {
		return nil, businessFailed("ACQ.TRADE_NOT_EXIST", "交易不存在")
	}
	return t, nil
}

type alipayQueryResponse struct {
	alipayResult
	TradeNo        string `json:"trade_no"`
	OutTradeNo     string `json:"out_trade_no"`
	BuyerLogonID   string `json:"buyer_logon_id,omitempty"`
	BuyerUserID    string `json:"buyer_user_id,omitempty"`
	TradeStatus    string `json:"trade_status"`
	TotalAmount    string `json:"total_amount"`
	BuyerPayAmount string `json:"buyer_pay_amount"`
	PointAmount    string `json:"point_amount"`
	InvoiceAmount  string `json:"invoice_amount"`
	ReceiptAmount  string `json:"receipt_amount"`
	SendPayDate    string `json:"send_pay_date,omitempty"`
}

func (a *Alipay) query(c *alipayCall) (any, *alipayError) {
	t, aerr := a.findTrade(c, false)
	if aerr != nil {
		return nil, aerr
	}
	resp := alipayQueryResponse{
		alipayResult: alipaySuccess,
		TradeNo:      t.channelNo, OutTradeNo: t.outTradeNo,
		TradeStatus:    alipayTradeStatus(t),
		TotalAmount:    formatYuan(t.amount),
		BuyerPayAmount: "0.00", PointAmount: "0.00", InvoiceAmount: "0.00", ReceiptAmount: "0.00",
	}
	if t.state == tradePaid {
		paid := formatYuan(t.amount)
		resp.BuyerPayAmount, resp.InvoiceAmount, resp.ReceiptAmount = paid, paid, paid
		resp.BuyerUserID, resp.BuyerLogonID = t.payerID, maskedLogon
		resp.SendPayDate = t.paidAt.In(beijing).Format(alipayTime)
	}
	return resp, nil
}

type alipayCloseResponse struct {
	alipayResult
	TradeNo    string `json:"trade_no"`
	OutTradeNo string `json:"out_trade_no"`
}

func (a *Alipay) closeTrade(c *alipayCall) (any, *alipayError) {
	t, aerr := a.findTrade(c, false)
	if aerr != nil {
		return nil, aerr
	}
	switch t.state {
	case tradePaid:
		return nil, businessFailed("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
	case tradePending:
		t.state, t.closedAt = tradeClosed, time.Now()
		a.notifyTrade(t, nil, c.form.Get("notify_url"))
	}
	// Closing a closed trade again succeeds: the merchant's wish holds.
	return alipayCloseResponse{alipayResult: alipaySuccess, TradeNo: t.channelNo, OutTradeNo: t.outTradeNo}, nil
}

type alipayCancelResponse struct {
	alipayResult
	TradeNo    string `json:"trade_no"`
	OutTradeNo string `json:"out_trade_no"`
	RetryFlag  string `json:"retry_flag"`
	Action     string `json:"action"`
}

// cancel closes an unpaid trade or refunds a paid one in full: the reversal
// a merchant uses when it does not know whether the payer paid.
func (a *Alipay) cancel(c *alipayCall) (any, *alipayError) {
	t, aerr := a.findTrade(c, true)
	if aerr != nil {
		return nil, aerr
	}
	now := time.Now()
	action := "close"
	switch t.state {
	case tradePending:
		t.state, t.closedAt = tradeClosed, now
		a.notifyTrade(t, nil, c.form.Get("notify_url"))
	case tradePaid:
		if left := t.refundable(); left > 0 {
			action = "refund"
			r := &refund{
				outRefundNo: t.outTradeNo + "_cancel", amount: left, reason: "cancel",
				state: refundSucceeded, created: now, doneAt: now,
			}
			t.refunds = append(t.refunds, r)
			a.notifyTrade(t, r, c.form.Get("notify_url"))
		}
	}
	return alipayCancelResponse{
		alipayResult: alipaySuccess, TradeNo: t.channelNo, OutTradeNo: t.outTradeNo,
		RetryFlag: "N", Action: action,
	}, nil
}

type alipayRefundResponse struct {
	alipayResult
	TradeNo      string `json:"trade_no"`
	OutTradeNo   string `json:"out_trade_no"`
	BuyerLogonID string `json:"buyer_logon_id"`
	BuyerUserID  string `json:"buyer_user_id"`
	FundChange   string `json:"fund_change"`
	RefundFee    string `json:"refund_fee"`
	GmtRefundPay string `json:"gmt_refund_pay,omitempty"`
	SendBackFee  string `json:"send_back_fee,omitempty"`
}

func (a *Alipay) refund(c *alipayCall) (any, *alipayError) {
	t, aerr := a.findTrade(c, false)
	if aerr != nil {
		return nil, aerr
	}
	amount, err := parseYuan(c.biz.RefundAmount)
	if err != nil {
		return nil, invalidParameter("refund_amount: " + err.Error())
	}
	outRequestNo := c.biz.OutRequestNo
	if outRequestNo == "" {
		// Alipay's default: one full refund keyed by the trade itself.
		outRequestNo = t.outTradeNo
	}
	if aerr := checkOutNo("out_request_no", outRequestNo); aerr != nil {
		return nil, aerr
	}
	resp := func(r *refund, fundChange string) alipayRefundResponse {
		out := alipayRefundResponse{
			alipayResult: alipaySuccess, TradeNo: t.channelNo, OutTradeNo: t.outTradeNo,
			BuyerLogonID: maskedLogon, BuyerUserID: t.payerID,
			FundChange: fundChange, RefundFee: formatYuan(t.refunded()),
		}
		if r.state == refundSucceeded {
			out.GmtRefundPay = r.doneAt.In(beijing).Format(alipayTime)
			out.SendBackFee = formatYuan(r.amount)
		}
		return out
	}
	if r := t.findRefund(outRequestNo); r != nil {
		if r.amount != amount {
			return nil, businessFailed("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致")
		}
		// A repeated request changes nothing and says so.
		return resp(r, "N"), nil
	}
	switch {
	case t.state == tradePending:
		return nil, businessFailed("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
	case t.state != tradePaid:
		return nil, businessFailed("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
	case amount > t.refundable():
		return nil, businessFailed("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
	case a.balanceShort[t.owner]:
		return nil, businessFailed("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")
	}
	now := time.Now()
	r := &refund{
		outRefundNo: outRequestNo, amount: amount, reason: c.biz.RefundReason,
		state: refundProcessing, created: now,
	}
	t.refunds = append(t.refunds, r)
	if a.manualRefunds {
		return resp(r, "N"), nil
	}
	a.finishRefund(t, r, true)
	return resp(r, "Y"), nil
}

type alipayRefundQueryResponse struct {
	alipayResult
	TradeNo      string `json:"trade_no,omitempty"`
	OutTradeNo   string `json:"out_trade_no,omitempty"`
	OutRequestNo string `json:"out_request_no,omitempty"`
	TotalAmount  string `json:"total_amount,omitempty"`
	RefundAmount string `json:"refund_amount,omitempty"`
	RefundStatus string `json:"refund_status,omitempty"`
	GmtRefundPay string `json:"gmt_refund_pay,omitempty"`
}

// refundQuery answers like Alipay: an unknown, processing or failed refund
// is a plain success without refund_status; only REFUND_SUCCESS is ever said.
func (a *Alipay) refundQuery(c *alipayCall) (any, *alipayError) {
	t, aerr := a.findTrade(c, false)
	if aerr != nil {
		return nil, aerr
	}
	if c.biz.OutRequestNo == "" {
		return nil, invalidParameter("out_request_no 不能为空")
	}
	r := t.findRefund(c.biz.OutRequestNo)
	if r == nil {
		return alipayRefundQueryResponse{alipayResult: alipaySuccess}, nil
	}
	resp := alipayRefundQueryResponse{
		alipayResult: alipaySuccess, TradeNo: t.channelNo, OutTradeNo: t.outTradeNo,
		OutRequestNo: r.outRefundNo, TotalAmount: formatYuan(t.amount), RefundAmount: formatYuan(r.amount),
	}
	if r.state == refundSucceeded {
		resp.RefundStatus = "REFUND_SUCCESS"
		resp.GmtRefundPay = r.doneAt.In(beijing).Format(alipayTime)
	}
	return resp, nil
}

// finishRefund settles a processing refund and tells the merchant when it
// succeeded (Alipay sends trade_status_sync with refund_fee). Callers hold a.mu.
func (a *Alipay) finishRefund(t *trade, r *refund, ok bool) {
	r.doneAt = time.Now()
	if !ok {
		r.state = refundFailed
		return
	}
	r.state = refundSucceeded
	a.notifyTrade(t, r, "")
}
