package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/errs"
)

// Settlement is one merchant's settlement of a month.
type Settlement struct {
	MerchantID string
	Month      string
	Currency   string
	Amount     int64
	TransferID string // empty when nothing was moved
	// AlreadySettled is true when an earlier run settled the month.
	AlreadySettled bool
	// SkippedReason says why this run settled nothing (a frozen account, a later month
	// already settled); a later run settles the merchant.
	SkippedReason string
}

// SettlementRun is the statement of a run.
type SettlementRun struct {
	Settlements []Settlement
	Total       int64 // sum of Amount
}

// RunSettlement settles month ("YYYY-MM" in the service's time zone, Asia/Shanghai by
// default) for every merchant with a MERCHANT_AVAILABLE account in currency, each merchant
// in its own transaction (no transaction spans merchants). The month must have ended.
//
// The amount settled is the merchant's "settled available balance": the posted balance of
// MERCHANT_AVAILABLE at the month's end (transfers before 00:00 of the next month's first
// day), less settlements of earlier months booked after that instant (so a late run of an
// earlier month is not counted twice), capped by what the account can give now (posted
// balance less pending debits, when it may not go negative) and never below zero. It moves
// by one transfer from MERCHANT_AVAILABLE to the merchant's SETTLEMENT_PAYABLE (opened when
// missing) with the id "settle:<merchant>:<YYYY-MM>:<currency>", code SETTLEMENT and
// reference "settlement:<YYYY-MM>", and is recorded per (merchant, currency, month): running
// a month again returns the recorded settlement and moves nothing. Months settle in order: a
// merchant whose later month is settled is skipped, as is one whose account is frozen.
func (s *Service) RunSettlement(ctx context.Context, month, currency string) (SettlementRun, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return SettlementRun{}, err
	}
	start, err := time.ParseInLocation("2006-01", month, s.opts.Location)
	if err != nil {
		return SettlementRun{}, errs.Invalid("month", "must be a month like 2024-05")
	}
	if err := validCurrency("currency", currency); err != nil {
		return SettlementRun{}, err
	}
	end := start.AddDate(0, 1, 0)
	if time.Now().Before(end) {
		return SettlementRun{}, errs.FailedPrecondition("month %s has not ended yet: it ends at %s", month, end.Format(time.RFC3339))
	}
	var run SettlementRun
	after := ""
	for {
		accounts, err := s.store.availableAccounts(ctx, currency, after, 500)
		if err != nil {
			return SettlementRun{}, err
		}
		for _, a := range accounts {
			st, err := s.settle(ctx, a, month, end)
			if err != nil {
				// Merchants settled so far stay settled; running again continues safely.
				return SettlementRun{}, fmt.Errorf("settle merchant %s: %w", a.MerchantID, err)
			}
			run.Settlements = append(run.Settlements, st)
			run.Total += st.Amount
		}
		if len(accounts) < 500 {
			return run, nil
		}
		after = accounts[len(accounts)-1].ID
	}
}

// skip ends a merchant's settlement transaction without writing anything.
type skip struct{ reason string }

func (e *skip) Error() string { return "settlement skipped: " + e.reason }

func (s *Service) settle(ctx context.Context, available Account, month string, end time.Time) (Settlement, error) {
	var out Settlement
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		out = Settlement{MerchantID: available.MerchantID, Month: month, Currency: available.Currency}
		payable, err := s.EnsureAccount(ctx, tx, available.MerchantID, SettlementPayable, available.Currency)
		if err != nil {
			return err
		}
		// Lock first: concurrent runs (other replicas) for this merchant wait here, then see
		// the settlement recorded by the first.
		read, err := s.store.lockAndRead(ctx, callerTx(tx), keys(map[string]bool{available.ID: true, payable.ID: true}), nil)
		if err != nil {
			return err
		}
		locked, now := read.accounts, read.now
		done, found, err := s.store.settlement(ctx, tx, available.MerchantID, available.Currency, month)
		if err != nil {
			return err
		}
		if found {
			out.Amount, out.TransferID, out.AlreadySettled = done.Amount, done.TransferID.String, true
			return nil
		}
		latest, err := s.store.latestSettledMonth(ctx, tx, available.MerchantID, available.Currency)
		if err != nil {
			return err
		}
		if latest > month {
			return &skip{fmt.Sprintf("month %s is already settled and months settle in order", latest)}
		}
		acc, pay := locked[available.ID], locked[payable.ID]
		if acc.Frozen || pay.Frozen {
			return &skip{"an account of the merchant is frozen"}
		}
		at, err := s.store.accountAt(ctx, tx, available.ID, end)
		if err != nil {
			return err
		}
		unreflected, err := s.store.settledSince(ctx, tx, available.MerchantID, available.Currency, month, end)
		if err != nil {
			return err
		}
		amount := at.Balance() - unreflected
		if acc.DebitsMustNotExceedCredits {
			amount = min(amount, acc.CreditsPosted-acc.DebitsPosted-acc.DebitsPending)
		}
		amount = max(amount, 0)
		transferID, settledAt := "", now
		if amount > 0 {
			t := Transfer{
				ID:             settlementPrefix + available.MerchantID + ":" + month + ":" + available.Currency,
				DebitAccountID: available.ID, CreditAccountID: payable.ID, Amount: amount, Currency: available.Currency,
				Code: CodeSettlement, Reference: "settlement:" + month, Metadata: map[string]string{"month": month},
			}
			batch, e, err := s.apply(ctx, callerTx(tx), [][]Transfer{{t}}, nil, applyOptions{reservedIDs: true})
			if err != nil {
				return err
			}
			r := batch[0][0].result
			if r.Refusal != "" {
				// Roll back so that the refusal is not recorded under the settlement's id.
				return &skip{r.Message}
			}
			s.metrics.observe(batch, e)
			transferID, settledAt = t.ID, r.Transfer.CreatedAt
		}
		out.Amount, out.TransferID = amount, transferID
		return s.store.insertSettlement(ctx, tx, out, settledAt)
	})
	var sk *skip
	if errors.As(err, &sk) {
		return Settlement{MerchantID: available.MerchantID, Month: month, Currency: available.Currency, SkippedReason: sk.reason}, nil
	}
	return out, err
}
