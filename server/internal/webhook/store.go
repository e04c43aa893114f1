package webhook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paycenter/paycenter/server/internal/errs"
)

// store is the outbox's SQL.
type store struct {
	db *sqlx.DB
}

// eventRow is a webhook_events row.
type eventRow struct {
	MerchantID    string     `db:"merchant_id"`
	EventID       string     `db:"event_id"`
	AppID         string     `db:"app_id"`
	Type          string     `db:"type"`
	TradeNo       string     `db:"trade_no"`
	RefundNo      string     `db:"refund_no"`
	Payload       string     `db:"payload"`
	Status        Status     `db:"status"`
	Attempts      int        `db:"attempts"`
	MaxAttempts   int        `db:"max_attempts"`
	NextAttemptAt *time.Time `db:"next_attempt_at"`
	Seq           int64      `db:"seq"`
	CreatedAt     time.Time  `db:"created_at"`
}

const eventColumns = `merchant_id, event_id, app_id, type, trade_no, refund_no, payload, status, attempts,
	max_attempts, next_attempt_at, seq, created_at`

// attemptRow is a webhook_attempts row.
type attemptRow struct {
	EventID     string    `db:"event_id"`
	Attempt     int       `db:"attempt"`
	AttemptedAt time.Time `db:"attempted_at"`
	Result      Result    `db:"result"`
	HTTPStatus  int       `db:"http_status"`
	Error       string    `db:"error"`
	DurationMS  int64     `db:"duration_ms"`
}

// insert adds a pending event due at once, unless the merchant already has its id.
func (s *store) insert(ctx context.Context, tx *sqlx.Tx, r eventRow) error {
	const q = `INSERT INTO webhook_events (merchant_id, event_id, app_id, type, trade_no, refund_no, payload,
			status, max_attempts, next_attempt_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDING', $8, $9, $9, $9)
		ON CONFLICT (merchant_id, event_id) DO NOTHING`
	if _, err := tx.ExecContext(ctx, q, r.MerchantID, r.EventID, r.AppID, r.Type, r.TradeNo, r.RefundNo, r.Payload,
		r.MaxAttempts, r.CreatedAt); err != nil {
		return fmt.Errorf("insert webhook event: %w", err)
	}
	return nil
}

func (s *store) list(ctx context.Context, q sqlx.QueryerContext, appID, tradeNo string, statuses []string, before int64, limit int) ([]eventRow, error) {
	const query = `SELECT ` + eventColumns + ` FROM webhook_events
		WHERE app_id = $1 AND ($2 = '' OR trade_no = $2) AND (coalesce(cardinality($3::text[]), 0) = 0 OR status = ANY($3))
			AND ($4::bigint = 0 OR seq < $4)
		ORDER BY seq DESC LIMIT $5`
	var rs []eventRow
	if err := sqlx.SelectContext(ctx, q, &rs, query, appID, tradeNo, pq.Array(statuses), before, limit); err != nil {
		return nil, fmt.Errorf("list webhook events: %w", err)
	}
	return rs, nil
}

func (s *store) event(ctx context.Context, q sqlx.QueryerContext, appID, eventID string) (eventRow, error) {
	const query = `SELECT ` + eventColumns + ` FROM webhook_events WHERE app_id = $1 AND event_id = $2`
	var r eventRow
	if err := sqlx.GetContext(ctx, q, &r, query, appID, eventID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return eventRow{}, errs.NotFound("webhook event %s", eventID)
		}
		return eventRow{}, fmt.Errorf("select webhook event: %w", err)
	}
	return r, nil
}

// attempts returns the attempts of a merchant's events, by event id, oldest first.
func (s *store) attempts(ctx context.Context, q sqlx.QueryerContext, merchantID string, eventIDs []string) (map[string][]attemptRow, error) {
	const query = `SELECT event_id, attempt, attempted_at, result, http_status, error, duration_ms
		FROM webhook_attempts WHERE merchant_id = $1 AND event_id = ANY($2)
		ORDER BY event_id, attempt`
	var rs []attemptRow
	if err := sqlx.SelectContext(ctx, q, &rs, query, merchantID, pq.Array(eventIDs)); err != nil {
		return nil, fmt.Errorf("list webhook attempts: %w", err)
	}
	out := make(map[string][]attemptRow, len(eventIDs))
	for _, r := range rs {
		out[r.EventID] = append(out[r.EventID], r)
	}
	return out, nil
}

// errNoChange: requeue found no event it could requeue (missing, or an attempt in flight).
var errNoChange = errors.New("webhook event not requeued")

// requeue makes an event due at now. A pending event keeps its schedule; a finished one is
// allowed one more attempt. An event with an attempt in flight is left alone: making it due
// would let a second dispatcher send it while the first still is.
func (s *store) requeue(ctx context.Context, q sqlx.QueryerContext, appID, eventID string, now time.Time) (eventRow, error) {
	const query = `UPDATE webhook_events SET status = 'PENDING', next_attempt_at = $3, updated_at = $3,
			max_attempts = CASE WHEN status = 'PENDING' THEN max_attempts ELSE attempts + 1 END
		WHERE app_id = $1 AND event_id = $2 AND status <> 'SENDING'
		RETURNING ` + eventColumns
	var r eventRow
	if err := sqlx.GetContext(ctx, q, &r, query, appID, eventID, now); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return eventRow{}, errNoChange
		}
		return eventRow{}, fmt.Errorf("requeue webhook event: %w", err)
	}
	return r, nil
}

// claim takes up to limit due events for this dispatcher: each becomes SENDING with a lease
// until now+lease, gets its next attempt number, and that attempt is recorded as "sending".
// SKIP LOCKED lets dispatchers claim side by side without waiting for or taking each other's
// events; an event whose lease ran out (its dispatcher died) is due again.
func (s *store) claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]eventRow, error) {
	const q = `WITH due AS (
			SELECT merchant_id, event_id FROM webhook_events
			WHERE status IN ('PENDING', 'SENDING') AND next_attempt_at <= $1
			ORDER BY next_attempt_at
			LIMIT $3
			FOR UPDATE SKIP LOCKED
		), claimed AS (
			UPDATE webhook_events e SET status = 'SENDING', attempts = e.attempts + 1,
				next_attempt_at = $2, updated_at = $1
			FROM due WHERE e.merchant_id = due.merchant_id AND e.event_id = due.event_id
			RETURNING e.merchant_id, e.event_id, e.app_id, e.type, e.trade_no, e.refund_no, e.payload,
				e.status, e.attempts, e.max_attempts, e.next_attempt_at, e.seq, e.created_at
		), recorded AS (
			INSERT INTO webhook_attempts (merchant_id, event_id, attempt, attempted_at, result)
			SELECT merchant_id, event_id, attempts, $1, 'sending' FROM claimed
		)
		SELECT ` + eventColumns + ` FROM claimed`
	var rs []eventRow
	if err := s.db.SelectContext(ctx, &rs, q, now, now.Add(lease), limit); err != nil {
		return nil, fmt.Errorf("claim webhook events: %w", err)
	}
	return rs, nil
}

// outcome is how an attempt ended and what becomes of its event.
type outcome struct {
	result     Result
	httpStatus int
	errText    string
	duration   time.Duration
	status     Status     // the event's new status
	next       *time.Time // when pending: the next attempt
	at         time.Time  // when the outcome was recorded
}

// finish records attempt's outcome and moves its event on. The event moves only if this
// attempt is still its latest and in flight: if the lease ran out and another dispatcher
// claimed the event, only the attempt row is written.
func (s *store) finish(ctx context.Context, r eventRow, o outcome) error {
	const q = `WITH recorded AS (
			UPDATE webhook_attempts SET result = $4, http_status = $5, error = $6, duration_ms = $7
			WHERE merchant_id = $1 AND event_id = $2 AND attempt = $3
		)
		UPDATE webhook_events SET status = $8, next_attempt_at = $9, updated_at = $10
		WHERE merchant_id = $1 AND event_id = $2 AND attempts = $3 AND status = 'SENDING'`
	if _, err := s.db.ExecContext(ctx, q, r.MerchantID, r.EventID, r.Attempts, o.result, o.httpStatus, o.errText,
		o.duration.Milliseconds(), o.status, o.next, o.at); err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	return nil
}

// backlog counts unfinished events and returns the oldest one's creation time and the
// earliest time one of them is due for its next attempt (for one in flight: when its lease
// ends); zero times when there are none.
func (s *store) backlog(ctx context.Context) (n int64, oldest, due time.Time, err error) {
	const q = `SELECT count(*), min(created_at), min(next_attempt_at) FROM webhook_events WHERE status IN ('PENDING', 'SENDING')`
	var o, d sql.NullTime
	if err := s.db.QueryRowContext(ctx, q).Scan(&n, &o, &d); err != nil {
		return 0, time.Time{}, time.Time{}, fmt.Errorf("count webhook backlog: %w", err)
	}
	return n, o.Time, d.Time, nil
}
