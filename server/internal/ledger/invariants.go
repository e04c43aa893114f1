package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paycenter/paycenter/server/internal/pgdb"
)

// invariantsLock is the advisory lock key of the periodic invariant check ("ledger invariants").
const invariantsLock = 0x6c65646765720001

// RunInvariantChecks proves the books about every interval until ctx ends, so that the
// invariant metric (and its alert) means something without anyone calling CheckInvariants.
// The check reads every transfer, so replicas take turns: each looks ten times per interval,
// and only one that finds the last recorded check older than interval runs it. Every replica
// exports the latest recorded result.
func (s *Service) RunInvariantChecks(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(max(interval/10, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.periodicCheck(ctx, interval); err != nil && ctx.Err() == nil {
			s.logger.ErrorContext(ctx, "ledger invariant check", "error", err)
		}
	}
}

// periodicCheck runs the check if it is due and no other replica is running it, and reports
// whether it did. Either way the invariant gauge shows the latest recorded result.
func (s *Service) periodicCheck(ctx context.Context, interval time.Duration) (ran bool, err error) {
	err = pgdb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		// A transaction-level lock: it cannot outlive the check, whatever happens to it.
		var locked, due bool
		if err := tx.GetContext(ctx, &locked, `SELECT pg_try_advisory_xact_lock($1)`, int64(invariantsLock)); err != nil || !locked {
			return err
		}
		// A statement of its own, so that its snapshot sees a check committed by whoever
		// held the lock just before.
		if err := tx.GetContext(ctx, &due, `SELECT NOT EXISTS (SELECT 1 FROM ledger_invariant_checks
				WHERE checked_at > clock_timestamp() - make_interval(secs => $1))`, interval.Seconds()); err != nil || !due {
			return err
		}
		// The check reads in a snapshot of its own, taken after the lock was granted, and
		// records its result.
		if _, err := s.checkInvariants(ctx); err != nil {
			return err
		}
		ran = true
		return nil
	})
	if err != nil || ran {
		return ran, err
	}
	var ok bool
	switch err := s.db.GetContext(ctx, &ok, `SELECT ok FROM ledger_invariant_checks`); {
	case errors.Is(err, sql.ErrNoRows): // nobody has checked yet
	case err != nil:
		return false, fmt.Errorf("read the latest invariant check: %w", err)
	default:
		s.metrics.invariantsHold(ok)
	}
	return false, nil
}

// recordInvariants stores a check's result as the latest, for every replica to export.
func (s *Service) recordInvariants(ctx context.Context, rep InvariantReport) error {
	violations := rep.Violations
	if violations == nil {
		violations = []string{}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO ledger_invariant_checks (checked_at, ok, violations)
		VALUES (clock_timestamp(), $1, $2)
		ON CONFLICT (singleton) DO UPDATE SET checked_at = EXCLUDED.checked_at, ok = EXCLUDED.ok, violations = EXCLUDED.violations`,
		len(rep.Violations) == 0, pq.Array(violations))
	if err != nil {
		return fmt.Errorf("record the invariant check: %w", err)
	}
	return nil
}
