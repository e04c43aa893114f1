package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/ids"
	"github.com/paycenter/paycenter/server/internal/page"
	"github.com/paycenter/paycenter/server/internal/pgdb"
)

// Options tune a Service; the zero value is fine.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are kept but not exported
	// Workers is how many group-commit transactions may run at once, on disjoint accounts,
	// once one has run for StuckAfter (default 2).
	Workers int
	// StuckAfter is how long a group-commit transaction runs before more start beside it
	// (default 20ms; see batcher).
	StuckAfter time.Duration
	// MaxBatch bounds the transfers of one group-commit transaction (default 2000; a request
	// is never split).
	MaxBatch int
	// Linger makes a committer wait this long for more requests when its batch is small
	// (default 0: batches form while the previous transaction commits).
	Linger time.Duration
	// SweepInterval is how often Start's sweeper voids timed-out pending transfers
	// (default 1s).
	SweepInterval time.Duration
	// BatchTimeout bounds one group-commit transaction (default 30s).
	BatchTimeout time.Duration
	// Location is the default time zone of days and months (default Asia/Shanghai).
	Location *time.Location
}

// Service holds the ledger's use cases. Writes need an admin; an app key may read accounts
// (and their transfers) of its own merchant; anything else is NOT_FOUND, so ids never leak
// across tenants. Post and EnsureAccount are the in-process API (no authorisation).
type Service struct {
	db      *sqlx.DB
	store   *Store
	opts    Options
	logger  *slog.Logger
	metrics *metrics
	batch   *batcher
	// written lets group-commit batches skip their read.
	written writtenAccounts
}

// NewService returns a Service on db. Call Start to run the pending-timeout sweeper.
func NewService(db *sqlx.DB, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 2000
	}
	if opts.StuckAfter <= 0 {
		opts.StuckAfter = 20 * time.Millisecond
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = 30 * time.Second
	}
	if opts.Location == nil {
		opts.Location = shanghai()
	}
	s := &Service{db: db, store: NewStore(db), opts: opts, logger: opts.Logger, metrics: newMetrics(opts.Registerer)}
	s.batch = &batcher{workers: opts.Workers, maxBatch: opts.MaxBatch, linger: opts.Linger, stuckAfter: opts.StuckAfter, commit: s.commit}
	return s
}

func shanghai() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic("time/tzdata lacks Asia/Shanghai: " + err.Error())
	}
	return loc
}

// Start runs the sweeper that voids pending transfers past their timeout, until ctx is done.
// Several replicas may sweep at once: resolving a pending transfer locks its accounts and is
// conditional, so each is voided once.
func (s *Service) Start(ctx context.Context) {
	go func() {
		tick := time.NewTicker(s.opts.SweepInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for {
				n, err := s.sweep(ctx)
				if err != nil {
					if ctx.Err() == nil {
						s.logger.Warn("ledger: voiding timed-out pending transfers", "error", err)
					}
					break
				}
				if n < sweepBatch {
					break
				}
			}
		}
	}()
}

const sweepBatch = 500

// sweep voids up to sweepBatch timed-out pending transfers and returns how many it voided
// (another replica may have voided some of them first).
func (s *Service) sweep(ctx context.Context) (int, error) {
	expired, err := s.store.expiredPending(ctx, sweepBatch)
	if err != nil || len(expired) == 0 {
		return 0, err
	}
	var e *engine
	err = s.inBatchTx(ctx, func(b *batchTx) (err error) {
		_, e, err = s.apply(ctx, b, nil, expired, applyOptions{})
		return err
	})
	if err != nil {
		return 0, err
	}
	s.metrics.observe(nil, e)
	return e.expired, nil
}

// inTx runs fn in a transaction, again when it fails in a way a new attempt can fix
// (deadlock, a concurrent insert of the same transfer id).
func (s *Service) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return retry(ctx, func() error { return pgdb.InTx(ctx, s.db, fn) })
}

// inBatchTx is inTx for a batch that owns its transaction (see batchTx).
func (s *Service) inBatchTx(ctx context.Context, fn func(b *batchTx) error) error {
	return retry(ctx, func() error { return ownTx(ctx, s.db, fn) })
}

func retry(ctx context.Context, attempt func() error) error {
	var err error
	for n := 0; n < 5; n++ {
		if n > 0 && !errors.Is(err, errSkippedRead) { // that one runs again with its read at once
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(time.Duration(n) * 5 * time.Millisecond):
			}
		}
		if err = attempt(); err == nil || !retryable(err) {
			return err
		}
	}
	return err
}

// errNoRequests ends a group-commit transaction that found the queue empty.
var errNoRequests = errors.New("no requests queued")

// commit applies the requests of one group-commit batch in one transaction. It takes the
// requests once it holds a connection, so that the batch gathers meanwhile.
func (s *Service) commit(take func() []*call) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.BatchTimeout)
	defer cancel()
	var (
		calls []*call
		batch [][]*entry
		e     *engine
	)
	start := time.Now()
	skipRead := true
	err := s.inBatchTx(ctx, func(b *batchTx) (err error) {
		if calls == nil { // a retry keeps its requests
			if calls = take(); calls == nil {
				return errNoRequests
			}
		}
		requests := make([][]Transfer, len(calls))
		for i, c := range calls {
			requests[i] = c.transfers
		}
		batch, e, err = s.apply(ctx, b, requests, nil, applyOptions{skipRead: skipRead})
		if errors.Is(err, errSkippedRead) {
			skipRead = false
			s.metrics.batchReads.WithLabelValues("missed").Inc()
		}
		return err
	})
	switch {
	case errors.Is(err, errNoRequests):
		return
	case calls == nil: // the transaction did not even begin
		calls = take()
	case err != nil && len(calls) > 1:
		// Whatever went wrong, one request must not fail its neighbours: apply each alone.
		s.logger.Warn("ledger: batch failed, applying its requests one by one", "requests", len(calls), "error", err)
		for _, c := range calls {
			s.commit(func() []*call { return []*call{c} })
		}
		return
	case err == nil:
		s.written.remember(e.accounts, e.versions)
		read := "done"
		if e.skippedRead {
			read = "skipped"
		}
		s.metrics.batchReads.WithLabelValues(read).Inc()
		s.metrics.observe(batch, e)
		s.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	}
	for i, c := range calls {
		if err != nil {
			c.err = fmt.Errorf("apply transfers: %w", err)
		} else {
			c.results = results(batch[i])
		}
		close(c.done)
	}
}

// AccountSpec describes an account to open.
type AccountSpec struct {
	MerchantID  string // empty for a platform account
	Code        AccountCode
	Currency    string
	Limits      Limits
	Description string
}

func validateSpec(a AccountSpec) error {
	if a.MerchantID != "" && !validID(a.MerchantID) {
		return errs.Invalid("merchant_id", "is not a merchant id")
	}
	if !a.Code.valid() {
		return errs.Invalid("code", "must be an ACCOUNT_CODE_ value other than UNSPECIFIED")
	}
	if a.Code.merchantOnly() && a.MerchantID == "" {
		return errs.Invalid("merchant_id", "is required for %s accounts", a.Code)
	}
	if err := validCurrency("currency", a.Currency); err != nil {
		return err
	}
	if a.Limits.DebitsMustNotExceedCredits && a.Limits.CreditsMustNotExceedDebits {
		return errs.Invalid("credits_must_not_exceed_debits", "cannot be set together with debits_must_not_exceed_credits")
	}
	if utf8.RuneCountInString(a.Description) > maxDescriptionLen || hasControl(a.Description) {
		return errs.Invalid("description", "must be at most %d printable characters", maxDescriptionLen)
	}
	return nil
}

// CreateAccount opens an account; the same (merchant, code, currency) again returns the
// existing account, or ALREADY_EXISTS when its limits differ.
func (s *Service) CreateAccount(ctx context.Context, spec AccountSpec) (Account, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return Account{}, err
	}
	if err := validateSpec(spec); err != nil {
		return Account{}, err
	}
	a, created, err := s.store.insertAccount(ctx, s.db, Account{
		ID: ids.New("acc"), MerchantID: spec.MerchantID, Code: spec.Code, Currency: spec.Currency,
		DebitsMustNotExceedCredits: spec.Limits.DebitsMustNotExceedCredits,
		CreditsMustNotExceedDebits: spec.Limits.CreditsMustNotExceedDebits, Description: spec.Description,
	})
	if err != nil {
		return Account{}, err
	}
	if !created && (a.DebitsMustNotExceedCredits != spec.Limits.DebitsMustNotExceedCredits ||
		a.CreditsMustNotExceedDebits != spec.Limits.CreditsMustNotExceedDebits) {
		return Account{}, errs.AlreadyExists("account %s of this merchant, code and currency exists with other limits", a.ID)
	}
	return a, nil
}

// FindAccount returns the account of (merchant, code, currency) as tx sees it, or
// errs.ErrNotFound. No authorisation: in-process callers only.
func (s *Service) FindAccount(ctx context.Context, tx *sqlx.Tx, merchantID string, code AccountCode, currency string) (Account, error) {
	return s.store.accountByOwner(ctx, tx, merchantID, code, currency)
}

// EnsureAccount returns the account of (merchantID, code, currency) in the caller's
// transaction, opening it with DefaultLimits(code) when missing. An existing account is
// returned whatever its limits. It is part of the in-process API.
func (s *Service) EnsureAccount(ctx context.Context, tx *sqlx.Tx, merchantID string, code AccountCode, currency string) (Account, error) {
	spec := AccountSpec{MerchantID: merchantID, Code: code, Currency: currency, Limits: DefaultLimits(code)}
	if err := validateSpec(spec); err != nil {
		return Account{}, err
	}
	// Almost always the account exists: read it first, because an INSERT ... ON CONFLICT
	// would wait for whichever transaction is updating the account row.
	if a, err := s.store.accountByOwner(ctx, tx, merchantID, code, currency); err == nil || !errors.Is(err, errs.ErrNotFound) {
		return a, err
	}
	a, _, err := s.store.insertAccount(ctx, tx, Account{
		ID: ids.New("acc"), MerchantID: merchantID, Code: code, Currency: currency,
		DebitsMustNotExceedCredits: spec.Limits.DebitsMustNotExceedCredits,
		CreditsMustNotExceedDebits: spec.Limits.CreditsMustNotExceedDebits,
	})
	return a, err
}

// visibleAccount returns an account the caller may read.
func (s *Service) visibleAccount(ctx context.Context, id string) (Account, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return Account{}, err
	}
	if err := validAccountID("account_id", id); err != nil {
		return Account{}, err
	}
	a, err := s.store.account(ctx, s.db, id)
	if err != nil {
		return Account{}, err
	}
	if !p.CanSeeMerchant(a.MerchantID) {
		return Account{}, errs.NotFound("account %s", id)
	}
	return a, nil
}

// Account returns an account with its running totals.
func (s *Service) Account(ctx context.Context, id string) (Account, error) {
	return s.visibleAccount(ctx, id)
}

// Accounts pages through accounts, oldest first; an app key sees its own merchant's only.
func (s *Service) Accounts(ctx context.Context, merchantID string, code AccountCode, pg page.Request) ([]Account, string, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, "", err
	}
	if !p.IsAdmin() {
		if merchantID == "" {
			merchantID = p.MerchantID
		}
		if !p.CanSeeMerchant(merchantID) {
			return nil, "", errs.NotFound("merchant %s", merchantID)
		}
	}
	if code != "" && !code.valid() {
		return nil, "", errs.Invalid("code", "is not an account code")
	}
	size, after, err := pg.Parse(20, 100)
	if err != nil {
		return nil, "", err
	}
	as, err := s.store.accounts(ctx, merchantID, code, after, size+1)
	if err != nil {
		return nil, "", err
	}
	as, next := page.Cut(as, size, func(a Account) string { return a.ID })
	return as, next, nil
}

// Freeze makes an account refuse every new movement (voiding pending transfers is still
// allowed: it releases a hold). Freezing a frozen account updates the reason.
func (s *Service) Freeze(ctx context.Context, id, reason string) (Account, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return Account{}, err
	}
	if err := validAccountID("account_id", id); err != nil {
		return Account{}, err
	}
	if n := utf8.RuneCountInString(reason); n < 1 || n > 256 || hasControl(reason) {
		return Account{}, errs.Invalid("reason", "must be 1 to 256 printable characters")
	}
	return s.store.setFrozen(ctx, id, true, reason)
}

// Unfreeze lifts a freeze.
func (s *Service) Unfreeze(ctx context.Context, id string) (Account, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return Account{}, err
	}
	if err := validAccountID("account_id", id); err != nil {
		return Account{}, err
	}
	return s.store.setFrozen(ctx, id, false, "")
}

// CreateTransfers applies a request of transfers (group-committed with concurrent requests)
// and returns one result per transfer. Problems of a transfer are results; only a request
// that is empty or holds more than MaxTransfersPerRequest transfers is an error
// (INVALID_ARGUMENT on "transfers").
func (s *Service) CreateTransfers(ctx context.Context, transfers []Transfer) ([]Result, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if len(transfers) == 0 || len(transfers) > MaxTransfersPerRequest {
		return nil, errs.Invalid("transfers", "must hold 1 to %d transfers", MaxTransfersPerRequest)
	}
	return s.batch.submit(ctx, transfers)
}

// Transfer returns a transfer; an app key sees transfers on its merchant's accounts only.
func (s *Service) Transfer(ctx context.Context, id string) (Transfer, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return Transfer{}, err
	}
	if !validID(id) {
		return Transfer{}, errs.Invalid("transfer_id", "must be 1 to 64 of [0-9A-Za-z_.:-]")
	}
	t, err := s.store.transfer(ctx, id)
	if err != nil {
		return Transfer{}, err
	}
	if p.IsAdmin() {
		return t, nil
	}
	for _, accountID := range []string{t.DebitAccountID, t.CreditAccountID} {
		a, err := s.store.account(ctx, s.db, accountID)
		if err == nil && p.CanSeeMerchant(a.MerchantID) {
			return t, nil
		}
		if err != nil && !errors.Is(err, errs.ErrNotFound) {
			return Transfer{}, err
		}
	}
	return Transfer{}, errs.NotFound("transfer %s", id)
}

// TimeRange bounds a history query: [Start, End), either may be zero.
type TimeRange struct{ Start, End time.Time }

var (
	beginningOfTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	endOfTime       = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Transfers pages through an account's history in the order it was applied (refused
// transfers are not history).
func (s *Service) Transfers(ctx context.Context, accountID string, r TimeRange, pg page.Request) ([]Transfer, string, error) {
	if _, err := s.visibleAccount(ctx, accountID); err != nil {
		return nil, "", err
	}
	size, after, err := pg.Parse(100, 1000)
	if err != nil {
		return nil, "", err
	}
	cur := historyCursor{At: beginningOfTime}
	if after != "" {
		if cur, err = parseCursor(after); err != nil {
			return nil, "", err
		}
	}
	start, end := r.Start, r.End
	if start.IsZero() {
		start = beginningOfTime
	}
	if end.IsZero() {
		end = endOfTime
	}
	if !start.Before(end) && !r.End.IsZero() {
		return nil, "", errs.Invalid("end_time", "must be after start_time")
	}
	rows, err := s.store.accountTransfers(ctx, accountID, cur, start, end, size+1)
	if err != nil {
		return nil, "", err
	}
	rows, next := page.Cut(rows, size, func(t transferRow) string {
		return t.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + fmt.Sprint(t.Seq)
	})
	out := make([]Transfer, len(rows))
	for i, r := range rows {
		out[i] = r.transfer()
	}
	return out, next, nil
}

func parseCursor(s string) (historyCursor, error) {
	var c historyCursor
	at, seq, ok := cutLast(s, '|')
	if !ok {
		return c, errs.Invalid("page_token", "is not a token from a previous page")
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return c, errs.Invalid("page_token", "is not a token from a previous page")
	}
	if _, err := fmt.Sscan(seq, &c.Seq); err != nil {
		return c, errs.Invalid("page_token", "is not a token from a previous page")
	}
	c.At = t
	return c, nil
}

func cutLast(s string, sep byte) (before, after string, ok bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// Balance is an account's balance at an instant.
type Balance struct {
	Account Account // totals as of AsOf (pending totals only when AsOf is now)
	AsOf    time.Time
}

// Balance returns an account's balance now (at is zero) or as of the instant at: the sum of
// the posted transfers before it.
func (s *Service) Balance(ctx context.Context, accountID string, at time.Time) (Balance, error) {
	a, err := s.visibleAccount(ctx, accountID)
	if err != nil {
		return Balance{}, err
	}
	if at.IsZero() {
		return Balance{Account: a, AsOf: time.Now()}, nil
	}
	a, err = s.store.accountAt(ctx, s.db, accountID, at)
	if err != nil {
		return Balance{}, err
	}
	return Balance{Account: a, AsOf: at}, nil
}

// CheckInvariants proves the books add up (see Store.checkInvariants) and records the result
// in paycenter_ledger_invariants_ok.
func (s *Service) CheckInvariants(ctx context.Context) (InvariantReport, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return InvariantReport{}, err
	}
	return s.checkInvariants(ctx)
}

// checkInvariants runs the check, exports its result and records it as the latest for every
// replica (see RunInvariantChecks).
func (s *Service) checkInvariants(ctx context.Context) (InvariantReport, error) {
	rep, err := s.store.checkInvariants(ctx)
	if err == nil {
		err = s.recordInvariants(ctx, rep)
	}
	if err != nil {
		s.metrics.invariantChecks.WithLabelValues("error").Inc()
		return InvariantReport{}, err
	}
	s.metrics.invariantsHold(len(rep.Violations) == 0)
	if len(rep.Violations) == 0 {
		s.metrics.invariantChecks.WithLabelValues("ok").Inc()
	} else {
		s.metrics.invariantChecks.WithLabelValues("violated").Inc()
		s.logger.Error("ledger invariants violated", "violations", rep.Violations)
	}
	return rep, nil
}

// InvariantReport is the outcome of CheckInvariants.
type InvariantReport = invariantReport

// parseDay returns [start, end) of the calendar day date ("YYYY-MM-DD") in time zone tz
// (empty: the default).
func (s *Service) parseDay(date, tz string) (start, end time.Time, err error) {
	loc := s.opts.Location
	if tz != "" {
		if loc, err = time.LoadLocation(tz); err != nil || tz == "Local" {
			return start, end, errs.Invalid("time_zone", "must be an IANA time zone like Asia/Shanghai")
		}
	}
	start, err = time.ParseInLocation("2006-01-02", date, loc)
	if err != nil {
		return start, end, errs.Invalid("date", "must be a day like 2024-05-31")
	}
	return start, start.AddDate(0, 0, 1), nil
}
