package refund

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/ids"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/page"
	"github.com/paycenter/paycenter/server/internal/payment"
	"github.com/paycenter/paycenter/server/internal/pgdb"
)

// Config holds a Service's collaborators.
type Config struct {
	DB        *sqlx.DB
	Payments  *payment.Service
	Merchants *merchant.Service
	Channels  map[merchant.Channel]channel.Channel
	Books     Books
	Events    Events
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	Now       func() time.Time
}

// Service holds the refund rules.
type Service struct {
	Config
	outcomes *prometheus.CounterVec
}

// NewService returns a Service and registers paycenter_refunds_total.
func NewService(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{Config: cfg, outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paycenter_refunds_total", Help: "Refunds by channel and what happened (created, succeeded, failed).",
	}, []string{"channel", "event"})}
	cfg.Registry.MustRegister(s.outcomes)
	return s
}

var refundNoPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// Create refunds amount of the calling app's payment tradeNo, idempotent on merchantRefundNo:
// the same request returns the original refund; the same number for another payment or amount
// is ALREADY_EXISTS.
func (s *Service) Create(ctx context.Context, tradeNo, merchantRefundNo string, amount int64, reason string) (Refund, error) {
	caller, err := auth.RequireApp(ctx)
	if err != nil {
		return Refund{}, err
	}
	switch {
	case tradeNo == "" || len(tradeNo) > 64:
		return Refund{}, errs.Invalid("trade_no", "is required")
	case !refundNoPattern.MatchString(merchantRefundNo):
		return Refund{}, errs.Invalid("merchant_refund_no", "must be 1 to 64 of [0-9A-Za-z_-]")
	case amount <= 0:
		return Refund{}, errs.Invalid("amount", "must be more than zero minor units")
	case utf8.RuneCountInString(reason) > 256:
		return Refund{}, errs.Invalid("reason", "must be at most 256 characters")
	}
	if caller.MerchantFrozen {
		return Refund{}, errs.FailedPrecondition("merchant %s is frozen: no new refunds", caller.MerchantID)
	}
	r, created, err := s.open(ctx, caller.AppID, tradeNo, merchantRefundNo, amount, reason, false)
	if err != nil || !created {
		return r, err
	}
	return s.submit(ctx, r)
}

// open records a pending refund and holds its money, or returns the existing one.
func (s *Service) open(ctx context.Context, appID, tradeNo, merchantRefundNo string, amount int64, reason string, automatic bool) (Refund, bool, error) {
	var (
		r       Refund
		created bool
	)
	attempt := func() error {
		return pgdb.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
			existing, err := refundBy(ctx, tx, appID, "merchant_refund_no", merchantRefundNo, false)
			if err == nil {
				if existing.TradeNo != tradeNo || existing.Amount != amount {
					return errs.AlreadyExists("merchant_refund_no %s already exists for %s with amount %d", merchantRefundNo, existing.TradeNo, existing.Amount)
				}
				r = existing
				return nil
			}
			if !errors.Is(err, errs.ErrNotFound) {
				return err
			}
			p, err := s.Payments.ForRefund(ctx, tx, appID, tradeNo)
			if err != nil {
				return err
			}
			if p.Status != payment.StatusSucceeded {
				return errs.FailedPrecondition("payment %s is %s: only succeeded payments can be refunded", tradeNo, p.Status)
			}
			ok, err := s.Payments.AddRefunded(ctx, tx, tradeNo, amount)
			if err != nil {
				return err
			}
			if !ok {
				return errs.FailedPrecondition("amount: refunding %d would exceed the refundable %d of payment %s", amount, p.Amount-p.RefundedAmount, tradeNo)
			}
			r = Refund{RefundNo: ids.Token(s.Now()), MerchantID: p.MerchantID, AppID: appID, TradeNo: tradeNo,
				MerchantRefundNo: merchantRefundNo, Amount: amount, Currency: p.Currency, Reason: reason,
				Status: StatusPending, Automatic: automatic}
			if err := insertRefund(ctx, tx, r, s.Now().Add(10*time.Second)); err != nil {
				return err
			}
			if err := s.Books.HoldRefund(ctx, tx, r, p); err != nil {
				return fmt.Errorf("hold refund %s: %w", r.RefundNo, err)
			}
			created = true
			r, err = refundBy(ctx, tx, appID, "refund_no", r.RefundNo, false)
			return err
		})
	}
	err := attempt()
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Constraint == "refunds_app_merchant_refund_no_key" {
		// A concurrent request with the same number won: answer like a retry.
		created = false
		err = attempt()
	}
	if err != nil {
		return Refund{}, false, err
	}
	if created {
		s.outcomes.WithLabelValues(string(s.channelOf(ctx, r)), "created").Inc()
	}
	return r, created, nil
}

func (s *Service) channelOf(ctx context.Context, r Refund) merchant.Channel {
	var ch merchant.Channel
	_ = s.DB.GetContext(ctx, &ch, `SELECT channel FROM payments WHERE trade_no = $1`, r.TradeNo)
	return ch
}

// submit sends a pending refund to its channel and applies a final answer. Transport failures
// leave it pending: the worker asks again.
func (s *Service) submit(ctx context.Context, r Refund) (Refund, error) {
	var p payment.Payment
	if err := pgdb.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var err error
		p, err = s.Payments.ForRefund(ctx, tx, r.AppID, r.TradeNo)
		return err
	}); err != nil {
		return r, err
	}
	adapter := s.Channels[p.Channel]
	cfg, err := s.Merchants.Credentials(ctx, r.AppID, p.Channel)
	if adapter == nil || err != nil {
		s.Logger.WarnContext(ctx, "refund channel unavailable", "refund_no", r.RefundNo, "error", err)
		return r, nil
	}
	res, err := adapter.Refund(ctx, cfg, channel.RefundRequest{
		TradeNo: r.TradeNo, RefundNo: r.RefundNo, Amount: r.Amount, TotalAmount: p.Amount, Currency: r.Currency,
		Reason: r.Reason, NotifyURL: s.Payments.NotifyURL(p.Channel, r.AppID),
	})
	if err != nil {
		s.Logger.WarnContext(ctx, "refund request failed; will retry", "refund_no", r.RefundNo, "error", err)
		return r, nil
	}
	if res.State != channel.RefundPending {
		if err := s.ApplyRefund(ctx, r.AppID, p.Channel, res); err != nil {
			return r, err
		}
	}
	return refundBy(ctx, s.DB, r.AppID, "refund_no", r.RefundNo, false)
}

// ApplyRefund applies what a channel said about a refund, exactly once.
func (s *Service) ApplyRefund(ctx context.Context, appID string, ch merchant.Channel, cr channel.Refund) error {
	if cr.State == channel.RefundPending {
		return nil
	}
	var applied *Refund
	err := pgdb.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		r, err := refundBy(ctx, tx, appID, "refund_no", cr.RefundNo, true)
		if err != nil {
			return err
		}
		if r.TradeNo != cr.TradeNo && cr.TradeNo != "" {
			return errs.FailedPrecondition("refund %s belongs to another payment", r.RefundNo)
		}
		p, err := s.Payments.ForRefund(ctx, tx, appID, r.TradeNo)
		if err != nil {
			return err
		}
		if p.Channel != ch {
			return errs.FailedPrecondition("refund %s is not a %s refund", r.RefundNo, ch)
		}
		to, event := StatusSucceeded, EventSucceeded
		if cr.State == channel.RefundFailed {
			to, event = StatusFailed, EventFailed
		}
		ok, err := transition(ctx, tx, r.RefundNo, to, cr.ChannelRefundID, cr.FailureReason)
		if err != nil || !ok {
			return err // already final: a resent notification
		}
		if to == StatusFailed {
			// The money never left: it is refundable again.
			if _, err := s.Payments.AddRefunded(ctx, tx, r.TradeNo, -r.Amount); err != nil {
				return err
			}
		}
		final, err := refundBy(ctx, tx, appID, "refund_no", r.RefundNo, false)
		if err != nil {
			return err
		}
		applied = &final
		if err := s.Events.Publish(ctx, tx, event, final); err != nil {
			return err
		}
		// Last, as for payments: the merchant's ledger accounts stay locked only briefly.
		if err := s.Books.SettleRefund(ctx, tx, r, p, to == StatusSucceeded); err != nil {
			return fmt.Errorf("settle refund %s: %w", r.RefundNo, err)
		}
		return nil
	})
	if err == nil && applied != nil {
		event := "succeeded"
		if applied.Status == StatusFailed {
			event = "failed"
		}
		s.outcomes.WithLabelValues(string(ch), event).Inc()
	}
	return err
}

// Get finds one of the calling app's refunds.
func (s *Service) Get(ctx context.Context, by, value string) (Refund, error) {
	caller, err := auth.RequireApp(ctx)
	if err != nil {
		return Refund{}, err
	}
	if by == "" {
		return Refund{}, errs.Invalid("key", "set refund_no or merchant_refund_no")
	}
	if value == "" || len(value) > 64 {
		return Refund{}, errs.Invalid(by, "must be 1 to 64 characters")
	}
	return refundBy(ctx, s.DB, caller.AppID, by, value, false)
}

// List pages through the calling app's refunds, newest first.
func (s *Service) List(ctx context.Context, tradeNo string, status Status, pg page.Request) ([]Refund, string, error) {
	caller, err := auth.RequireApp(ctx)
	if err != nil {
		return nil, "", err
	}
	size, before, err := pg.Parse(20, 100)
	if err != nil {
		return nil, "", err
	}
	rs, err := list(ctx, s.DB, caller.AppID, tradeNo, status, before, size+1)
	if err != nil {
		return nil, "", err
	}
	rs, next := page.Cut(rs, size, func(r Refund) string { return r.RefundNo })
	return rs, next, nil
}

// RunWorker refunds duplicate payments automatically and asks channels about pending
// refunds, until ctx ends. Safe on several replicas (SKIP LOCKED leases; automatic refunds
// use a deterministic merchant_refund_no, so two replicas cannot both open one).
func (s *Service) RunWorker(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.WorkOnce(ctx); err != nil && ctx.Err() == nil {
			s.Logger.ErrorContext(ctx, "refund worker", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// WorkOnce does one round of the worker's duties.
func (s *Service) WorkOnce(ctx context.Context) error {
	dups, err := duplicatesWithoutRefund(ctx, s.DB, 20)
	if err != nil {
		return err
	}
	for _, d := range dups {
		var remaining int64
		if err := s.DB.GetContext(ctx, &remaining, `SELECT amount - refunded_amount FROM payments WHERE trade_no = $1`, d.TradeNo); err != nil {
			return err
		}
		r, created, err := s.open(ctx, d.AppID, d.TradeNo, "dup-"+d.TradeNo, remaining, "duplicate payment", true)
		if err != nil {
			s.Logger.ErrorContext(ctx, "automatic refund of duplicate payment", "trade_no", d.TradeNo, "error", err)
			continue
		}
		if created {
			if _, err := s.submit(ctx, r); err != nil {
				s.Logger.ErrorContext(ctx, "submit automatic refund", "refund_no", r.RefundNo, "error", err)
			}
		}
	}
	due, err := claimDue(ctx, s.DB, s.Now(), time.Minute, 20)
	if err != nil {
		return err
	}
	for _, r := range due {
		s.check(ctx, r)
	}
	return nil
}

// check asks the channel about a pending refund; one the channel does not know is sent again
// (refund requests are idempotent on the refund number at both channels).
func (s *Service) check(ctx context.Context, r Refund) {
	var p payment.Payment
	if err := pgdb.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var err error
		p, err = s.Payments.ForRefund(ctx, tx, r.AppID, r.TradeNo)
		return err
	}); err != nil {
		return
	}
	adapter := s.Channels[p.Channel]
	cfg, err := s.Merchants.Credentials(ctx, r.AppID, p.Channel)
	if adapter == nil || err != nil {
		return
	}
	res, err := adapter.QueryRefund(ctx, cfg, r.TradeNo, r.RefundNo)
	switch {
	case errors.Is(err, channel.ErrTradeNotFound):
		_, _ = s.submit(ctx, r)
	case err != nil:
		s.Logger.WarnContext(ctx, "query refund", "refund_no", r.RefundNo, "error", err)
	default:
		if err := s.ApplyRefund(ctx, r.AppID, p.Channel, res); err != nil {
			s.Logger.WarnContext(ctx, "apply refund", "refund_no", r.RefundNo, "error", err)
		}
	}
}
