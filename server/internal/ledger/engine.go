package ledger

import (
	"bytes"
	"fmt"
	"math"
	"time"
)

// This file holds the ledger's rules, applied in memory to accounts locked by the caller
// (apply.go). Nothing here touches the database: the engine works on the locked rows and
// leaves behind which accounts changed, which transfers to insert and which pending
// transfers were resolved.

// entry is one transfer of a batch, with what is known about it before the rules run.
type entry struct {
	t     Transfer
	index int // position in its request
	fp    []byte
	// bad refuses the transfer without recording it (malformed id, unstorable text, a
	// reserved id); invalid refuses it and records the refusal.
	bad, invalid error
	result       Result
}

func (en *entry) resolving() bool { return en.t.PostPending || en.t.VoidPending }

// record is a transfer known to the engine: loaded from the database or created by the batch.
type record struct {
	Transfer
	fp []byte
	// fresh records are inserted when the batch is written.
	fresh bool
}

type engine struct {
	now      time.Time
	accounts map[string]*Account
	known    map[string]*record
	// inserts are the fresh records in order; resolves are loaded pending records that this
	// batch posted, voided or expired.
	inserts  []*record
	resolves []*record
	// undo reverses the mutations of the chain in progress.
	undo []func()
	// expired counts pending transfers voided by their timeout.
	expired int
	// Set by apply once the batch is written: whether it skipped its read, and the row
	// versions of the accounts it locked.
	skippedRead bool
	versions    map[string]int64
}

func newEngine(now time.Time, accounts map[string]*Account, known map[string]*record) *engine {
	return &engine{now: now, accounts: accounts, known: known}
}

// expireDue voids every loaded pending transfer whose timeout has passed and whose accounts
// are locked. It runs before the batch's transfers, so a post or void of such a transfer is
// refused as expired.
func (e *engine) expireDue() {
	for _, rec := range e.known {
		if rec.fresh || !rec.Pending || rec.Status != StatusPending || rec.ExpiresAt.IsZero() || e.now.Before(rec.ExpiresAt) {
			continue
		}
		dr, cr := e.accounts[rec.DebitAccountID], e.accounts[rec.CreditAccountID]
		if dr == nil || cr == nil {
			continue // not locked by this batch; the sweeper will get it
		}
		dr.DebitsPending -= rec.Amount
		cr.CreditsPending -= rec.Amount
		rec.Status, rec.ResolvedAt = StatusVoided, e.now
		e.resolves = append(e.resolves, rec)
		e.expired++
	}
}

// stamp sets the batch's timestamp to at, known only once it was written, on its new
// transfers and on what batch's results show of them. Only a batch that skipped its read
// needs it, and it resolves nothing and sets no expiry.
func (e *engine) stamp(batch [][]*entry, at time.Time) {
	e.now = at
	for _, rec := range e.inserts {
		rec.CreatedAt = at
	}
	for _, entries := range batch {
		for _, en := range entries {
			if t := en.result.Transfer; t != nil {
				t.CreatedAt = at
			}
		}
	}
}

// request applies one request's transfers in order, chain by chain.
func (e *engine) request(entries []*entry) {
	for i := 0; i < len(entries); {
		j := i
		for j < len(entries)-1 && entries[j].t.Linked {
			j++
		}
		e.chain(entries[i:j+1], entries[j].t.Linked)
		i = j + 1
	}
}

// chain applies a linked chain (or a single transfer) all or nothing. open is true when the
// request's last transfer is linked: the chain has no end and fails.
func (e *engine) chain(chain []*entry, open bool) {
	e.undo = e.undo[:0]
	inserted, resolved := len(e.inserts), len(e.resolves)
	failed := -1
	for k, en := range chain {
		if open && k == len(chain)-1 {
			en.result = refused(en, RefusedInvalid, "linked: the last transfer of a request must not be linked")
			en.bad = errChainOpen
			failed = k
			break
		}
		en.result = e.one(en)
		if en.result.Refusal != "" {
			failed = k
			break
		}
	}
	if failed < 0 {
		return
	}
	for i := len(e.undo) - 1; i >= 0; i-- {
		e.undo[i]()
	}
	e.undo = e.undo[:0]
	e.inserts, e.resolves = e.inserts[:inserted], e.resolves[:resolved]
	for k, en := range chain {
		if k != failed {
			en.result = refused(en, RefusedLinkedTransferFailed,
				fmt.Sprintf("linked transfer %s (index %d) failed: %s", chain[failed].t.ID, chain[failed].index, chain[failed].result.Refusal))
		}
	}
	e.recordRefusal(chain[failed])
}

var errChainOpen = fmt.Errorf("open chain")

// recordRefusal stores a refused transfer so that retrying its id returns the same refusal.
// Transfers whose id belongs to other content, that failed only because of their chain, or
// that cannot be stored are not recorded.
func (e *engine) recordRefusal(en *entry) {
	r := en.result
	if en.bad != nil || r.Replayed || r.Refusal == RefusedExistsWithDifferentContent || r.Refusal == RefusedLinkedTransferFailed {
		return
	}
	t := en.t
	t.Linked = false
	t.Status, t.CreatedAt, t.Refusal, t.Message = StatusFailed, e.now, r.Refusal, r.Message
	rec := &record{Transfer: t, fp: en.fp, fresh: true}
	e.known[t.ID] = rec
	e.inserts = append(e.inserts, rec)
}

func refused(en *entry, why Refusal, msg string) Result {
	return Result{Index: en.index, TransferID: en.t.ID, Refusal: why, Message: msg}
}

func applied(en *entry, rec *record, replayed bool) Result {
	t := rec.Transfer
	return Result{Index: en.index, TransferID: en.t.ID, Transfer: &t, Replayed: replayed}
}

// one applies a single transfer, or refuses it without changing anything.
func (e *engine) one(en *entry) Result {
	t := en.t
	if en.bad != nil {
		return refused(en, RefusedInvalid, en.bad.Error())
	}
	if rec := e.known[t.ID]; rec != nil {
		if !bytes.Equal(rec.fp, en.fp) {
			return refused(en, RefusedExistsWithDifferentContent,
				fmt.Sprintf("transfer_id: transfer %s exists with different content", t.ID))
		}
		if rec.Status == StatusFailed {
			r := refused(en, rec.Refusal, rec.Message)
			r.Replayed = true
			return r
		}
		return applied(en, rec, true)
	}
	if en.invalid != nil {
		return refused(en, RefusedInvalid, en.invalid.Error())
	}
	if en.resolving() {
		return e.resolve(en)
	}
	return e.create(en)
}

// sumOverflows reports whether a+b overflows int64 (both non-negative).
func sumOverflows(a, b int64) bool { return a > math.MaxInt64-b }

// create applies a plain or a pending transfer.
func (e *engine) create(en *entry) Result {
	t := en.t
	dr, cr := e.accounts[t.DebitAccountID], e.accounts[t.CreditAccountID]
	switch {
	case dr == nil:
		return refused(en, RefusedAccountNotFound, fmt.Sprintf("debit_account_id: account %s not found", t.DebitAccountID))
	case cr == nil:
		return refused(en, RefusedAccountNotFound, fmt.Sprintf("credit_account_id: account %s not found", t.CreditAccountID))
	case dr.Currency != t.Currency:
		return refused(en, RefusedCurrencyMismatch, fmt.Sprintf("currency: the transfer is in %s but debit account %s holds %s", t.Currency, dr.ID, dr.Currency))
	case cr.Currency != t.Currency:
		return refused(en, RefusedCurrencyMismatch, fmt.Sprintf("currency: the transfer is in %s but credit account %s holds %s", t.Currency, cr.ID, cr.Currency))
	case dr.Frozen:
		return refused(en, RefusedAccountFrozen, fmt.Sprintf("debit_account_id: account %s is frozen", dr.ID))
	case cr.Frozen:
		return refused(en, RefusedAccountFrozen, fmt.Sprintf("credit_account_id: account %s is frozen", cr.ID))
	}
	amount := t.Amount
	// Posted+pending totals of a side are kept within int64, so each part is too.
	if sumOverflows(dr.DebitsPosted+dr.DebitsPending, amount) {
		return refused(en, RefusedOverflow, fmt.Sprintf("amount: the debits of account %s would overflow", dr.ID))
	}
	if sumOverflows(cr.CreditsPosted+cr.CreditsPending, amount) {
		return refused(en, RefusedOverflow, fmt.Sprintf("amount: the credits of account %s would overflow", cr.ID))
	}
	if dr.DebitsMustNotExceedCredits && dr.DebitsPosted+dr.DebitsPending+amount > dr.CreditsPosted {
		return refused(en, RefusedExceedsCredits, fmt.Sprintf("amount: debits of account %s would exceed its credits (available %d)",
			dr.ID, dr.CreditsPosted-dr.DebitsPosted-dr.DebitsPending))
	}
	if cr.CreditsMustNotExceedDebits && cr.CreditsPosted+cr.CreditsPending+amount > cr.DebitsPosted {
		return refused(en, RefusedExceedsDebits, fmt.Sprintf("amount: credits of account %s would exceed its debits (available %d)",
			cr.ID, cr.DebitsPosted-cr.CreditsPosted-cr.CreditsPending))
	}

	rec := &record{Transfer: t, fp: en.fp, fresh: true}
	rec.Linked, rec.CreatedAt = false, e.now
	if t.Pending {
		dr.DebitsPending += amount
		cr.CreditsPending += amount
		e.undo = append(e.undo, func() { dr.DebitsPending -= amount; cr.CreditsPending -= amount })
		rec.Status = StatusPending
		if t.TimeoutSeconds > 0 {
			rec.ExpiresAt = e.now.Add(time.Duration(t.TimeoutSeconds) * time.Second)
		}
	} else {
		dr.DebitsPosted += amount
		cr.CreditsPosted += amount
		e.undo = append(e.undo, func() { dr.DebitsPosted -= amount; cr.CreditsPosted -= amount })
		rec.Status = StatusPosted
	}
	e.add(rec)
	return applied(en, rec, false)
}

func (e *engine) add(rec *record) {
	e.known[rec.ID] = rec
	e.inserts = append(e.inserts, rec)
	e.undo = append(e.undo, func() { delete(e.known, rec.ID) })
}

// resolve posts or voids a pending transfer.
func (e *engine) resolve(en *entry) Result {
	t := en.t
	p := e.known[t.PendingTransferID]
	if p == nil || !p.Pending || p.Status == StatusFailed {
		return refused(en, RefusedPendingTransferNotFound, fmt.Sprintf("pending_transfer_id: pending transfer %s not found", t.PendingTransferID))
	}
	switch {
	case p.Status == StatusPendingPosted:
		return refused(en, RefusedPendingTransferAlreadyResolved, fmt.Sprintf("pending_transfer_id: pending transfer %s was already posted", p.ID))
	case p.expired():
		return refused(en, RefusedPendingTransferExpired, fmt.Sprintf("pending_transfer_id: pending transfer %s timed out at %s", p.ID, p.ExpiresAt.UTC().Format(time.RFC3339)))
	case p.Status == StatusVoided:
		return refused(en, RefusedPendingTransferAlreadyResolved, fmt.Sprintf("pending_transfer_id: pending transfer %s was already voided", p.ID))
	case t.DebitAccountID != "" && t.DebitAccountID != p.DebitAccountID:
		return refused(en, RefusedInvalid, fmt.Sprintf("debit_account_id: differs from the pending transfer's %s", p.DebitAccountID))
	case t.CreditAccountID != "" && t.CreditAccountID != p.CreditAccountID:
		return refused(en, RefusedInvalid, fmt.Sprintf("credit_account_id: differs from the pending transfer's %s", p.CreditAccountID))
	case t.Currency != "" && t.Currency != p.Currency:
		return refused(en, RefusedCurrencyMismatch, fmt.Sprintf("currency: differs from the pending transfer's %s", p.Currency))
	case t.Code != "" && t.Code != p.Code:
		return refused(en, RefusedInvalid, fmt.Sprintf("code: differs from the pending transfer's %s", p.Code))
	}
	amount := t.Amount
	if t.PostPending {
		if amount == 0 {
			amount = p.Amount
		}
		if amount > p.Amount {
			return refused(en, RefusedExceedsPendingAmount, fmt.Sprintf("amount: %d is more than the pending %d", amount, p.Amount))
		}
	} else {
		if amount != 0 && amount != p.Amount {
			return refused(en, RefusedInvalid, fmt.Sprintf("amount: a void must be 0 or the pending amount %d", p.Amount))
		}
		amount = p.Amount
	}
	dr, cr := e.accounts[p.DebitAccountID], e.accounts[p.CreditAccountID]
	if dr == nil || cr == nil {
		return refused(en, RefusedAccountNotFound, fmt.Sprintf("pending_transfer_id: the accounts of pending transfer %s are gone", p.ID))
	}
	// Posting moves money and is refused on a frozen account; voiding only releases a hold.
	if t.PostPending && dr.Frozen {
		return refused(en, RefusedAccountFrozen, fmt.Sprintf("debit_account_id: account %s is frozen", dr.ID))
	}
	if t.PostPending && cr.Frozen {
		return refused(en, RefusedAccountFrozen, fmt.Sprintf("credit_account_id: account %s is frozen", cr.ID))
	}

	// Posting at most the pending amount moves it from pending to posted: the sums of each
	// side do not grow, so neither limits nor overflow can be hit.
	reserved, posted := p.Amount, int64(0)
	if t.PostPending {
		posted = amount
	}
	dr.DebitsPending -= reserved
	cr.CreditsPending -= reserved
	dr.DebitsPosted += posted
	cr.CreditsPosted += posted
	oldStatus := p.Status
	p.Status, p.ResolvedAt = StatusVoided, e.now
	if t.PostPending {
		p.Status = StatusPendingPosted
	}
	if !p.fresh {
		e.resolves = append(e.resolves, p)
	}
	e.undo = append(e.undo, func() {
		dr.DebitsPending += reserved
		cr.CreditsPending += reserved
		dr.DebitsPosted -= posted
		cr.CreditsPosted -= posted
		p.Status, p.ResolvedAt = oldStatus, time.Time{}
	})

	out := t
	out.Linked = false
	out.DebitAccountID, out.CreditAccountID, out.Currency = p.DebitAccountID, p.CreditAccountID, p.Currency
	out.Amount, out.CreatedAt = amount, e.now
	if out.Code == "" {
		out.Code = p.Code
	}
	if out.Reference == "" {
		out.Reference = p.Reference
	}
	out.Status = StatusVoided
	if t.PostPending {
		out.Status = StatusPosted
	}
	rec := &record{Transfer: out, fp: en.fp, fresh: true}
	e.add(rec)
	return applied(en, rec, false)
}
