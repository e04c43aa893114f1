package ledger

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/paycenter/paycenter/server/internal/errs"
)

// Direction is the side of the reconciled account a record is on.
type Direction int

// Directions.
const (
	DirectionDebit Direction = iota + 1
	DirectionCredit
)

// Record is one movement of the reconciled account, ours or the counterparty's.
type Record struct {
	Reference string
	Amount    int64
	Direction Direction
}

// Difference is a reference on both sides that does not agree.
type Difference struct {
	Reference    string
	Ours, Theirs Record
	// Reason is "amount", "direction" or "amount,direction".
	Reason string
}

// Reconciliation reports how the ledger and a counterparty disagree.
type Reconciliation struct {
	MissingHere  []Record // the counterparty has them, the ledger does not
	MissingThere []Record // the ledger has them, the counterparty does not
	Different    []Difference
	Matched      int
}

// Reconcile compares the counterparty's records of a day with the account's posted
// movements of that day. It changes nothing.
func (s *Service) Reconcile(ctx context.Context, accountID, date, tz string, theirs []Record) (Reconciliation, error) {
	if _, err := s.visibleAccount(ctx, accountID); err != nil {
		return Reconciliation{}, err
	}
	start, end, err := s.parseDay(date, tz)
	if err != nil {
		return Reconciliation{}, err
	}
	if len(theirs) > maxReconcileRecords {
		return Reconciliation{}, errs.Invalid("records", "must hold at most %d records", maxReconcileRecords)
	}
	for i, r := range theirs {
		field := fmt.Sprintf("records[%d]", i)
		switch {
		case r.Reference == "" || utf8.RuneCountInString(r.Reference) > maxReferenceLen:
			return Reconciliation{}, errs.Invalid(field+".reference", "must be 1 to %d characters", maxReferenceLen)
		case r.Amount <= 0:
			return Reconciliation{}, errs.Invalid(field+".amount", "must be more than zero")
		case r.Direction != DirectionDebit && r.Direction != DirectionCredit:
			return Reconciliation{}, errs.Invalid(field+".direction", "must be DIRECTION_DEBIT or DIRECTION_CREDIT")
		}
	}
	rows, err := s.store.postedBetween(ctx, s.db, accountID, start, end, maxStatementLines+1)
	if err != nil {
		return Reconciliation{}, err
	}
	if len(rows) > maxStatementLines {
		return Reconciliation{}, errs.FailedPrecondition("the day has more than %d movements to reconcile", maxStatementLines)
	}
	ours := make([]Record, len(rows))
	for i, r := range rows {
		ours[i] = Record{Reference: r.Reference, Amount: r.Amount, Direction: DirectionCredit}
		if r.DebitAccountID == accountID {
			ours[i].Direction = DirectionDebit
		}
	}
	return reconcile(ours, theirs), nil
}

// reconcile matches records by reference. Within a reference, records equal in amount and
// direction match one to one; the rest are paired in (direction, amount) order as
// differences, and what remains is missing on the other side. Output is sorted by reference.
func reconcile(ours, theirs []Record) Reconciliation {
	byRef := func(rs []Record) map[string][]Record {
		m := map[string][]Record{}
		for _, r := range rs {
			m[r.Reference] = append(m[r.Reference], r)
		}
		return m
	}
	o, t := byRef(ours), byRef(theirs)
	refs := make([]string, 0, len(o)+len(t))
	for ref := range o {
		refs = append(refs, ref)
	}
	for ref := range t {
		if _, ok := o[ref]; !ok {
			refs = append(refs, ref)
		}
	}
	slices.Sort(refs)
	order := func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.Amount, b.Amount))
	}
	var rep Reconciliation
	for _, ref := range refs {
		os, ts := o[ref], t[ref]
		slices.SortFunc(os, order)
		slices.SortFunc(ts, order)
		// Exact matches: a merge of the two sorted lists.
		var restO, restT []Record
		i, j := 0, 0
		for i < len(os) && j < len(ts) {
			switch c := order(os[i], ts[j]); {
			case c == 0:
				rep.Matched++
				i, j = i+1, j+1
			case c < 0:
				restO = append(restO, os[i])
				i++
			default:
				restT = append(restT, ts[j])
				j++
			}
		}
		restO, restT = append(restO, os[i:]...), append(restT, ts[j:]...)
		n := min(len(restO), len(restT))
		for k := 0; k < n; k++ {
			var why []string
			if restO[k].Amount != restT[k].Amount {
				why = append(why, "amount")
			}
			if restO[k].Direction != restT[k].Direction {
				why = append(why, "direction")
			}
			rep.Different = append(rep.Different, Difference{Reference: ref, Ours: restO[k], Theirs: restT[k], Reason: strings.Join(why, ",")})
		}
		rep.MissingThere = append(rep.MissingThere, restO[n:]...)
		rep.MissingHere = append(rep.MissingHere, restT[n:]...)
	}
	return rep
}
