package payment

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/errs"
)

// watchInterval is how often a watched payment is re-read when no Changes wake the stream
// (none configured, or its connection is down). Reading the row works the same on every
// replica, whichever one applied the change.
const watchInterval = 300 * time.Millisecond

// watchSafetyInterval is how often a watched payment is re-read while Changes are live and
// wake the stream on every change: only a bound on staleness should a notification be lost.
const watchSafetyInterval = 15 * time.Second

// Watch sends the payment now and after every change until it is final or ctx ends. The
// caller is the owning app, or a browser holding the payment's cashier token.
func (s *Service) Watch(ctx context.Context, tradeNo, cashierToken string, send func(Payment) error) error {
	if tradeNo == "" {
		return errs.Invalid("trade_no", "is required")
	}
	// Subscribe before the first read, so that no change falls between the two.
	var changed <-chan struct{}
	if s.Changes != nil {
		var done func()
		changed, done = s.Changes.Subscribe(tradeNo)
		defer done()
	}
	p, err := getPayment(ctx, s.DB, tradeNo, false)
	read := time.Now()
	if err != nil {
		return err
	}
	caller, authenticated := auth.FromContext(ctx)
	switch {
	case authenticated && caller.Kind == auth.KindApp && caller.AppID == p.AppID:
	case cashierToken != "" && subtle.ConstantTimeCompare([]byte(cashierToken), []byte(p.CashierToken)) == 1:
	case !authenticated && cashierToken == "":
		return &errs.Error{Kind: errs.ErrUnauthenticated, Message: "send an app key or the payment's cashier_token"}
	default:
		return errs.NotFound("payment %s", tradeNo)
	}
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	var last time.Time
	for {
		if !p.UpdatedAt.Equal(last) {
			if err := send(p); err != nil {
				return err
			}
			last = p.UpdatedAt
		}
		if p.Final() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-t.C:
			if s.Changes.Live() && time.Since(read) < watchSafetyInterval {
				continue // changes wake us
			}
		}
		if p, err = getPayment(ctx, s.DB, tradeNo, false); err != nil {
			return err
		}
		read = time.Now()
	}
}

// ForCashier returns the payment for its hosted cashier page, if token is its cashier token;
// otherwise NOT_FOUND (a wrong token reveals nothing).
func (s *Service) ForCashier(ctx context.Context, tradeNo, token string) (Payment, error) {
	p, err := getPayment(ctx, s.DB, tradeNo, false)
	if err != nil || token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(p.CashierToken)) != 1 {
		return Payment{}, errs.NotFound("payment %s", tradeNo)
	}
	return p, nil
}
