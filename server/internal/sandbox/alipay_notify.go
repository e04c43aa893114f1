package sandbox

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// notifyTrade queues a trade_status_sync notification describing t (and the
// refund r, when it is about one). Callers hold a.mu.
func (a *Alipay) notifyTrade(t *trade, r *refund, notifyURL string) {
	if notifyURL == "" {
		notifyURL = t.notifyURL
	}
	// Alipay only knows, and so only notifies about, trades the payer opened.
	if notifyURL == "" || !t.scanned {
		return
	}
	now := time.Now().In(beijing)
	status := alipayTradeStatus(t)
	v := url.Values{}
	v.Set("notify_time", now.Format(alipayTime))
	v.Set("notify_type", "trade_status_sync")
	v.Set("notify_id", randomString(34, "0123456789abcdefghijklmnopqrstuvwxyz"))
	v.Set("charset", "utf-8")
	v.Set("version", "1.0")
	v.Set("sign_type", "RSA2")
	v.Set("app_id", t.owner)
	v.Set("auth_app_id", t.owner)
	v.Set("seller_id", alipaySellerID)
	v.Set("trade_no", t.channelNo)
	v.Set("out_trade_no", t.outTradeNo)
	v.Set("trade_status", status)
	if t.misreported > 0 {
		v.Set("total_amount", formatYuan(t.misreported))
	} else {
		v.Set("total_amount", formatYuan(t.amount))
	}
	v.Set("subject", t.subject)
	v.Set("gmt_create", t.created.In(beijing).Format(alipayTime))
	if t.attach != "" {
		v.Set("passback_params", t.attach)
	}
	if t.state == tradePaid {
		paid := formatYuan(t.amount)
		v.Set("buyer_id", t.payerID)
		v.Set("buyer_logon_id", maskedLogon)
		v.Set("receipt_amount", paid)
		v.Set("invoice_amount", paid)
		v.Set("buyer_pay_amount", paid)
		v.Set("point_amount", "0.00")
		v.Set("gmt_payment", t.paidAt.In(beijing).Format(alipayTime))
		v.Set("fund_bill_list", `[{"amount":"`+paid+`","fundChannel":"ALIPAYACCOUNT"}]`)
	}
	if r != nil {
		v.Set("out_biz_no", r.outRefundNo)
		v.Set("refund_fee", formatYuan(t.refunded()))
		v.Set("gmt_refund", r.doneAt.In(beijing).Format("2006-01-02 15:04:05.000"))
	}
	if status == "TRADE_CLOSED" {
		v.Set("gmt_close", now.Format(alipayTime))
	}
	a.notifier.enqueue(&message{
		id: v.Get("notify_id"), outTradeNo: t.outTradeNo, event: "trade_status_sync:" + status, url: notifyURL,
		build: func(ctx context.Context, forged bool) (*http.Request, error) {
			return a.notificationRequest(ctx, notifyURL, v, forged)
		},
		accepted: func(status int, body []byte) bool {
			return status == http.StatusOK && strings.TrimSpace(string(body)) == "success"
		},
	})
}

// notificationRequest signs the fields like Alipay (sorted, without sign and
// sign_type) and posts them as a form. A forged copy carries the signature of
// different content, so it cannot verify.
func (a *Alipay) notificationRequest(ctx context.Context, notifyURL string, fields url.Values, forged bool) (*http.Request, error) {
	content := signContent(fields, "sign", "sign_type")
	if forged {
		content += "&forged=true"
	}
	sig, err := signRSA2(a.key, content)
	if err != nil {
		return nil, err
	}
	v := url.Values{}
	for k, vs := range fields {
		v[k] = append([]string(nil), vs...)
	}
	v.Set("sign", sig)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, notifyURL, strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	return req, nil
}
