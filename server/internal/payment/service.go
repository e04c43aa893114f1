package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/ids"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/page"
	"github.com/paycenter/paycenter/server/internal/pgdb"
)

// Config holds a Service's collaborators.
type Config struct {
	DB        *sqlx.DB
	Merchants *merchant.Service
	Channels  map[merchant.Channel]channel.Channel
	Books     Books
	Events    Events
	PublicURL string // base URL of cashier pages and notify routes
	Logger    *slog.Logger
	Metrics   *Metrics
	Now       func() time.Time // nil: time.Now
	// FirstCheck is when the compensation worker first asks the channel about a new payment
	// (default 10s; most payers pay within a minute, and callbacks usually come first).
	FirstCheck time.Duration
	// Changes wakes WatchPayment streams when their payment changes; nil: they poll.
	Changes *Changes
}

// Service holds the payment rules.
type Service struct {
	Config
	store *Store
}

// NewService returns a Service.
func NewService(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FirstCheck <= 0 {
		cfg.FirstCheck = 10 * time.Second
	}
	return &Service{Config: cfg, store: NewStore(cfg.DB)}
}

var (
	orderNoPattern  = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Validate checks a create request's fields.
func (r CreateRequest) Validate() error {
	switch {
	case !orderNoPattern.MatchString(r.MerchantOrderNo):
		return errs.Invalid("merchant_order_no", "must be 1 to 64 of [0-9A-Za-z_-]")
	case r.Amount <= 0:
		return errs.Invalid("amount", "must be more than zero minor units")
	case r.Amount > 1_000_000_000_00:
		return errs.Invalid("amount", "must be at most 100000000000 minor units")
	case !currencyPattern.MatchString(r.Currency):
		return errs.Invalid("currency", "must be an ISO 4217 code like CNY")
	case r.Channel != merchant.ChannelCollector && r.Currency != "CNY":
		return errs.Invalid("currency", "Alipay and WeChat Pay take CNY only")
	case utf8.RuneCountInString(r.Subject) < 1 || utf8.RuneCountInString(r.Subject) > 128:
		return errs.Invalid("subject", "must be 1 to 128 characters")
	case r.ExpireSeconds != 0 && (r.ExpireSeconds < 60 || r.ExpireSeconds > 86400):
		return errs.Invalid("expire_seconds", "must be 0 (15 minutes) or between 60 and 86400")
	case len(r.ClientIP) > 45:
		return errs.Invalid("client_ip", "must be an IP address")
	case r.Method == channel.MethodJSAPI && r.PayerOpenID == "":
		return errs.Invalid("payer_openid", "is required for the JSAPI method")
	case r.Method == channel.MethodJSAPI && r.Channel != merchant.ChannelWechatPay:
		return errs.Invalid("method", "JSAPI is WeChat Pay's; use another method for %s", r.Channel)
	case r.Channel == merchant.ChannelWechatPay && r.Method == channel.MethodPCPage:
		return errs.Invalid("method", "WeChat Pay has no PC page: use PAYMENT_METHOD_QR on desktops")
	case r.Channel == merchant.ChannelWechatPay && r.Method == channel.MethodWAP && r.ClientIP == "":
		return errs.Invalid("client_ip", "is required for WeChat Pay H5 (PAYMENT_METHOD_WAP)")
	case len(r.PayerOpenID) > 128:
		return errs.Invalid("payer_openid", "must be at most 128 characters")
	case len(r.Metadata) > 16:
		return errs.Invalid("metadata", "must have at most 16 keys")
	}
	if r.ReturnURL != "" {
		if u, err := url.Parse(r.ReturnURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(r.ReturnURL) > 1024 {
			return errs.Invalid("return_url", "must be an absolute http or https URL")
		}
	}
	for k, v := range r.Metadata {
		if k == "" || len(k) > 64 || len(v) > 512 {
			return errs.Invalid("metadata", "keys must be 1 to 64 bytes and values at most 512")
		}
	}
	return nil
}

// Create starts a payment, idempotent on the app's merchant_order_no: a retry returns the
// pending (or paid) attempt; another amount or currency is ALREADY_EXISTS; another channel or
// method opens a new attempt and closes the earlier pending one.
func (s *Service) Create(ctx context.Context, req CreateRequest) (Payment, error) {
	caller, err := auth.RequireApp(ctx)
	if err != nil {
		return Payment{}, err
	}
	if caller.MerchantFrozen {
		return Payment{}, errs.FailedPrecondition("merchant %s is frozen: no new payments", caller.MerchantID)
	}
	if err := req.Validate(); err != nil {
		return Payment{}, err
	}
	if req.ExpireSeconds == 0 {
		req.ExpireSeconds = 900
	}
	adapter, cfg, err := s.channelFor(ctx, caller.AppID, req.Channel)
	if err != nil {
		return Payment{}, err
	}
	now := s.Now()
	candidate := Payment{
		TradeNo: ids.Token(now), MerchantID: caller.MerchantID, AppID: caller.AppID,
		MerchantOrderNo: req.MerchantOrderNo, Channel: req.Channel, Method: req.Method,
		Amount: req.Amount, Currency: req.Currency, Subject: req.Subject, Status: StatusPending,
		ClientIP: req.ClientIP, ReturnURL: req.ReturnURL, PayerOpenID: req.PayerOpenID,
		Metadata: jsonColumn[map[string]string]{req.Metadata}, CashierToken: ids.Secret(24),
		ExpireAt: now.Add(time.Duration(req.ExpireSeconds) * time.Second).Truncate(time.Second),
	}
	var (
		existing   *Payment
		superseded []Payment
	)
	created, err := insertFirstAttempt(ctx, s.DB, candidate, now.Add(s.FirstCheck))
	if err != nil {
		return Payment{}, err
	}
	if !created {
		// The order exists: answer with its attempt, or supersede that with this one.
		err = pgdb.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
			o, _, err := lockOrder(ctx, tx, caller.AppID, req.MerchantOrderNo)
			if err != nil {
				return err
			}
			if o.Amount != req.Amount || o.Currency != req.Currency {
				return errs.AlreadyExists("merchant_order_no %s already exists with amount %d %s", req.MerchantOrderNo, o.Amount, o.Currency)
			}
			if o.PaidTradeNo != nil {
				paid, err := getPayment(ctx, tx, *o.PaidTradeNo, false)
				existing = &paid
				return err
			}
			latest, err := getPayment(ctx, tx, o.LatestTradeNo, true)
			if err != nil {
				return err
			}
			if latest.Status == StatusPending && latest.Channel == req.Channel && latest.Method == req.Method {
				existing = &latest
				return nil
			}
			if latest.Status == StatusPending {
				closed, err := s.closeLocked(ctx, tx, latest)
				if err != nil {
					return err
				}
				superseded = append(superseded, closed)
			}
			if err := setLatestAttempt(ctx, tx, caller.AppID, req.MerchantOrderNo, candidate.TradeNo); err != nil {
				return err
			}
			return insertPayment(ctx, tx, candidate, now.Add(s.FirstCheck))
		})
	}
	if err != nil {
		return Payment{}, err
	}
	if existing != nil {
		return s.awaitPayerAction(ctx, *existing), nil
	}
	for _, p := range superseded {
		s.closeAtChannel(ctx, p)
	}
	s.Metrics.created(candidate)
	action, err := adapter.Prepay(ctx, cfg, channel.PrepayRequest{
		TradeNo: candidate.TradeNo, Amount: candidate.Amount, Currency: candidate.Currency, Subject: candidate.Subject,
		Method: candidate.Method, ExpireAt: candidate.ExpireAt, ClientIP: candidate.ClientIP,
		ReturnURL: candidate.ReturnURL, OpenID: candidate.PayerOpenID, NotifyURL: s.NotifyURL(candidate.Channel, candidate.AppID),
	})
	if err != nil {
		s.failAttempt(ctx, candidate, err)
		if errors.Is(err, channel.ErrUnsupportedMethod) {
			return Payment{}, errs.Invalid("method", "%s does not support %s", req.Channel, req.Method)
		}
		return Payment{}, errs.Unavailable("channel %s did not accept the payment; retry later", req.Channel)
	}
	return s.store.setPayerAction(ctx, candidate.TradeNo, action)
}

// awaitPayerAction gives a concurrent duplicate of a create request the same answer as the
// original: while the original is still asking the channel, the payer action is not stored
// yet, so wait briefly for it.
func (s *Service) awaitPayerAction(ctx context.Context, p Payment) Payment {
	deadline := time.Now().Add(5 * time.Second)
	for p.Status == StatusPending && p.PayerAction.V == (channel.PayerAction{}) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return p
		case <-time.After(50 * time.Millisecond):
		}
		latest, err := getPayment(ctx, s.DB, p.TradeNo, false)
		if err != nil {
			return p
		}
		p = latest
	}
	return p
}

func (s *Service) channelFor(ctx context.Context, appID string, ch merchant.Channel) (channel.Channel, merchant.ChannelConfig, error) {
	adapter := s.Channels[ch]
	if adapter == nil {
		return nil, merchant.ChannelConfig{}, errs.FailedPrecondition("channel %s is not available on this server", ch)
	}
	cfg, err := s.Merchants.Credentials(ctx, appID, ch)
	if errors.Is(err, errs.ErrNotFound) {
		return nil, cfg, errs.FailedPrecondition("channel %s is not configured for this app", ch)
	}
	if err != nil {
		return nil, cfg, err
	}
	if !cfg.Enabled {
		return nil, cfg, errs.FailedPrecondition("channel %s is disabled for this app", ch)
	}
	return adapter, cfg, nil
}

// failAttempt marks an attempt the channel would not open as FAILED.
func (s *Service) failAttempt(ctx context.Context, p Payment, cause error) {
	s.Logger.WarnContext(ctx, "prepay failed", "trade_no", p.TradeNo, "channel", p.Channel, "error", cause)
	err := pgdb.InTx(context.WithoutCancel(ctx), s.DB, func(tx *sqlx.Tx) error {
		_, _, err := transition(ctx, tx, p.TradeNo, []Status{StatusPending}, StatusFailed, `, next_check_at = NULL`)
		return err
	})
	if err != nil {
		s.Logger.ErrorContext(ctx, "mark attempt failed", "trade_no", p.TradeNo, "error", err)
	}
}

// NotifyURL is where channel ch sends an app's notifications.
func (s *Service) NotifyURL(ch merchant.Channel, appID string) string {
	return s.PublicURL + "/notify/" + strings.ToLower(string(ch)) + "/" + appID
}

// CashierURL is the payment's hosted cashier page.
func (s *Service) CashierURL(p Payment) string {
	return s.PublicURL + "/pay/" + p.TradeNo + "?t=" + p.CashierToken
}

// Get finds one of the calling app's payments by trade_no, merchant_order_no (latest attempt)
// or channel transaction id.
func (s *Service) Get(ctx context.Context, by, value string) (Payment, error) {
	caller, err := auth.RequireApp(ctx)
	if err != nil {
		return Payment{}, err
	}
	column := map[string]string{"trade_no": "trade_no", "merchant_order_no": "merchant_order_no", "channel_transaction_id": "channel_transaction_id"}[by]
	if column == "" {
		return Payment{}, errs.Invalid("key", "set one of trade_no, merchant_order_no or channel_transaction_id")
	}
	if value == "" || len(value) > 64 {
		return Payment{}, errs.Invalid(by, "must be 1 to 64 characters")
	}
	return s.store.paymentBy(ctx, caller.AppID, column, value)
}

// List pages through the calling app's payments, newest first.
func (s *Service) List(ctx context.Context, f Filter, pg page.Request) ([]Payment, string, error) {
	caller, err := auth.RequireApp(ctx)
	if err != nil {
		return nil, "", err
	}
	size, before, err := pg.Parse(20, 100)
	if err != nil {
		return nil, "", err
	}
	if !f.Start.IsZero() && !f.End.IsZero() && !f.End.After(f.Start) {
		return nil, "", errs.Invalid("end_time", "must be after start_time")
	}
	ps, err := s.store.list(ctx, caller.AppID, f, before, size+1)
	if err != nil {
		return nil, "", err
	}
	ps, next := page.Cut(ps, size, func(p Payment) string { return p.TradeNo })
	return ps, next, nil
}

// Close closes a pending payment at its channel and here. Closing a closed payment returns it;
// a paid one is FAILED_PRECONDITION.
func (s *Service) Close(ctx context.Context, tradeNo string) (Payment, error) {
	caller, err := auth.RequireApp(ctx)
	if err != nil {
		return Payment{}, err
	}
	if tradeNo == "" {
		return Payment{}, errs.Invalid("trade_no", "is required")
	}
	p, err := s.store.paymentBy(ctx, caller.AppID, "trade_no", tradeNo)
	if err != nil {
		return Payment{}, err
	}
	switch p.Status {
	case StatusClosed, StatusFailed:
		return p, nil
	case StatusSucceeded:
		return Payment{}, errs.FailedPrecondition("payment %s is paid: refund it instead", tradeNo)
	}
	if err := s.closeAtChannel(ctx, p); err != nil {
		if errors.Is(err, channel.ErrTradePaid) {
			s.reconcile(ctx, p)
			return Payment{}, errs.FailedPrecondition("payment %s was paid at the channel: refund it instead", tradeNo)
		}
		return Payment{}, errs.Unavailable("channel %s could not close the payment; retry later", p.Channel)
	}
	if err := pgdb.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		locked, err := getPayment(ctx, tx, tradeNo, true)
		if err != nil || locked.Status != StatusPending {
			return err
		}
		_, err = s.closeLocked(ctx, tx, locked)
		return err
	}); err != nil {
		return Payment{}, err
	}
	return getPayment(ctx, s.DB, tradeNo, false)
}

// closeLocked closes a pending payment in tx; the channel is told separately.
func (s *Service) closeLocked(ctx context.Context, tx *sqlx.Tx, p Payment) (Payment, error) {
	closed, ok, err := transition(ctx, tx, p.TradeNo, []Status{StatusPending}, StatusClosed, `, closed_at = now(), next_check_at = NULL`)
	if err != nil || !ok {
		return p, err
	}
	if err := s.Events.Publish(ctx, tx, EventClosed, closed); err != nil {
		return p, err
	}
	s.Metrics.closed(closed)
	return closed, nil
}

// closeAtChannel makes the trade unpayable at its channel.
func (s *Service) closeAtChannel(ctx context.Context, p Payment) error {
	adapter := s.Channels[p.Channel]
	if adapter == nil {
		return nil
	}
	cfg, err := s.Merchants.Credentials(ctx, p.AppID, p.Channel)
	if err != nil {
		return err
	}
	err = adapter.Close(ctx, cfg, p.TradeNo)
	if err != nil && !errors.Is(err, channel.ErrTradePaid) {
		s.Logger.WarnContext(ctx, "close at channel failed", "trade_no", p.TradeNo, "channel", p.Channel, "error", err)
	}
	return err
}

// Outcome of applying what a channel said about a trade.
type Outcome string

// Outcomes, also the label values of the callback metric.
const (
	OutcomeApplied   Outcome = "ok"        // the payment changed
	OutcomeDuplicate Outcome = "duplicate" // already applied (a resent callback)
	OutcomeUnchanged Outcome = "unchanged" // nothing to do (still pending)
	OutcomeMismatch  Outcome = "mismatch"  // amount, currency, app or channel differ: ignored
	OutcomeUnknown   Outcome = "unknown"   // no such payment
)

// ErrMismatch: a channel reported a trade that does not match the payment.
var ErrMismatch = errors.New("channel trade does not match the payment")

// ApplyTrade applies what channel ch said about a trade of appID, exactly once: one
// conditional UPDATE; a success books the ledger and queues the webhook in the same
// transaction. Money for an attempt that was closed, failed, or whose order another attempt
// already paid is kept as a duplicate payment (flagged, announced, refunded automatically).
func (s *Service) ApplyTrade(ctx context.Context, appID string, ch merchant.Channel, t channel.Trade) (Outcome, error) {
	var outcome Outcome
	var succeeded *Payment
	err := pgdb.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		p, err := getPayment(ctx, tx, t.TradeNo, true)
		if errors.Is(err, errs.ErrNotFound) {
			outcome = OutcomeUnknown
			return nil
		}
		if err != nil {
			return err
		}
		if p.AppID != appID || p.Channel != ch {
			outcome = OutcomeMismatch
			return nil
		}
		switch t.State {
		case channel.TradeSucceeded:
			if t.Amount != p.Amount || (t.Currency != "" && t.Currency != p.Currency) {
				outcome = OutcomeMismatch
				return nil
			}
			if p.Status == StatusSucceeded {
				outcome = OutcomeDuplicate
				return nil
			}
			paidAt := t.PaidAt
			if paidAt.IsZero() {
				paidAt = s.Now()
			}
			paid, err := succeed(ctx, tx, p, paidAt, t.TransactionID)
			if err != nil {
				return err
			}
			if err := s.Events.Publish(ctx, tx, EventSucceeded, paid); err != nil {
				return err
			}
			if paid.Duplicate {
				if err := s.Events.Publish(ctx, tx, EventDuplicate, paid); err != nil {
					return err
				}
			}
			// Booking comes last: it locks the merchant's ledger accounts, which every
			// payment of the merchant needs, so they stay locked only for the write and COMMIT.
			if err := s.Books.BookPayment(ctx, tx, paid); err != nil {
				return fmt.Errorf("book payment %s: %w", p.TradeNo, err)
			}
			outcome, succeeded = OutcomeApplied, &paid
		case channel.TradeClosed, channel.TradeFailed:
			if p.Status != StatusPending {
				outcome = OutcomeDuplicate
				return nil
			}
			if t.State == channel.TradeFailed {
				if _, _, err := transition(ctx, tx, p.TradeNo, []Status{StatusPending}, StatusFailed, `, next_check_at = NULL`); err != nil {
					return err
				}
			} else if _, err := s.closeLocked(ctx, tx, p); err != nil {
				return err
			}
			outcome = OutcomeApplied
		default:
			outcome = OutcomeUnchanged
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if succeeded != nil {
		s.Metrics.succeeded(*succeeded)
	}
	if outcome == OutcomeMismatch {
		return outcome, ErrMismatch
	}
	return outcome, nil
}

// reconcile asks the channel about p and applies the answer; errors are logged.
func (s *Service) reconcile(ctx context.Context, p Payment) {
	adapter, cfg, err := s.channelFor(ctx, p.AppID, p.Channel)
	if err != nil {
		return
	}
	t, err := adapter.Query(ctx, cfg, p.TradeNo)
	if err == nil {
		_, err = s.ApplyTrade(ctx, p.AppID, p.Channel, t)
	}
	if err != nil && !errors.Is(err, channel.ErrTradeNotFound) {
		s.Logger.WarnContext(ctx, "reconcile payment", "trade_no", p.TradeNo, "error", err)
	}
}

// ForRefund returns a payment of the calling app locked in tx, for the refund domain.
func (s *Service) ForRefund(ctx context.Context, tx *sqlx.Tx, appID, tradeNo string) (Payment, error) {
	p, err := getPayment(ctx, tx, tradeNo, true)
	if err != nil {
		return Payment{}, err
	}
	if p.AppID != appID {
		return Payment{}, errs.NotFound("payment %s", tradeNo)
	}
	return p, nil
}

// AddRefunded raises (or, with a negative delta, lowers) a succeeded payment's refunded
// amount, never past its amount: false when the payment cannot take delta.
func (s *Service) AddRefunded(ctx context.Context, tx *sqlx.Tx, tradeNo string, delta int64) (bool, error) {
	const q = `UPDATE payments SET refunded_amount = refunded_amount + $2, updated_at = now()
		WHERE trade_no = $1 AND status = 'SUCCEEDED' AND refunded_amount + $2 BETWEEN 0 AND amount`
	res, err := tx.ExecContext(ctx, q, tradeNo, delta)
	if err != nil {
		return false, fmt.Errorf("add refunded amount: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
