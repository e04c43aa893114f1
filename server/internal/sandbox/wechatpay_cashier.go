package sandbox

import (
	"net/http"
	"time"
)

// serveCashier is the page behind code_url (the payer scans it) and h5_url.
func (wx *WechatPay) serveCashier(w http.ResponseWriter, r *http.Request) {
	wx.mu.Lock()
	t := wx.book.getByToken(r.PathValue("token"), time.Now())
	var page cashierPage
	status := http.StatusOK
	if t == nil {
		page, status = cashierPage{Channel: "WeChat Pay", Error: "订单不存在 (unknown order)"}, http.StatusNotFound
	} else {
		page = wx.cashierPageLocked(t)
	}
	wx.mu.Unlock()
	renderCashier(w, status, page)
}

// serveCashierPay is the cashier's Pay button.
func (wx *WechatPay) serveCashierPay(w http.ResponseWriter, r *http.Request) {
	wx.mu.Lock()
	defer wx.mu.Unlock()
	t := wx.book.getByToken(r.PathValue("token"), time.Now())
	if t == nil {
		renderCashier(w, http.StatusNotFound, cashierPage{Channel: "WeChat Pay", Error: "订单不存在 (unknown order)"})
		return
	}
	err := wx.payLocked(t, false)
	page := wx.cashierPageLocked(t)
	status := http.StatusOK
	if err != nil {
		status, page.Error = http.StatusConflict, err.Error()
	}
	renderCashier(w, status, page)
}

func (wx *WechatPay) cashierPageLocked(t *trade) cashierPage {
	state, _ := wechatTradeState(t)
	p := cashierPage{
		Channel: "WeChat Pay", Subject: t.subject, Amount: formatYuan(t.amount),
		OutTradeNo: t.outTradeNo, Status: state,
	}
	if t.state == tradePending {
		p.PayAction = WechatPayControlPrefix + "/cashier/" + t.token + "/pay"
	}
	return p
}
