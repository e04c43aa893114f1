package payment

import (
	"context"
	"errors"
	"time"

	"github.com/paycenter/paycenter/server/internal/channel"
)

// checkBackoff is how long the compensation worker waits between asking a channel about a
// pending payment: quickly at first (most payers pay within a minute), then less often.
var checkBackoff = []time.Duration{10 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute}

// nextCheck is when to ask again after n checks, never later than the payment's expiry (so
// an expired payment is closed promptly).
func nextCheck(now time.Time, n int, expireAt time.Time) time.Time {
	d := checkBackoff[len(checkBackoff)-1]
	if n < len(checkBackoff) {
		d = checkBackoff[n]
	}
	at := now.Add(d)
	if now.Before(expireAt) && at.After(expireAt) {
		at = expireAt
	}
	return at
}

// RunCompensation asks channels about due payments until ctx ends. Several replicas may run
// it: payments are leased with SKIP LOCKED, so each is checked by one replica at a time.
func (s *Service) RunCompensation(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.CompensateOnce(ctx); err != nil && ctx.Err() == nil {
			s.Logger.ErrorContext(ctx, "compensation", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CompensateOnce checks every payment that is due now.
func (s *Service) CompensateOnce(ctx context.Context) error {
	for {
		due, err := s.store.claimDue(ctx, s.Now(), time.Minute, 20)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, p := range due {
			s.check(ctx, p)
		}
	}
}

// check asks the channel about one pending payment: applies a final answer, closes it at the
// channel when it has expired (Alipay precreate: cancel, so a dead order cannot be paid), or
// schedules the next check.
func (s *Service) check(ctx context.Context, p Payment) {
	if p.Status != StatusPending {
		_ = scheduleCheck(ctx, s.DB, p.TradeNo, nil)
		return
	}
	adapter, cfg, err := s.channelFor(ctx, p.AppID, p.Channel)
	if err == nil {
		var t channel.Trade
		t, err = adapter.Query(ctx, cfg, p.TradeNo)
		switch {
		case err == nil && t.State != channel.TradePending:
			if _, err := s.ApplyTrade(ctx, p.AppID, p.Channel, t); err != nil {
				s.Logger.WarnContext(ctx, "compensation apply", "trade_no", p.TradeNo, "error", err)
			} else {
				s.Metrics.compensated(p, "applied_"+string(t.State))
			}
			return
		case err == nil || errors.Is(err, channel.ErrTradeNotFound):
			err = nil
		}
	}
	now := s.Now()
	if err == nil && !now.Before(p.ExpireAt) {
		s.expire(ctx, p)
		return
	}
	if err != nil {
		s.Metrics.compensated(p, "query_failed")
	}
	var count int
	_ = s.DB.GetContext(ctx, &count, `SELECT check_count FROM payments WHERE trade_no = $1`, p.TradeNo)
	at := nextCheck(now, count, p.ExpireAt)
	if err := scheduleCheck(ctx, s.DB, p.TradeNo, &at); err != nil {
		s.Logger.ErrorContext(ctx, "schedule check", "trade_no", p.TradeNo, "error", err)
	}
}

// expire closes an expired payment at its channel, then here. If the channel says it was
// paid meanwhile, the payment is applied instead.
func (s *Service) expire(ctx context.Context, p Payment) {
	err := s.closeAtChannel(ctx, p)
	if errors.Is(err, channel.ErrTradePaid) {
		s.reconcile(ctx, p)
		s.Metrics.compensated(p, "paid_at_expiry")
		return
	}
	if err != nil {
		at := s.Now().Add(time.Minute)
		_ = scheduleCheck(ctx, s.DB, p.TradeNo, &at)
		s.Metrics.compensated(p, "close_failed")
		return
	}
	if _, err := s.ApplyTrade(ctx, p.AppID, p.Channel, channel.Trade{TradeNo: p.TradeNo, State: channel.TradeClosed}); err != nil {
		s.Logger.ErrorContext(ctx, "close expired payment", "trade_no", p.TradeNo, "error", err)
		return
	}
	s.Metrics.compensated(p, "expired")
}
