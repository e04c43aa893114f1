package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paycenter/paycenter/server/internal/errs"
)

// applyOptions adjust the engine for its caller.
type applyOptions struct {
	// reservedIDs lets settlement use ids under settlementPrefix.
	reservedIDs bool
	// skipRead lets a group-commit batch skip its read when this server wrote all its
	// accounts last (see writtenAccounts).
	skipRead bool
}

// apply runs the engine in tx for requests (each with its own chains and results) and for
// expire, pending transfers the sweeper found past their timeout. It locks every account it
// may touch, in id order, before reading anything that depends on them.
func (s *Service) apply(ctx context.Context, tx *batchTx, requests [][]Transfer, expire []string, opts applyOptions) ([][]*entry, *engine, error) {
	batch := make([][]*entry, len(requests))
	lock := map[string]bool{}
	refs := map[string]bool{}
	var ids []string
	for r, transfers := range requests {
		batch[r] = make([]*entry, len(transfers))
		for i, t := range transfers {
			en := &entry{t: t, index: i}
			batch[r][i] = en
			if en.bad = storable(t); en.bad != nil {
				continue
			}
			if !opts.reservedIDs && strings.HasPrefix(t.ID, settlementPrefix) {
				en.bad = errs.Invalid("transfer_id", "ids starting with %q are reserved for settlement", settlementPrefix)
				continue
			}
			en.fp = fingerprint(t)
			ids = append(ids, t.ID)
			if en.invalid = validateTransfer(t); en.invalid != nil {
				continue
			}
			if en.resolving() {
				refs[t.PendingTransferID] = true
			} else {
				lock[t.DebitAccountID], lock[t.CreditAccountID] = true, true
			}
		}
	}
	for _, id := range expire {
		refs[id] = true
	}
	// A pending transfer's accounts never change: read them before locking, so that its
	// post or void locks them in the same order as everything else.
	if len(refs) > 0 {
		pending, err := s.store.transfers(ctx, tx, keys(refs))
		if err != nil {
			return nil, nil, err
		}
		for _, p := range pending {
			if p.Pending && p.Status != StatusFailed {
				lock[p.DebitAccountID], lock[p.CreditAccountID] = true, true
			}
		}
		ids = append(ids, keys(refs)...)
	}
	lockIDs := keys(lock)
	var (
		read  readSet
		check *versionCheck
	)
	if opts.skipRead && tx.owned() && len(refs) == 0 && !expiring(batch) {
		if accounts, versions, ok := s.written.lookup(lockIDs); ok {
			// The clock is the database's, once the write holds the locks (see writeBatch);
			// this one stands in until then.
			read = readSet{accounts: accounts, versions: versions, now: time.Now().Truncate(time.Microsecond), known: map[string]*record{}}
			check = &versionCheck{ids: lockIDs, versions: make([]int64, len(lockIDs)), newIDs: ids}
			for i, id := range lockIDs {
				check.versions[i] = versions[id]
			}
		}
	}
	if check == nil {
		// Transfers are read after locking: a concurrent transaction that wrote one of these
		// ids on the same accounts has committed by then (a concurrent one on other accounts
		// ends in a unique violation, and the batch is retried).
		var err error
		if read, err = s.store.lockAndRead(ctx, tx, lockIDs, ids); err != nil {
			return nil, nil, err
		}
	}
	before := make(map[string]Account, len(read.accounts))
	for id, a := range read.accounts {
		before[id] = *a
	}
	e := newEngine(read.now, read.accounts, read.known)
	e.expireDue()
	for _, entries := range batch {
		e.request(entries)
	}

	var changed []*Account
	for _, id := range lockIDs {
		a := read.accounts[id]
		if a == nil {
			continue
		}
		b := before[id]
		if a.DebitsPosted != b.DebitsPosted || a.CreditsPosted != b.CreditsPosted ||
			a.DebitsPending != b.DebitsPending || a.CreditsPending != b.CreditsPending {
			changed = append(changed, a)
		}
	}
	w, err := s.store.writeBatch(ctx, tx, check, changed, e.resolves, e.inserts, read.now)
	if err != nil {
		if check != nil {
			s.written.missed(lockIDs)
			return nil, nil, fmt.Errorf("%w: %w", errSkippedRead, err)
		}
		return nil, nil, err
	}
	if check != nil {
		e.skippedRead = true
		e.stamp(batch, w.at)
	}
	for _, a := range changed {
		read.versions[a.ID] = w.version
	}
	e.versions = read.versions
	return batch, e, nil
}

// errSkippedRead marks the failure of a batch that skipped its read: an account changed or a
// transfer id was not new. The batch runs again at once, with its read.
var errSkippedRead = errors.New("ledger batch without a read")

// expiring reports whether a batch creates a pending transfer with a timeout: its expiry
// is computed from the batch's timestamp before the write, so the batch needs its read.
func expiring(batch [][]*entry) bool {
	for _, entries := range batch {
		for _, en := range entries {
			if en.t.Pending && en.t.TimeoutSeconds > 0 {
				return true
			}
		}
	}
	return false
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func results(entries []*entry) []Result {
	out := make([]Result, len(entries))
	for i, en := range entries {
		out[i] = en.result
	}
	return out
}

// Post applies transfers inside the caller's transaction with the rules of CreateTransfers
// (linked chains, idempotent ids, limits, freezes) and returns one result per transfer. It
// is the in-process API for domains whose state changes move money (payments, refunds): see
// the package documentation. Refusals are results, not errors; an error means the
// transaction must be rolled back.
func (s *Service) Post(ctx context.Context, tx *sqlx.Tx, transfers []Transfer) ([]Result, error) {
	if len(transfers) == 0 || len(transfers) > MaxTransfersPerRequest {
		return nil, errs.Invalid("transfers", "must hold 1 to %d transfers", MaxTransfersPerRequest)
	}
	batch, e, err := s.apply(ctx, callerTx(tx), [][]Transfer{transfers}, nil, applyOptions{})
	if err != nil {
		return nil, fmt.Errorf("post ledger transfers: %w", err)
	}
	s.metrics.observe(batch, e)
	return results(batch[0]), nil
}

// retryable reports errors after which the whole batch transaction may simply run again.
func retryable(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "40001", "40P01": // serialization failure, deadlock
			return true
		case "26000": // a batch statement is gone from its connection: ownTx dropped it
			return true
		case "23505": // a concurrent batch inserted one of our ids first
			return pqErr.Constraint == "ledger_transfers_pkey" || pqErr.Constraint == "ledger_transfers_resolution_key"
		}
	}
	return false
}
