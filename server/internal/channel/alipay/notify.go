package alipay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	alipaysdk "github.com/smartwalle/alipay/v3"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/merchant"
)

// maxNotificationBody bounds a notification; Alipay's are a few kilobytes.
const maxNotificationBody = 64 << 10

// ParseNotification verifies and decodes Alipay's asynchronous notification
// (trade_status_sync, a form POST signed RSA2 by Alipay) for the app of cfg.
//
//   - A signature that does not verify, a malformed body or a notification for another
//     Alipay app is channel.ErrBadSignature.
//   - A notification about a refund (it carries out_biz_no, the refund's out_request_no) is
//     Notification.Refund, SUCCEEDED: Alipay only notifies refunds that succeeded. Amount is
//     send_back_fee when Alipay sends it, else 0 (refund_fee is the trade's cumulative
//     refunded total, not this refund's amount). A full refund says TRADE_CLOSED too: it is
//     a refund, never "closed unpaid".
//   - Otherwise it is Notification.Trade: TRADE_SUCCESS / TRADE_FINISHED are SUCCEEDED
//     (Amount from total_amount, TransactionID = trade_no, PaidAt = gmt_payment),
//     TRADE_CLOSED is CLOSED, WAIT_BUYER_PAY is PENDING.
//   - A verified notification paycenter has nothing to do with (another notify_type, or a
//     TRADE_CLOSED after refunds without out_biz_no) is an empty Notification, to be
//     acknowledged.
func (c *Channel) ParseNotification(ctx context.Context, cfg merchant.ChannelConfig, r *http.Request) (channel.Notification, error) {
	values, err := readForm(r)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("alipay notification: %v: %w", err, channel.ErrBadSignature)
	}
	cl, err := c.client(cfg)
	if err != nil {
		return channel.Notification{}, err
	}
	// Public-key mode: a certificate serial number has no business here, and with one the
	// SDK in production mode would download "Alipay's certificate" for whoever posts.
	values.Del("alipay_cert_sn")
	n, err := cl.DecodeNotification(ctx, values)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("alipay notification (notify_id %q): signature: %w", values.Get("notify_id"), channel.ErrBadSignature)
	}
	if n.AppId != cfg.Alipay.AlipayAppID {
		return channel.Notification{}, fmt.Errorf("alipay notification %s: for app_id %q, not this app's %q: %w",
			n.NotifyId, n.AppId, cfg.Alipay.AlipayAppID, channel.ErrBadSignature)
	}
	if n.NotifyType != "" && n.NotifyType != alipaysdk.NotifyTypeTradeStatusSync {
		return channel.Notification{}, nil
	}
	if n.OutTradeNo == "" {
		return channel.Notification{}, fmt.Errorf("alipay notification %s: no out_trade_no", n.NotifyId)
	}
	if n.OutBizNo != "" {
		return refundNotification(n)
	}
	return tradeNotification(n)
}

func refundNotification(n *alipaysdk.Notification) (channel.Notification, error) {
	rf := &channel.Refund{TradeNo: n.OutTradeNo, RefundNo: n.OutBizNo, State: channel.RefundSucceeded}
	if n.SendBackFee != "" {
		if amount, err := ParseYuan(n.SendBackFee); err == nil {
			rf.Amount = amount
		}
	}
	return channel.Notification{Refund: rf}, nil
}

func tradeNotification(n *alipaysdk.Notification) (channel.Notification, error) {
	op := fmt.Sprintf("alipay notification %s for %s", n.NotifyId, n.OutTradeNo)
	t := &channel.Trade{TradeNo: n.OutTradeNo, TransactionID: n.TradeNo, Currency: "CNY"}
	switch n.TradeStatus {
	case alipaysdk.TradeStatusSuccess, alipaysdk.TradeStatusFinished:
		amount, err := ParseYuan(n.TotalAmount)
		if err != nil {
			return channel.Notification{}, fmt.Errorf("%s: total_amount: %w", op, err)
		}
		t.State, t.Amount = channel.TradeSucceeded, amount
		if paid, err := time.ParseInLocation(wireTime, n.GmtPayment, beijing); err == nil {
			t.PaidAt = paid
		}
	case alipaysdk.TradeStatusClosed:
		if n.RefundFee != "" {
			if fee, err := ParseYuan(n.RefundFee); err != nil || fee > 0 {
				// Closed by refunds, yet about no refund we can name: nothing to apply.
				return channel.Notification{}, nil
			}
		}
		t.State = channel.TradeClosed
	case alipaysdk.TradeStatusWaitBuyerPay:
		t.State = channel.TradePending
	default:
		return channel.Notification{}, fmt.Errorf("%s: unknown trade_status %q", op, n.TradeStatus)
	}
	return channel.Notification{Trade: t}, nil
}

// readForm reads the urlencoded body of a notification, bounded. Query parameters of the
// notify URL are not part of what Alipay signed and are ignored.
func readForm(r *http.Request) (url.Values, error) {
	if r.Body == nil {
		return nil, errors.New("no body")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxNotificationBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %v", err)
	}
	if len(body) > maxNotificationBody {
		return nil, fmt.Errorf("body larger than %d bytes", maxNotificationBody)
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("body is not a urlencoded form")
	}
	if values.Get("sign") == "" {
		return nil, errors.New("unsigned")
	}
	return values, nil
}

// AckNotification answers Alipay: the plain text "success" stops its retries; anything
// else ("fail" here, 400 for a notification that did not verify, 500 for a failure of
// ours) makes Alipay send the notification again later (up to 8 times over about 25 h).
func (c *Channel) AckNotification(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err == nil {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "success")
		return
	}
	status := http.StatusInternalServerError
	if errors.Is(err, channel.ErrBadSignature) {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "fail")
}
