package wechatpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wechatpay-apiv3/wechatpay-go/services/payments"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/merchant"
)

// maxNotificationBody bounds a notification; WeChat Pay's are a few kilobytes.
const maxNotificationBody = 64 << 10

// refundResource is the decrypted resource of a REFUND.* notification.
type refundResource struct {
	MchID         string `json:"mchid"`
	OutTradeNo    string `json:"out_trade_no"`
	TransactionID string `json:"transaction_id"`
	OutRefundNo   string `json:"out_refund_no"`
	RefundID      string `json:"refund_id"`
	RefundStatus  string `json:"refund_status"`
	Amount        struct {
		Total  int64 `json:"total"`
		Refund int64 `json:"refund"`
	} `json:"amount"`
}

// ParseNotification verifies a WeChat Pay notification (Wechatpay-* signature headers with
// the platform public key, timestamp within 5 minutes) and decrypts its AEAD_AES_256_GCM
// resource with the APIv3 key; a failure of either, or a malformed body, is
// channel.ErrBadSignature, and so is a notification for another merchant or app.
// TRANSACTION.SUCCESS is Notification.Trade (see Query for the mapping);
// REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED are Notification.Refund. Other verified
// events are an empty Notification, to be acknowledged.
func (c *Channel) ParseNotification(ctx context.Context, cfg merchant.ChannelConfig, r *http.Request) (channel.Notification, error) {
	body, err := readBody(r)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("wechatpay notification: %v: %w", err, channel.ErrBadSignature)
	}
	cl, err := c.client(cfg)
	if err != nil {
		return channel.Notification{}, err
	}
	req := r.Clone(ctx) // the SDK reads and replaces the body
	req.Body = io.NopCloser(bytes.NewReader(body))
	var ignored json.RawMessage
	n, err := cl.notify.ParseNotifyRequest(ctx, req, &ignored)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("wechatpay notification: %s: %w", notifyFailure(err), channel.ErrBadSignature)
	}
	op := fmt.Sprintf("wechatpay notification %s (%s)", n.ID, n.EventType)
	plaintext := []byte(n.Resource.Plaintext)
	switch n.EventType {
	case "TRANSACTION.SUCCESS":
		var tx payments.Transaction
		if err := json.Unmarshal(plaintext, &tx); err != nil {
			return channel.Notification{}, fmt.Errorf("%s: resource: %v: %w", op, err, channel.ErrBadSignature)
		}
		if deref(tx.Mchid) != cl.mchID || deref(tx.Appid) != cl.appID {
			return channel.Notification{}, fmt.Errorf("%s: for mchid %q appid %q, not this app's: %w",
				op, deref(tx.Mchid), deref(tx.Appid), channel.ErrBadSignature)
		}
		t, err := tradeOf(&tx)
		if err != nil {
			return channel.Notification{}, fmt.Errorf("%s: %w", op, err)
		}
		if t.TradeNo == "" {
			return channel.Notification{}, fmt.Errorf("%s: no out_trade_no", op)
		}
		return channel.Notification{Trade: &t}, nil
	case "REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED":
		var res refundResource
		if err := json.Unmarshal(plaintext, &res); err != nil {
			return channel.Notification{}, fmt.Errorf("%s: resource: %v: %w", op, err, channel.ErrBadSignature)
		}
		if res.MchID != cl.mchID {
			return channel.Notification{}, fmt.Errorf("%s: for mchid %q, not this app's: %w", op, res.MchID, channel.ErrBadSignature)
		}
		status := res.RefundStatus
		if status == "" {
			status = strings.TrimPrefix(n.EventType, "REFUND.")
		}
		state, reason, err := refundState(status)
		if err != nil {
			return channel.Notification{}, fmt.Errorf("%s: %w", op, err)
		}
		if res.OutRefundNo == "" {
			return channel.Notification{}, fmt.Errorf("%s: no out_refund_no", op)
		}
		return channel.Notification{Refund: &channel.Refund{
			TradeNo: res.OutTradeNo, RefundNo: res.OutRefundNo, ChannelRefundID: res.RefundID,
			State: state, Amount: res.Amount.Refund, FailureReason: reason,
		}}, nil
	}
	return channel.Notification{}, nil
}

// notifyFailure says briefly why the SDK rejected a notification: its own message may dump
// the whole request.
func notifyFailure(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "invalid notification"):
		return "signature verification failed"
	case strings.Contains(msg, "decrypt error"):
		return "resource decryption failed"
	case strings.HasPrefix(msg, "unsupported Wechatpay-Signature-Type"):
		return "unsupported signature type"
	case strings.HasPrefix(msg, "parse request body error"):
		return "body is not a notification"
	case strings.Contains(msg, "algorithm"):
		return "unsupported resource algorithm"
	}
	return "malformed notification"
}

func readBody(r *http.Request) ([]byte, error) {
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
	return body, nil
}

// AckNotification answers WeChat Pay: 204 stops its retries; a failure answers 400 (the
// notification did not verify) or 500 (a failure of ours) with {"code":"FAIL","message":...},
// and WeChat Pay sends again later (15 times over about 24 h). The message never carries
// the error's text.
func (c *Channel) AckNotification(w http.ResponseWriter, err error) {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	status, message := http.StatusInternalServerError, "notification not processed, please retry"
	if errors.Is(err, channel.ErrBadSignature) {
		status, message = http.StatusBadRequest, "invalid notification"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": "FAIL", "message": message})
}
