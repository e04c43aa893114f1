// Package ledger is paycenter's double-entry ledger in integer minor units.
//
// Accounts belong to a merchant or to the platform, have a code (which fixes their normal
// side) and a currency, carry running totals (debits and credits, posted and pending) and may
// forbid debits exceeding credits or the reverse. Transfers move an amount from a debit
// account to a credit account of the same currency; they are immutable, keyed by a caller
// chosen id, and a refused transfer is recorded too, so retrying an id always gets the first
// answer. Pending transfers reserve an amount until they are posted (fully or partly),
// voided, or time out. A frozen account accepts no new movement.
//
// # Applying transfers
//
// Every write goes through one engine (apply), in one database transaction and two
// statements: (1) lock every touched account with SELECT ... FOR UPDATE in account id order,
// then read the clock and the transfers whose ids the batch names (idempotency, pending
// transfers), as one multi-statement query whose later statements see everything committed
// by whoever held the locks before; (2) apply the rules in memory and write, in one
// statement, one UPDATE of every touched account (each once), the resolution of pending
// transfers and one multi-row INSERT of the new transfers. A group-commit batch owns its
// transaction, so BEGIN travels with (1) and COMMIT with (2): two round trips, of statements
// prepared once per connection (see batchTx). Transfers are processed in order; a refused
// transfer does not affect its neighbours, except within a linked chain (a run of transfers
// with linked set, ended by the first one without), which succeeds or fails as a whole. The database backs the rules up: totals may not go negative
// or break an account's limits (CHECK), a transfer id is stored once (primary key) and a
// pending transfer is resolved once (unique index, conditional UPDATE); a batch that trips
// over a concurrent writer is retried whole.
//
// CreateTransfers requests are group-committed: concurrent requests are queued and a
// committer goroutine (started on demand) takes everything queued, up to Options.MaxBatch
// transfers, into one transaction; the next batch gathers while it commits. Only when a
// batch has run for Options.StuckAfter (waiting for a lock, say) do more committers start,
// up to Options.Workers, on disjoint accounts: a committer skips requests naming an account
// that a batch in flight holds, so batches never wait for each other's locks. Each request
// keeps its own chains and gets its own results. If a batch fails for any other reason, its
// requests are applied one by one, so that one request cannot fail its neighbours.
//
// Whole-request problems are RPC errors: a CreateTransfers without transfers or with more
// than 1000 is INVALID_ARGUMENT on "transfers". Everything wrong with one transfer (a
// malformed field, an unknown or frozen account, a limit) is that transfer's result
// (TransferResult.error and a message naming the field or account), and the refusal is
// recorded under its id, so a retry gets the same answer and nothing else changes. Only
// transfers whose id is malformed or whose text PostgreSQL cannot store (NUL) are refused
// without being recorded.
//
// # In-process API (payments, refunds, settlement)
//
// Domains that move money call the ledger inside their own transaction, so the state change
// and its transfers commit together:
//
//	err := pgdb.InTx(ctx, db, func(tx *sqlx.Tx) error {
//		// ... the conditional UPDATE of the payment ...
//		clearing, err := books.EnsureAccount(ctx, tx, merchantID, ledger.ChannelClearingAlipay, "CNY")
//		available, err := books.EnsureAccount(ctx, tx, merchantID, ledger.MerchantAvailable, "CNY")
//		results, err := books.Post(ctx, tx, []ledger.Transfer{{ID: "pay:" + tradeNo, ...}})
//		if err != nil { return err }
//		if err := ledger.FirstRefusal(results); err != nil { return err } // roll everything back
//		return nil
//	})
//
// EnsureAccount returns the account of (merchant, code, currency), creating it with the
// code's default limits (DefaultLimits) when missing. Post applies transfers with exactly the
// rules and lock order of CreateTransfers. Callers should post once per transaction, as late
// as possible (accounts stay locked until the caller commits), and must not lock ledger
// accounts themselves in another order. Post does no authorisation: the caller is trusted
// domain code. An error from Post (not a refusal) leaves the transaction unusable: roll back
// and retry the whole transaction.
//
// # Time, history, settlement
//
// A transfer's created_at is taken from the database clock once per transaction, after the
// accounts are locked, so an account's history ordered by (created_at, seq) is the order in
// which its transfers were applied. Point-in-time balances, statements and reconciliation
// derive from that history; days are calendar days in a time zone (Asia/Shanghai unless
// asked otherwise). The monthly settlement rule is documented on Service.RunSettlement.
package ledger

import (
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // Asia/Shanghai must resolve even on hosts without a zoneinfo database
)

// AccountCode says what an account is for; it fixes the account's normal side.
type AccountCode string

// Account codes.
const (
	MerchantAvailable         AccountCode = "MERCHANT_AVAILABLE"
	MerchantPendingSettlement AccountCode = "MERCHANT_PENDING_SETTLEMENT"
	ChannelClearingAlipay     AccountCode = "CHANNEL_CLEARING_ALIPAY"
	ChannelClearingWechatPay  AccountCode = "CHANNEL_CLEARING_WECHATPAY"
	ChannelClearingCollector  AccountCode = "CHANNEL_CLEARING_COLLECTOR"
	PlatformFees              AccountCode = "PLATFORM_FEES"
	SettlementPayable         AccountCode = "SETTLEMENT_PAYABLE"
	ExternalFunding           AccountCode = "EXTERNAL_FUNDING"
)

// Side is the side of an account on which its balance grows.
type Side int

// Sides.
const (
	SideDebit Side = iota + 1
	SideCredit
)

// NormalSide returns the side on which accounts of code c grow: assets (what channels owe
// paycenter, outside funding) are debit-normal, liabilities and income credit-normal.
func (c AccountCode) NormalSide() Side {
	switch c {
	case ChannelClearingAlipay, ChannelClearingWechatPay, ChannelClearingCollector, ExternalFunding:
		return SideDebit
	}
	return SideCredit
}

func (c AccountCode) valid() bool {
	switch c {
	case MerchantAvailable, MerchantPendingSettlement, ChannelClearingAlipay, ChannelClearingWechatPay,
		ChannelClearingCollector, PlatformFees, SettlementPayable, ExternalFunding:
		return true
	}
	return false
}

// merchantOnly reports whether accounts of code c always belong to a merchant.
func (c AccountCode) merchantOnly() bool {
	return c == MerchantAvailable || c == MerchantPendingSettlement || c == SettlementPayable
}

// Limits are an account's balance rules.
type Limits struct {
	// DebitsMustNotExceedCredits refuses a transfer that would make posted+pending debits
	// exceed posted credits.
	DebitsMustNotExceedCredits bool
	// CreditsMustNotExceedDebits refuses a transfer that would make posted+pending credits
	// exceed posted debits.
	CreditsMustNotExceedDebits bool
}

// DefaultLimits are the limits EnsureAccount gives a new account: what paycenter owes a
// merchant can never go below zero; other accounts have no limit.
func DefaultLimits(c AccountCode) Limits {
	return Limits{DebitsMustNotExceedCredits: c.merchantOnly()}
}

// Account holds money of one owner, code and currency.
type Account struct {
	ID         string      `db:"account_id"`
	MerchantID string      `db:"merchant_id"` // empty for platform accounts
	Code       AccountCode `db:"code"`
	Currency   string      `db:"currency"`
	// Limits.
	DebitsMustNotExceedCredits bool   `db:"debits_must_not_exceed_credits"`
	CreditsMustNotExceedDebits bool   `db:"credits_must_not_exceed_debits"`
	Frozen                     bool   `db:"frozen"`
	FreezeReason               string `db:"freeze_reason"`
	// Running totals, minor units.
	DebitsPosted   int64     `db:"debits_posted"`
	CreditsPosted  int64     `db:"credits_posted"`
	DebitsPending  int64     `db:"debits_pending"`
	CreditsPending int64     `db:"credits_pending"`
	Description    string    `db:"description"`
	CreatedAt      time.Time `db:"created_at"`
	UpdatedAt      time.Time `db:"updated_at"`
}

// Balance is the posted balance on the account's normal side.
func (a Account) Balance() int64 { return balance(a.Code, a.DebitsPosted, a.CreditsPosted) }

// balance is credits-debits for credit-normal codes and debits-credits otherwise. Totals are
// never negative, so the difference cannot overflow.
func balance(c AccountCode, debits, credits int64) int64 {
	if c.NormalSide() == SideDebit {
		return debits - credits
	}
	return credits - debits
}

// TransferCode says why money moved.
type TransferCode string

// Transfer codes.
const (
	CodePayment    TransferCode = "PAYMENT"
	CodeRefund     TransferCode = "REFUND"
	CodeFee        TransferCode = "FEE"
	CodeRecharge   TransferCode = "RECHARGE"
	CodeSettlement TransferCode = "SETTLEMENT"
	CodeAdjustment TransferCode = "ADJUSTMENT"
	CodeReversal   TransferCode = "REVERSAL"
)

func (c TransferCode) valid() bool {
	switch c {
	case CodePayment, CodeRefund, CodeFee, CodeRecharge, CodeSettlement, CodeAdjustment, CodeReversal:
		return true
	}
	return false
}

// Status is where a transfer is.
type Status string

// Transfer states. A plain transfer and a post_pending transfer are POSTED; a pending one is
// PENDING until posted (PENDING_POSTED) or voided or timed out (VOIDED); a void_pending
// transfer is VOIDED; a refused one is FAILED.
const (
	StatusPosted        Status = "POSTED"
	StatusPending       Status = "PENDING"
	StatusPendingPosted Status = "PENDING_POSTED"
	StatusVoided        Status = "VOIDED"
	StatusFailed        Status = "FAILED"
)

// Transfer moves Amount from DebitAccountID to CreditAccountID.
type Transfer struct {
	ID              string
	DebitAccountID  string
	CreditAccountID string
	// Minor units, more than zero; for PostPending 0 means the whole pending amount, for
	// VoidPending 0 or the pending amount.
	Amount    int64
	Currency  string
	Code      TransferCode
	Reference string
	Metadata  map[string]string
	// At most one of Pending, PostPending and VoidPending.
	Pending     bool
	PostPending bool
	VoidPending bool
	// Linked ties the transfer's fate to the next one of the same request.
	Linked bool
	// The pending transfer a PostPending or VoidPending transfer resolves. For those, empty
	// accounts, currency and code are taken from the pending transfer.
	PendingTransferID string
	// For Pending: void automatically after this many seconds (0: never).
	TimeoutSeconds int32

	// Output fields.
	Status     Status
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero unless a pending transfer with a timeout
	ResolvedAt time.Time // zero unless a resolved pending transfer
	// For FAILED transfers: why.
	Refusal Refusal
	Message string
}

// expired reports whether a voided pending transfer was voided by its timeout.
func (t Transfer) expired() bool {
	return t.Status == StatusVoided && t.Pending && !t.ExpiresAt.IsZero() && !t.ResolvedAt.Before(t.ExpiresAt)
}

// Refusal says why a transfer was refused; the zero value means it was not.
type Refusal string

// Refusals (the contract's TransferError values).
const (
	RefusedInvalid                        Refusal = "INVALID"
	RefusedExistsWithDifferentContent     Refusal = "EXISTS_WITH_DIFFERENT_CONTENT"
	RefusedAccountNotFound                Refusal = "ACCOUNT_NOT_FOUND"
	RefusedCurrencyMismatch               Refusal = "CURRENCY_MISMATCH"
	RefusedAccountFrozen                  Refusal = "ACCOUNT_FROZEN"
	RefusedExceedsCredits                 Refusal = "EXCEEDS_CREDITS"
	RefusedExceedsDebits                  Refusal = "EXCEEDS_DEBITS"
	RefusedOverflow                       Refusal = "OVERFLOW"
	RefusedPendingTransferNotFound        Refusal = "PENDING_TRANSFER_NOT_FOUND"
	RefusedPendingTransferAlreadyResolved Refusal = "PENDING_TRANSFER_ALREADY_RESOLVED"
	RefusedPendingTransferExpired         Refusal = "PENDING_TRANSFER_EXPIRED"
	RefusedExceedsPendingAmount           Refusal = "EXCEEDS_PENDING_AMOUNT"
	RefusedLinkedTransferFailed           Refusal = "LINKED_TRANSFER_FAILED"
)

// Result is the outcome of one transfer.
type Result struct {
	// Index is the transfer's position in its request.
	Index      int
	TransferID string
	// Refusal is empty when the transfer is applied (now, or earlier with the same content).
	Refusal Refusal
	// Message explains a refusal, naming the field or account.
	Message string
	// Transfer is the stored transfer when applied.
	Transfer *Transfer
	// Replayed is true when the id had been applied (or refused) before.
	Replayed bool
}

// ErrRefused is matched (errors.Is) by the error FirstRefusal returns.
var ErrRefused = errors.New("ledger refused a transfer")

// RefusalError is a refused transfer as an error, for in-process callers that must roll back.
type RefusalError struct{ Result Result }

func (e *RefusalError) Error() string {
	return fmt.Sprintf("ledger refused transfer %s: %s: %s", e.Result.TransferID, e.Result.Refusal, e.Result.Message)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusalError) Is(target error) bool { return target == ErrRefused }

// FirstRefusal returns a *RefusalError for the first refused result, or nil.
func FirstRefusal(results []Result) error {
	for _, r := range results {
		if r.Refusal != "" {
			return &RefusalError{Result: r}
		}
	}
	return nil
}
