package payment

import (
	"errors"
	"net/http"
	"strings"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/merchant"
)

// NotifyHandler serves channel callbacks at POST /notify/{channel}/{app_id}: verify the
// signature with the app's configuration, apply the transition once, and answer in the
// channel's own format. Forged or mismatched callbacks change nothing and are counted.
func (s *Service) NotifyHandler(refunds func(r *http.Request, appID string, ch merchant.Channel, rf channel.Refund) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch := merchant.Channel(strings.ToUpper(r.PathValue("channel")))
		appID := r.PathValue("app")
		adapter := s.Channels[ch]
		if adapter == nil || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		label := string(ch)
		cfg, err := s.Merchants.Credentials(r.Context(), appID, ch)
		if err != nil {
			s.Metrics.Callback(label, "unknown")
			adapter.AckNotification(w, errors.New("unknown app"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		n, err := adapter.ParseNotification(r.Context(), cfg, r)
		if err != nil {
			s.Metrics.Callback(label, "forged")
			s.Logger.WarnContext(r.Context(), "rejected channel notification", "channel", ch, "app_id", appID, "error", err)
			adapter.AckNotification(w, err)
			return
		}
		switch {
		case n.Trade != nil:
			outcome, err := s.ApplyTrade(r.Context(), appID, ch, *n.Trade)
			if errors.Is(err, ErrMismatch) {
				// Acknowledge: resending a mismatched notification cannot make it right, and the
				// compensation worker asks the channel itself.
				s.Metrics.Callback(label, string(outcome))
				s.Logger.WarnContext(r.Context(), "channel notification does not match the payment", "trade_no", n.Trade.TradeNo)
				adapter.AckNotification(w, nil)
				return
			}
			if err != nil {
				s.Metrics.Callback(label, "error")
				s.Logger.ErrorContext(r.Context(), "apply channel notification; the channel will resend it",
					"channel", ch, "trade_no", n.Trade.TradeNo, "error", err)
				adapter.AckNotification(w, err)
				return
			}
			s.Metrics.Callback(label, string(outcome))
			adapter.AckNotification(w, nil)
		case n.Refund != nil && refunds != nil:
			err := refunds(r, appID, ch, *n.Refund)
			outcome := "ok"
			switch {
			case errors.Is(err, errs.ErrNotFound):
				// A refund paycenter did not make (e.g. in the channel's console): resending
				// cannot help, so acknowledge, count and log it for reconciliation.
				outcome, err = "unknown", nil
				s.Logger.WarnContext(r.Context(), "notification about an unknown refund", "channel", ch,
					"trade_no", n.Refund.TradeNo, "refund_no", n.Refund.RefundNo)
			case err != nil:
				outcome = "error"
			}
			s.Metrics.Callback(label, outcome)
			adapter.AckNotification(w, err)
		default:
			s.Metrics.Callback(label, "unchanged")
			adapter.AckNotification(w, nil)
		}
	})
}
