package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// The payer's side of page, wap, app and QR payments: the cashier page.
//
// How a trade becomes known: precreate records it at once (its qr_code is a
// cashier URL on the sandbox); a page or wap trade is recorded when the
// payer's browser opens the URL the SDK built (GET, or the form POST some
// integrations render), exactly when real Alipay learns of it; an app trade
// when the order string the SDK built reaches SubmitAppOrder (or POST
// {AlipayControlPrefix}/app-orders), standing in for the Alipay app.

// SubmitAppOrder plays the Alipay app receiving the order string that the
// SDK's TradeAppPay built: the sandbox verifies it like the gateway would and
// records the trade as awaiting payment. It returns the out_trade_no.
func (a *Alipay) SubmitAppOrder(orderString string) (string, error) {
	form, err := url.ParseQuery(orderString)
	if err != nil {
		return "", fmt.Errorf("%w: order string: %v", ErrRejected, err)
	}
	t, aerr := a.openOrder(form)
	if aerr != nil {
		return "", fmt.Errorf("%w: %v", ErrRejected, aerr)
	}
	return t.outTradeNo, nil
}

// openOrder authenticates a page, wap or app order and records its trade, as
// real Alipay does when the payer opens the cashier.
func (a *Alipay) openOrder(form url.Values) (*trade, *alipayError) {
	if !alipayPayMethods[form.Get("method")] {
		return nil, invalidArgument("isv.invalid-method", "不是支付下单方法: "+form.Get("method"))
	}
	call, aerr := a.authenticate(form)
	if aerr != nil {
		return nil, aerr
	}
	now := time.Now()
	terms, aerr := checkOrder(call.biz, now)
	if aerr != nil {
		return nil, aerr
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.book.get(call.appID, call.biz.OutTradeNo, now)
	if t != nil {
		if aerr := existingOrder(t, call.biz, terms); aerr != nil {
			return nil, aerr
		}
	} else {
		t = a.newTrade(call, terms, now)
	}
	t.scanned = true
	return t, nil
}

// serveCashierOrder shows the cashier for a page or wap pay URL (GET, or the
// auto-submitted form POST some integrations use).
func (a *Alipay) serveCashierOrder(w http.ResponseWriter, r *http.Request) {
	t, aerr := a.openOrder(r.Form)
	if aerr != nil {
		renderCashier(w, http.StatusBadRequest, cashierPage{
			Channel: "Alipay", Error: aerr.SubCode + ": " + aerr.SubMsg,
		})
		return
	}
	a.mu.Lock()
	page := a.cashierPageLocked(t)
	a.mu.Unlock()
	renderCashier(w, http.StatusOK, page)
}

// serveQR is the payer scanning a precreate QR code.
func (a *Alipay) serveQR(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	t := a.book.getByToken(r.PathValue("token"), time.Now())
	if t == nil {
		a.mu.Unlock()
		renderCashier(w, http.StatusNotFound, cashierPage{Channel: "Alipay", Error: "二维码已失效 (unknown QR code)"})
		return
	}
	t.scanned = true
	page := a.cashierPageLocked(t)
	a.mu.Unlock()
	renderCashier(w, http.StatusOK, page)
}

// serveCashierPay is the cashier's Pay button.
func (a *Alipay) serveCashierPay(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.book.getByToken(r.PathValue("token"), time.Now())
	if t == nil {
		renderCashier(w, http.StatusNotFound, cashierPage{Channel: "Alipay", Error: "交易不存在 (unknown trade)"})
		return
	}
	err := a.payLocked(t, false)
	page := a.cashierPageLocked(t)
	status := http.StatusOK
	if err != nil {
		status, page.Error = http.StatusConflict, err.Error()
	}
	if t.state == tradePaid {
		page.ReturnURL = a.returnURL(t)
	}
	renderCashier(w, status, page)
}

func (a *Alipay) cashierPageLocked(t *trade) cashierPage {
	p := cashierPage{
		Channel: "Alipay", Subject: t.subject, Amount: formatYuan(t.amount),
		OutTradeNo: t.outTradeNo, Status: alipayTradeStatus(t),
	}
	if t.state == tradePending {
		p.PayAction = AlipayControlPrefix + "/cashier/" + t.token + "/pay"
	}
	return p
}

// returnURL is the synchronous return to the merchant after a page or wap
// payment, signed like Alipay's (the SDK's VerifySign checks it). Parameters
// already in the merchant's return_url are kept and signed too, so that
// verifying the whole query works.
func (a *Alipay) returnURL(t *trade) string {
	if t.returnURL == "" {
		return ""
	}
	u, err := url.Parse(t.returnURL)
	if err != nil {
		return ""
	}
	v := u.Query()
	v.Set("app_id", t.owner)
	v.Set("auth_app_id", t.owner)
	v.Set("charset", "utf-8")
	v.Set("method", t.product+".return")
	v.Set("out_trade_no", t.outTradeNo)
	v.Set("trade_no", t.channelNo)
	v.Set("total_amount", formatYuan(t.amount))
	v.Set("seller_id", alipaySellerID)
	v.Set("timestamp", time.Now().In(beijing).Format(alipayTime))
	v.Set("version", "1.0")
	v.Set("sign_type", "RSA2")
	v.Del("sign")
	sig, err := signRSA2(a.key, signContent(v, "sign", "sign_type"))
	if err != nil {
		a.log.Error("alipay return signing failed", "error", err)
		return ""
	}
	v.Set("sign", sig)
	u.RawQuery = v.Encode()
	return u.String()
}

// serveAppOrder is SubmitAppOrder over HTTP: {"order_string": "..."}.
func (a *Alipay) serveAppOrder(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OrderString string `json:"order_string"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
		writeControlError(w, fmt.Errorf("%w: body must be {\"order_string\": \"...\"}", ErrRejected))
		return
	}
	no, err := a.SubmitAppOrder(req.OrderString)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControlJSON(w, http.StatusOK, map[string]string{"out_trade_no": no})
}
