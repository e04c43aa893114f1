package sandbox

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"net/http"
	"time"
)

// wechatResource is the encrypted payload of a notification.
type wechatResource struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// wechatEnvelope is the notification body WeChat Pay posts.
type wechatEnvelope struct {
	ID           string         `json:"id"`
	CreateTime   string         `json:"create_time"`
	ResourceType string         `json:"resource_type"`
	EventType    string         `json:"event_type"`
	Summary      string         `json:"summary"`
	Resource     wechatResource `json:"resource"`
}

// notify queues a notification whose resource is plaintext encrypted with
// the merchant's APIv3 key (AEAD_AES_256_GCM). Callers hold wx.mu.
func (wx *WechatPay) notify(t *trade, notifyURL, event, summary, resourceType string, plaintext any) {
	if notifyURL == "" {
		return
	}
	m := wx.merchants[t.owner]
	if m == nil {
		wx.log.Warn("wechatpay notification skipped: unknown merchant", "mchid", t.owner)
		return
	}
	id, body, err := encryptedEnvelope(m.apiV3Key, event, summary, resourceType, plaintext)
	if err != nil {
		wx.log.Error("wechatpay notification encryption failed", "error", err)
		return
	}
	wx.notifier.enqueue(&message{
		id: id, outTradeNo: t.outTradeNo, event: event, url: notifyURL,
		build: func(ctx context.Context, forged bool) (*http.Request, error) {
			h, err := wx.signatureHeaders(body, forged)
			if err != nil {
				return nil, err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, notifyURL, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header = h
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Wechatpay-Signature-Type", wechatAuthType)
			return req, nil
		},
		accepted: func(status int, _ []byte) bool {
			return status == http.StatusOK || status == http.StatusNoContent
		},
	})
}

// encryptedEnvelope builds the notification body and returns its id, which
// duplicates and retries keep (merchants deduplicate on it).
func encryptedEnvelope(apiV3Key []byte, event, summary, resourceType string, plaintext any) (string, []byte, error) {
	plain, err := marshalJSON(plaintext)
	if err != nil {
		return "", nil, err
	}
	block, err := aes.NewCipher(apiV3Key)
	if err != nil {
		return "", nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", nil, err
	}
	nonce := randomString(aead.NonceSize(), alnum)
	sealed := aead.Seal(nil, []byte(nonce), plain, []byte(resourceType))
	id := "EV-" + randomString(32, "0123456789abcdef")
	body, err := marshalJSON(wechatEnvelope{
		ID:           id,
		CreateTime:   time.Now().In(beijing).Format(wechatTime),
		ResourceType: "encrypt-resource",
		EventType:    event,
		Summary:      summary,
		Resource: wechatResource{
			OriginalType: resourceType, Algorithm: "AEAD_AES_256_GCM",
			Ciphertext: base64.StdEncoding.EncodeToString(sealed), AssociatedData: resourceType, Nonce: nonce,
		},
	})
	return id, body, err
}
