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

// insertFirstAttempt creates an order and its first attempt in one statement, a transaction
// of its own and one round trip: the common case, a merchant_order_no not seen before. It
// writes nothing and reports false when the order exists; the caller then compares and
// supersedes attempts in a transaction.
func insertFirstAttempt(ctx context.Context, db sqlx.ExecerContext, p Payment, firstCheck time.Time) (bool, error) {
	const q = `WITH o AS (
			INSERT INTO payment_orders (app_id, merchant_order_no, merchant_id, amount, currency, latest_trade_no)
			VALUES ($3, $4, $2, $7, $8, $1) ON CONFLICT DO NOTHING
			RETURNING 1
		)
		INSERT INTO payments (trade_no, merchant_id, app_id, merchant_order_no, channel, method, amount, currency,
			subject, status, client_ip, return_url, payer_openid, metadata, cashier_token, expire_at, next_check_at)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::bigint, $8::text,
			$9::text, $10::text, $11::text, $12::text, $13::text, $14::jsonb, $15::text, $16::timestamptz, $17::timestamptz
		WHERE EXISTS (SELECT FROM o)`
	res, err := db.ExecContext(ctx, q, p.TradeNo, p.MerchantID, p.AppID, p.MerchantOrderNo, p.Channel, p.Method, p.Amount, p.Currency,
		p.Subject, p.Status, p.ClientIP, p.ReturnURL, p.PayerOpenID, p.Metadata, p.CashierToken, p.ExpireAt, firstCheck)
	if err != nil {
		return false, fmt.Errorf("insert order and payment: %w", err)
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

// succeed marks locked payment p SUCCEEDED and, when it was PENDING, claims its order's money
// for it, in one statement. It is a duplicate when it was not PENDING (money after close,
// which never takes the order's money from a live attempt) or when another attempt of its
// order already holds the money.
func succeed(ctx context.Context, tx *sqlx.Tx, p Payment, paidAt time.Time, transactionID string) (Payment, error) {
	const q = `WITH claim AS (
			UPDATE payment_orders SET paid_trade_no = $1
			WHERE app_id = $2 AND merchant_order_no = $3 AND (paid_trade_no IS NULL OR paid_trade_no = $1) AND $6
			RETURNING 1
		)
		UPDATE payments SET status = 'SUCCEEDED', updated_at = now(), paid_at = $4, channel_transaction_id = $5,
			duplicate = NOT EXISTS (SELECT FROM claim), next_check_at = NULL
		WHERE trade_no = $1 AND status IN ('PENDING', 'CLOSED', 'FAILED')
		RETURNING ` + paymentColumns
	var paid Payment
	pending := p.Status == StatusPending
	if err := tx.GetContext(ctx, &paid, q, p.TradeNo, p.AppID, p.MerchantOrderNo, paidAt, transactionID, pending); err != nil {
		// No row (ErrNoRows) cannot happen to a locked payment that was not SUCCEEDED.
		return Payment{}, fmt.Errorf("payment %s → SUCCEEDED: %w", p.TradeNo, err)
	}
	return paid, nil
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
