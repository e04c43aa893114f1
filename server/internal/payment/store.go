package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/errs"
)

// Store is the payment domain's SQL.
type Store struct {
	db *sqlx.DB
}

// NewStore returns a Store on db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

const paymentColumns = `trade_no, merchant_id, app_id, merchant_order_no, channel, method, amount, currency, subject,
	status, refunded_amount, channel_transaction_id, payer_action, client_ip, return_url, payer_openid, metadata,
	cashier_token, duplicate, expire_at, created_at, updated_at, paid_at, closed_at`

// order is a payment_orders row.
type order struct {
	AppID           string  `db:"app_id"`
	MerchantOrderNo string  `db:"merchant_order_no"`
	Amount          int64   `db:"amount"`
	Currency        string  `db:"currency"`
	LatestTradeNo   string  `db:"latest_trade_no"`
	PaidTradeNo     *string `db:"paid_trade_no"`
}

// lockOrder returns the order row locked for the transaction, or ok=false when there is none.
func lockOrder(ctx context.Context, tx *sqlx.Tx, appID, orderNo string) (o order, ok bool, err error) {
	const q = `SELECT app_id, merchant_order_no, amount, currency, latest_trade_no, paid_trade_no
		FROM payment_orders WHERE app_id = $1 AND merchant_order_no = $2 FOR UPDATE`
	err = tx.GetContext(ctx, &o, q, appID, orderNo)
	if errors.Is(err, sql.ErrNoRows) {
		return order{}, false, nil
	}
	if err != nil {
		return order{}, false, fmt.Errorf("lock order: %w", err)
	}
	return o, true, nil
}

// insertOrder creates the order row; when a concurrent request created it first, it reports
// created=false and the caller locks the existing row instead.
func insertOrder(ctx context.Context, tx *sqlx.Tx, p Payment) (created bool, err error) {
	const q = `INSERT INTO payment_orders (app_id, merchant_order_no, merchant_id, amount, currency, latest_trade_no)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`
	res, err := tx.ExecContext(ctx, q, p.AppID, p.MerchantOrderNo, p.MerchantID, p.Amount, p.Currency, p.TradeNo)
	if err != nil {
		return false, fmt.Errorf("insert order: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func setLatestAttempt(ctx context.Context, tx *sqlx.Tx, appID, orderNo, tradeNo string) error {
	const q = `UPDATE payment_orders SET latest_trade_no = $3 WHERE app_id = $1 AND merchant_order_no = $2`
	if _, err := tx.ExecContext(ctx, q, appID, orderNo, tradeNo); err != nil {
		return fmt.Errorf("set latest attempt: %w", err)
	}
	return nil
}

// claimOrderMoney makes tradeNo the attempt whose money the order keeps; false when another
// attempt already holds it.
func claimOrderMoney(ctx context.Context, tx *sqlx.Tx, appID, orderNo, tradeNo string) (bool, error) {
	const q = `UPDATE payment_orders SET paid_trade_no = $3
		WHERE app_id = $1 AND merchant_order_no = $2 AND (paid_trade_no IS NULL OR paid_trade_no = $3)`
	res, err := tx.ExecContext(ctx, q, appID, orderNo, tradeNo)
	if err != nil {
		return false, fmt.Errorf("claim order money: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func insertPayment(ctx context.Context, tx *sqlx.Tx, p Payment, firstCheck time.Time) error {
	const q = `INSERT INTO payments (trade_no, merchant_id, app_id, merchant_order_no, channel, method, amount, currency,
			subject, status, client_ip, return_url, payer_openid, metadata, cashier_token, expire_at, next_check_at)
		VALUES (:trade_no, :merchant_id, :app_id, :merchant_order_no, :channel, :method, :amount, :currency,
			:subject, :status, :client_ip, :return_url, :payer_openid, :metadata, :cashier_token, :expire_at, :next_check_at)`
	args := struct {
		Payment
		NextCheckAt time.Time `db:"next_check_at"`
	}{p, firstCheck}
	if _, err := tx.NamedExecContext(ctx, q, args); err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	return nil
}

func (s *Store) setPayerAction(ctx context.Context, tradeNo string, a channel.PayerAction) (Payment, error) {
	const q = `UPDATE payments SET payer_action = $2, updated_at = now() WHERE trade_no = $1 RETURNING ` + paymentColumns
	var p Payment
	if err := s.db.GetContext(ctx, &p, q, tradeNo, jsonColumn[channel.PayerAction]{a}); err != nil {
		return Payment{}, fmt.Errorf("set payer action: %w", err)
	}
	return p, nil
}

type getter interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
}

func getPayment(ctx context.Context, db getter, tradeNo string, lock bool) (Payment, error) {
	q := `SELECT ` + paymentColumns + ` FROM payments WHERE trade_no = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	var p Payment
	if err := db.GetContext(ctx, &p, q, tradeNo); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Payment{}, errs.NotFound("payment %s", tradeNo)
		}
		return Payment{}, fmt.Errorf("select payment: %w", err)
	}
	return p, nil
}

// paymentBy finds an app's payment by one of its numbers (the latest attempt for an order).
func (s *Store) paymentBy(ctx context.Context, appID, column, value string) (Payment, error) {
	q := `SELECT ` + paymentColumns + ` FROM payments WHERE app_id = $1 AND ` + column + ` = $2 ORDER BY trade_no DESC LIMIT 1`
	var p Payment
	if err := s.db.GetContext(ctx, &p, q, appID, value); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Payment{}, errs.NotFound("payment %s", value)
		}
		return Payment{}, fmt.Errorf("select payment: %w", err)
	}
	return p, nil
}

func (s *Store) list(ctx context.Context, appID string, f Filter, before string, limit int) ([]Payment, error) {
	q := `SELECT ` + paymentColumns + ` FROM payments
		WHERE app_id = $1 AND ($2 = '' OR trade_no < $2) AND ($3 = '' OR status = $3) AND ($4 = '' OR channel = $4)
			AND ($5 = '' OR merchant_order_no = $5) AND ($6::timestamptz IS NULL OR created_at >= $6)
			AND ($7::timestamptz IS NULL OR created_at < $7)
		ORDER BY trade_no DESC LIMIT $8`
	var ps []Payment
	if err := s.db.SelectContext(ctx, &ps, q, appID, before, f.Status, f.Channel, f.MerchantOrderNo,
		nullTime(f.Start), nullTime(f.End), limit); err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return ps, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// transition moves a payment from one of from to to: the single conditional UPDATE every
// state change goes through. ok is false when the payment was not in from (another writer
// won); otherwise it returns the payment as changed.
func transition(ctx context.Context, tx *sqlx.Tx, tradeNo string, from []Status, to Status, set string, args ...any) (p Payment, ok bool, err error) {
	q := `UPDATE payments SET status = $2, updated_at = now()` + set + ` WHERE trade_no = $1 AND status = ANY($3)
		RETURNING ` + paymentColumns
	fromText := make([]string, len(from))
	for i, s := range from {
		fromText[i] = string(s)
	}
	err = tx.GetContext(ctx, &p, q, append([]any{tradeNo, to, pq.Array(fromText)}, args...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return Payment{}, false, nil
	}
	if err != nil {
		return Payment{}, false, fmt.Errorf("payment %s → %s: %w", tradeNo, to, err)
	}
	return p, true, nil
}

// scheduleCheck sets when the compensation worker next asks the channel (nil: never).
func scheduleCheck(ctx context.Context, db sqlx.ExecerContext, tradeNo string, at *time.Time) error {
	const q = `UPDATE payments SET next_check_at = $2, check_count = check_count + 1 WHERE trade_no = $1`
	if _, err := db.ExecContext(ctx, q, tradeNo, at); err != nil {
		return fmt.Errorf("schedule check: %w", err)
	}
	return nil
}

// claimDue leases up to limit payments due for a check: their next check moves lease ahead,
// so another replica skips them; SKIP LOCKED keeps replicas from waiting on each other.
func (s *Store) claimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Payment, error) {
	const q = `UPDATE payments SET next_check_at = $2
		WHERE trade_no IN (
			SELECT trade_no FROM payments WHERE next_check_at <= $1
			ORDER BY next_check_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING ` + paymentColumns
	var ps []Payment
	if err := s.db.SelectContext(ctx, &ps, q, now, now.Add(lease), limit); err != nil {
		return nil, fmt.Errorf("claim due payments: %w", err)
	}
	return ps, nil
}
