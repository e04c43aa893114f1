package ledger

import (
	"bytes"
	"context"
	"encoding/csv"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/errs"
)

// maxStatementLines bounds one statement (and one side of a reconciliation); a longer day is
// read with ListTransfers.
const maxStatementLines = 100000

// Statement is one day of an account.
type Statement struct {
	Account      Account
	Start, End   time.Time
	Opening      int64
	Closing      int64
	TotalDebits  int64
	TotalCredits int64
	Lines        []StatementLine
	CSV          string
}

// StatementLine is one posted movement.
type StatementLine struct {
	Transfer Transfer
	// Change is the signed change of the balance on the account's normal side; After the
	// balance after it.
	Change, After int64
}

// Statement returns the day date ("YYYY-MM-DD", in time zone tz or the default) of an
// account: the balance at the day's start, every posted movement in the order applied, the
// balance at its end. Opening balance and movements are read in one snapshot.
func (s *Service) Statement(ctx context.Context, accountID, date, tz string) (Statement, error) {
	if _, err := s.visibleAccount(ctx, accountID); err != nil {
		return Statement{}, err
	}
	start, end, err := s.parseDay(date, tz)
	if err != nil {
		return Statement{}, err
	}
	var (
		opening Account
		rows    []transferRow
	)
	err = s.store.inReadOnlySnapshot(ctx, func(tx *sqlx.Tx) (err error) {
		if opening, err = s.store.accountAt(ctx, tx, accountID, start); err != nil {
			return err
		}
		rows, err = s.store.postedBetween(ctx, tx, accountID, start, end, maxStatementLines+1)
		return err
	})
	if err != nil {
		return Statement{}, err
	}
	if len(rows) > maxStatementLines {
		return Statement{}, errs.FailedPrecondition("the day has more than %d movements: page through ListTransfers instead", maxStatementLines)
	}
	st := Statement{Account: opening, Start: start, End: end, Opening: opening.Balance()}
	bal := st.Opening
	for _, r := range rows {
		t := r.transfer()
		change := t.Amount
		if (t.DebitAccountID == accountID) != (opening.Code.NormalSide() == SideDebit) {
			change = -change
		}
		if t.DebitAccountID == accountID {
			st.TotalDebits += t.Amount
		} else {
			st.TotalCredits += t.Amount
		}
		bal += change
		st.Lines = append(st.Lines, StatementLine{Transfer: t, Change: change, After: bal})
	}
	st.Closing = bal
	// The account's current state (frozen, totals) rather than its totals at the day's start.
	if st.Account, err = s.store.account(ctx, s.db, accountID); err != nil {
		return Statement{}, err
	}
	st.CSV = statementCSV(st, start.Location())
	return st, nil
}

// statementCSV renders a statement as RFC 4180 CSV: a header, an opening row, one row per
// movement and a closing row.
func statementCSV(st Statement, loc *time.Location) string {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	_ = w.Write([]string{"type", "time", "transfer_id", "code", "reference", "direction",
		"counterparty_account_id", "amount", "balance_change", "balance_after", "currency"})
	itoa := func(v int64) string { return strconv.FormatInt(v, 10) }
	cur := st.Account.Currency
	_ = w.Write([]string{"opening", st.Start.In(loc).Format(time.RFC3339), "", "", "", "", "", "", "", itoa(st.Opening), cur})
	for _, l := range st.Lines {
		t := l.Transfer
		direction, counterparty := "credit", t.DebitAccountID
		if t.DebitAccountID == st.Account.ID {
			direction, counterparty = "debit", t.CreditAccountID
		}
		_ = w.Write([]string{"movement", t.CreatedAt.In(loc).Format(time.RFC3339Nano), t.ID, string(t.Code),
			csvSafe(t.Reference), direction, counterparty, itoa(t.Amount), itoa(l.Change), itoa(l.After), cur})
	}
	_ = w.Write([]string{"closing", st.End.In(loc).Format(time.RFC3339), "", "", "", "", "", "", "", itoa(st.Closing), cur})
	w.Flush()
	return buf.String()
}

// csvSafe keeps a caller's text from being read as a formula by spreadsheets.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}
