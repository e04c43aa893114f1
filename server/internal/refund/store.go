package refund

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/errs"
)

const refundColumns = `refund_no, merchant_id, app_id, trade_no, merchant_refund_no, amount, currency, reason, status,
	channel_refund_id, failure_reason, automatic, created_at, updated_at, succeeded_at`

type getter interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
}

func refundBy(ctx context.Context, db getter, appID, column, value string, lock bool) (Refund, error) {
	q := `SELECT ` + refundColumns + ` FROM refunds WHERE app_id = $1 AND ` + column + ` = $2`
	if lock {
		q += ` FOR UPDATE`
	}
	var r Refund
	if err := db.GetContext(ctx, &r, q, appID, value); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Refund{}, errs.NotFound("refund %s", value)
		}
		return Refund{}, fmt.Errorf("select refund: %w", err)
	}
	return r, nil
}

func insertRefund(ctx context.Context, tx *sqlx.Tx, r Refund, firstCheck time.Time) error {
	const q = `INSERT INTO refunds (refund_no, merchant_id, app_id, trade_no, merchant_refund_no, amount, currency, reason,
			status, automatic, next_check_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	_, err := tx.ExecContext(ctx, q, r.RefundNo, r.MerchantID, r.AppID, r.TradeNo, r.MerchantRefundNo, r.Amount, r.Currency,
		r.Reason, r.Status, r.Automatic, firstCheck)
	if err != nil {
		return fmt.Errorf("insert refund: %w", err)
	}
	return nil
}

// transition moves a pending refund to a final status: one conditional UPDATE.
func transition(ctx context.Context, tx *sqlx.Tx, refundNo string, to Status, channelID, failure string) (bool, error) {
	const q = `UPDATE refunds SET status = $2, channel_refund_id = CASE WHEN $3 = '' THEN channel_refund_id ELSE $3 END,
			failure_reason = $4, succeeded_at = CASE WHEN $2 = 'SUCCEEDED' THEN now() END, next_check_at = NULL, updated_at = now()
		WHERE refund_no = $1 AND status = 'PENDING'`
	res, err := tx.ExecContext(ctx, q, refundNo, to, channelID, failure)
	if err != nil {
		return false, fmt.Errorf("refund %s → %s: %w", refundNo, to, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func list(ctx context.Context, db *sqlx.DB, appID, tradeNo string, status Status, before string, limit int) ([]Refund, error) {
	const q = `SELECT ` + refundColumns + ` FROM refunds
		WHERE app_id = $1 AND ($2 = '' OR trade_no = $2) AND ($3 = '' OR status = $3) AND ($4 = '' OR refund_no < $4)
		ORDER BY refund_no DESC LIMIT $5`
	var rs []Refund
	if err := db.SelectContext(ctx, &rs, q, appID, tradeNo, status, before, limit); err != nil {
		return nil, fmt.Errorf("list refunds: %w", err)
	}
	return rs, nil
}

// claimDue leases pending refunds due for a check (SKIP LOCKED: one replica each).
func claimDue(ctx context.Context, db *sqlx.DB, now time.Time, lease time.Duration, limit int) ([]Refund, error) {
	const q = `UPDATE refunds SET next_check_at = $2, check_count = check_count + 1
		WHERE refund_no IN (SELECT refund_no FROM refunds WHERE next_check_at <= $1
			ORDER BY next_check_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING ` + refundColumns
	var rs []Refund
	if err := db.SelectContext(ctx, &rs, q, now, now.Add(lease), limit); err != nil {
		return nil, fmt.Errorf("claim due refunds: %w", err)
	}
	return rs, nil
}

// duplicatesWithoutRefund finds duplicate payments that have no automatic refund yet.
func duplicatesWithoutRefund(ctx context.Context, db *sqlx.DB, limit int) ([]struct {
	AppID   string `db:"app_id"`
	TradeNo string `db:"trade_no"`
}, error) {
	const q = `SELECT p.app_id, p.trade_no FROM payments p
		WHERE p.duplicate AND p.status = 'SUCCEEDED' AND p.refunded_amount < p.amount
			AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.trade_no = p.trade_no AND r.automatic)
		LIMIT $1`
	var out []struct {
		AppID   string `db:"app_id"`
		TradeNo string `db:"trade_no"`
	}
	if err := db.SelectContext(ctx, &out, q, limit); err != nil {
		return nil, fmt.Errorf("find duplicate payments: %w", err)
	}
	return out, nil
}
