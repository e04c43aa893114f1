package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// The handlers in this file run with wx.mu held.

// wechatTime is WeChat Pay's wire format for times (RFC 3339, Beijing time).
const wechatTime = time.RFC3339

var wechatTradeTypes = map[string]string{
	"native": "NATIVE",
	"jsapi":  "JSAPI",
	"h5":     "MWEB",
	"app":    "APP",
}

func wechatTradeState(t *trade) (state, desc string) {
	switch t.state {
	case tradePending:
		return "NOTPAY", "订单未支付"
	case tradePaid:
		if len(t.refunds) > 0 {
			return "REFUND", "转入退款"
		}
		return "SUCCESS", "支付成功"
	case tradeFailed:
		return "PAYERROR", "支付失败"
	default:
		return "CLOSED", "订单已关闭"
	}
}

func wechatRefundStatus(r *refund) string {
	switch r.state {
	case refundSucceeded:
		return "SUCCESS"
	case refundFailed:
		return "ABNORMAL"
	default:
		return "PROCESSING"
	}
}

// decodeBody decodes a JSON request body, answering PARAM_ERROR like WeChat.
func decodeBody(body []byte, v any) *wechatError {
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
		return paramError("输入源“/body”映射到值字段失败: " + err.Error())
	}
	return nil
}

// checkWechatNo validates out_trade_no / out_refund_no: WeChat allows
// letters, digits and _-|*@ within the given lengths.
func checkWechatNo(field, v string, minLen, maxLen int) *wechatError {
	if len(v) < minLen || len(v) > maxLen {
		return paramError(fmt.Sprintf("%s 长度须在 %d 到 %d 之间", field, minLen, maxLen))
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-' || c == '|' || c == '*' || c == '@') {
			return paramError(field + " 只能包含数字、大小写字母和_-|*@")
		}
	}
	return nil
}

type wechatPrepayRequest struct {
	Appid       string `json:"appid"`
	Mchid       string `json:"mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	TimeExpire  string `json:"time_expire"`
	Attach      string `json:"attach"`
	NotifyURL   string `json:"notify_url"`
	Amount      *struct {
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Payer *struct {
		Openid string `json:"openid"`
	} `json:"payer"`
	SceneInfo *struct {
		PayerClientIP string `json:"payer_client_ip"`
		H5Info        *struct {
			Type string `json:"type"`
		} `json:"h5_info"`
	} `json:"scene_info"`
}

func (req *wechatPrepayRequest) check(mchID, kind string) *wechatError {
	switch {
	case req.Appid == "" || len(req.Appid) > 32:
		return paramError("appid 不能为空且不超过32个字符")
	case req.Mchid != mchID:
		return paramError("mchid 与请求签名的商户号不一致")
	case req.Description == "" || len(req.Description) > 127:
		return paramError("description 不能为空且不超过127字节")
	case req.Amount == nil || req.Amount.Total == nil || *req.Amount.Total <= 0:
		return paramError("amount.total 必须为正整数（分）")
	case req.Amount.Currency != "" && req.Amount.Currency != "CNY":
		return paramError("amount.currency 仅支持 CNY")
	case kind == "jsapi" && (req.Payer == nil || req.Payer.Openid == ""):
		return paramError("JSAPI 下单 payer.openid 不能为空")
	case kind == "h5" && (req.SceneInfo == nil || req.SceneInfo.PayerClientIP == "" ||
		req.SceneInfo.H5Info == nil || req.SceneInfo.H5Info.Type == ""):
		return paramError("H5 下单 scene_info.payer_client_ip 和 scene_info.h5_info.type 不能为空")
	}
	if werr := checkWechatNo("out_trade_no", req.OutTradeNo, 6, 32); werr != nil {
		return werr
	}
	// WeChat wants a directly reachable URL without a query string.
	u, err := url.Parse(req.NotifyURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return paramError("notify_url 须为不带查询串的 http(s) 地址")
	}
	if req.TimeExpire != "" {
		expire, err := time.Parse(time.RFC3339, req.TimeExpire)
		if err != nil {
			return paramError("time_expire 须为 RFC 3339 格式")
		}
		if !expire.After(time.Now()) {
			return paramError("time_expire 不能早于当前时间")
		}
	}
	return nil
}

func (wx *WechatPay) prepay(c *wechatCall) (int, any, *wechatError) {
	kind := c.r.PathValue("kind")
	tradeType, ok := wechatTradeTypes[kind]
	if !ok {
		return 0, nil, &wechatError{http.StatusNotFound, "NOT_FOUND", "请求的资源不存在"}
	}
	var req wechatPrepayRequest
	if werr := decodeBody(c.body, &req); werr != nil {
		return 0, nil, werr
	}
	if werr := req.check(c.mchID, kind); werr != nil {
		return 0, nil, werr
	}
	now := time.Now()
	amount := *req.Amount.Total
	t := wx.book.get(c.mchID, req.OutTradeNo, now)
	if t != nil {
		switch {
		case t.state == tradePaid:
			return 0, nil, invalidRequestCode("ORDERPAID", "该订单已支付")
		case t.state != tradePending:
			return 0, nil, invalidRequestCode("ORDER_CLOSED", "该订单已关闭")
		case t.amount != amount || t.subject != req.Description || t.product != tradeType:
			return 0, nil, invalidRequestCode("OUT_TRADE_NO_USED", "商户订单号重复")
		}
	} else {
		var expireAt time.Time
		if req.TimeExpire != "" {
			expireAt, _ = time.Parse(time.RFC3339, req.TimeExpire)
		}
		t = &trade{
			owner: c.mchID, appID: req.Appid, outTradeNo: req.OutTradeNo, product: tradeType,
			subject: req.Description, attach: req.Attach, amount: amount, currency: "CNY",
			notifyURL: req.NotifyURL,
			token:     randomString(24, "0123456789abcdefghijklmnopqrstuvwxyz"),
			prepayID:  "wx" + now.In(beijing).Format("20060102150405") + randomString(22, "0123456789abcdef"),
			scanned:   true, state: tradePending, expireAt: expireAt, created: now,
		}
		wx.book.add(t)
	}
	cashier := c.base + WechatPayControlPrefix + "/cashier/" + t.token
	switch kind {
	case "native":
		return http.StatusOK, map[string]string{"code_url": cashier}, nil
	case "h5":
		return http.StatusOK, map[string]string{"h5_url": cashier + "?prepay_id=" + t.prepayID}, nil
	default:
		return http.StatusOK, map[string]string{"prepay_id": t.prepayID}, nil
	}
}

func invalidRequestCode(code, msg string) *wechatError {
	return &wechatError{http.StatusBadRequest, code, msg}
}

type wechatPayer struct {
	Openid string `json:"openid"`
}

type wechatAmount struct {
	Total         int64  `json:"total"`
	PayerTotal    *int64 `json:"payer_total,omitempty"`
	Currency      string `json:"currency"`
	PayerCurrency string `json:"payer_currency,omitempty"`
}

// wechatTransaction is payments.Transaction on the wire.
type wechatTransaction struct {
	Appid          string       `json:"appid"`
	Mchid          string       `json:"mchid"`
	OutTradeNo     string       `json:"out_trade_no"`
	TransactionID  string       `json:"transaction_id,omitempty"`
	TradeType      string       `json:"trade_type,omitempty"`
	TradeState     string       `json:"trade_state"`
	TradeStateDesc string       `json:"trade_state_desc"`
	BankType       string       `json:"bank_type,omitempty"`
	Attach         string       `json:"attach"`
	SuccessTime    string       `json:"success_time,omitempty"`
	Payer          *wechatPayer `json:"payer,omitempty"`
	Amount         wechatAmount `json:"amount"`
}

func transactionOf(t *trade) wechatTransaction {
	state, desc := wechatTradeState(t)
	tx := wechatTransaction{
		Appid: t.appID, Mchid: t.owner, OutTradeNo: t.outTradeNo, TransactionID: t.channelNo,
		TradeType: t.product, TradeState: state, TradeStateDesc: desc, Attach: t.attach,
		Amount: wechatAmount{Total: t.amount, Currency: t.currency},
	}
	if t.state == tradePaid {
		paid := t.amount
		tx.BankType = "OTHERS"
		tx.SuccessTime = t.paidAt.In(beijing).Format(wechatTime)
		tx.Payer = &wechatPayer{Openid: t.payerID}
		tx.Amount.PayerTotal, tx.Amount.PayerCurrency = &paid, t.currency
	}
	return tx
}

// checkQueryMchID checks the mchid query parameter the query URLs carry.
func checkQueryMchID(c *wechatCall) *wechatError {
	if q := c.r.URL.Query().Get("mchid"); q != c.mchID {
		return paramError("mchid 参数缺失或与请求签名的商户号不一致")
	}
	return nil
}

var errOrderNotExist = &wechatError{http.StatusNotFound, "ORDER_NOT_EXIST", "订单不存在"}

func (wx *WechatPay) queryByOutTradeNo(c *wechatCall) (int, any, *wechatError) {
	if werr := checkQueryMchID(c); werr != nil {
		return 0, nil, werr
	}
	t := wx.book.get(c.mchID, c.r.PathValue("out_trade_no"), time.Now())
	if t == nil {
		return 0, nil, errOrderNotExist
	}
	return http.StatusOK, transactionOf(t), nil
}

func (wx *WechatPay) queryByTransactionID(c *wechatCall) (int, any, *wechatError) {
	if werr := checkQueryMchID(c); werr != nil {
		return 0, nil, werr
	}
	t := wx.book.getByChannelNo(c.mchID, c.r.PathValue("transaction_id"), time.Now())
	if t == nil {
		return 0, nil, errOrderNotExist
	}
	return http.StatusOK, transactionOf(t), nil
}

func (wx *WechatPay) closeOrder(c *wechatCall) (int, any, *wechatError) {
	var req struct {
		Mchid string `json:"mchid"`
	}
	if werr := decodeBody(c.body, &req); werr != nil {
		return 0, nil, werr
	}
	if req.Mchid != c.mchID {
		return 0, nil, paramError("mchid 与请求签名的商户号不一致")
	}
	t := wx.book.get(c.mchID, c.r.PathValue("out_trade_no"), time.Now())
	switch {
	case t == nil:
		return 0, nil, errOrderNotExist
	case t.state == tradePaid:
		return 0, nil, invalidRequestCode("ORDERPAID", "订单已支付")
	case t.state == tradePending:
		t.state, t.closedAt = tradeClosed, time.Now()
	}
	// Closing a closed (or failed) order again succeeds, as at WeChat.
	return http.StatusNoContent, nil, nil
}

type wechatRefundRequest struct {
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
	OutRefundNo   string `json:"out_refund_no"`
	Reason        string `json:"reason"`
	NotifyURL     string `json:"notify_url"`
	Amount        *struct {
		Refund   *int64 `json:"refund"`
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

type wechatRefundAmount struct {
	Total            int64      `json:"total"`
	Refund           int64      `json:"refund"`
	From             []struct{} `json:"from"`
	PayerTotal       int64      `json:"payer_total"`
	PayerRefund      int64      `json:"payer_refund"`
	SettlementRefund int64      `json:"settlement_refund"`
	SettlementTotal  int64      `json:"settlement_total"`
	DiscountRefund   int64      `json:"discount_refund"`
	Currency         string     `json:"currency"`
}

// wechatRefund is refunddomestic.Refund on the wire.
type wechatRefund struct {
	RefundID            string             `json:"refund_id"`
	OutRefundNo         string             `json:"out_refund_no"`
	TransactionID       string             `json:"transaction_id"`
	OutTradeNo          string             `json:"out_trade_no"`
	Channel             string             `json:"channel"`
	UserReceivedAccount string             `json:"user_received_account"`
	SuccessTime         string             `json:"success_time,omitempty"`
	CreateTime          string             `json:"create_time"`
	Status              string             `json:"status"`
	FundsAccount        string             `json:"funds_account"`
	Amount              wechatRefundAmount `json:"amount"`
	PromotionDetail     []struct{}         `json:"promotion_detail"`
}

func refundOf(t *trade, r *refund) wechatRefund {
	out := wechatRefund{
		RefundID: r.refundID, OutRefundNo: r.outRefundNo, TransactionID: t.channelNo, OutTradeNo: t.outTradeNo,
		Channel: "ORIGINAL", UserReceivedAccount: "支付用户零钱",
		CreateTime: r.created.In(beijing).Format(wechatTime), Status: wechatRefundStatus(r),
		FundsAccount: "AVAILABLE",
		Amount: wechatRefundAmount{
			Total: t.amount, Refund: r.amount, From: []struct{}{}, PayerTotal: t.amount, PayerRefund: r.amount,
			SettlementRefund: r.amount, SettlementTotal: t.amount, Currency: t.currency,
		},
		PromotionDetail: []struct{}{},
	}
	if r.state == refundSucceeded {
		out.SuccessTime = r.doneAt.In(beijing).Format(wechatTime)
	}
	return out
}

func (wx *WechatPay) createRefund(c *wechatCall) (int, any, *wechatError) {
	var req wechatRefundRequest
	if werr := decodeBody(c.body, &req); werr != nil {
		return 0, nil, werr
	}
	if werr := checkWechatNo("out_refund_no", req.OutRefundNo, 1, 64); werr != nil {
		return 0, nil, werr
	}
	switch {
	case req.Amount == nil || req.Amount.Refund == nil || req.Amount.Total == nil:
		return 0, nil, paramError("amount.refund 和 amount.total 不能为空")
	case *req.Amount.Refund <= 0:
		return 0, nil, paramError("amount.refund 必须为正整数（分）")
	case req.Amount.Currency != "" && req.Amount.Currency != "CNY":
		return 0, nil, paramError("amount.currency 仅支持 CNY")
	case req.TransactionID == "" && req.OutTradeNo == "":
		return 0, nil, paramError("transaction_id 和 out_trade_no 必须二选一")
	}
	now := time.Now()
	var t *trade
	if req.TransactionID != "" {
		t = wx.book.getByChannelNo(c.mchID, req.TransactionID, now)
	} else {
		t = wx.book.get(c.mchID, req.OutTradeNo, now)
	}
	if t == nil {
		return 0, nil, &wechatError{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "订单不存在"}
	}
	amount := *req.Amount.Refund
	if prev := wx.refunds[tradeKey{c.mchID, req.OutRefundNo}]; prev != nil {
		r := prev.findRefund(req.OutRefundNo)
		if prev != t || r.amount != amount {
			return 0, nil, invalidRequest("退款单号已存在，但请求参数与原退款不一致")
		}
		// The same request again: the same refund, unchanged.
		return http.StatusOK, refundOf(t, r), nil
	}
	switch {
	case t.state == tradePending || t.state == tradeFailed:
		return 0, nil, invalidRequest("订单未支付，不能退款")
	case t.state == tradeClosed:
		return 0, nil, invalidRequest("订单已关闭，不能退款")
	case *req.Amount.Total != t.amount:
		return 0, nil, paramError("amount.total 与原订单金额不一致")
	case wx.balanceShort[c.mchID]:
		return 0, nil, &wechatError{http.StatusForbidden, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起"}
	case amount > t.refundable():
		return 0, nil, invalidRequest("申请退款金额超过订单可退金额")
	}
	r := &refund{
		outRefundNo: req.OutRefundNo,
		refundID:    fmt.Sprintf("50%s%s%014d", wx.instance, now.In(beijing).Format("20060102"), wx.book.next()),
		amount:      amount, reason: req.Reason, notifyURL: req.NotifyURL,
		state: refundProcessing, created: now,
	}
	t.refunds = append(t.refunds, r)
	wx.refunds[tradeKey{c.mchID, r.outRefundNo}] = t
	// WeChat answers PROCESSING; in the default mode the refund then
	// completes at once, as a fast real refund would.
	resp := refundOf(t, r)
	if !wx.manualRefunds {
		wx.finishRefund(t, r, true)
	}
	return http.StatusOK, resp, nil
}

func (wx *WechatPay) queryRefund(c *wechatCall) (int, any, *wechatError) {
	no := c.r.PathValue("out_refund_no")
	t := wx.refunds[tradeKey{c.mchID, no}]
	if t == nil {
		return 0, nil, &wechatError{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "退款单不存在"}
	}
	return http.StatusOK, refundOf(t, t.findRefund(no)), nil
}
