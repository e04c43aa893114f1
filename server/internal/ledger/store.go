package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paycenter/paycenter/server/internal/errs"
)

// Store is the ledger's SQL. Methods that take a sqlx.ExtContext run on the caller's
// transaction (or the pool, for reads); those that take a batchTx, in a batch's.
type Store struct {
	db *sqlx.DB
}

// NewStore returns a Store on db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

const accountColumns = `account_id, COALESCE(merchant_id, '') AS merchant_id, code, currency,
	debits_must_not_exceed_credits, credits_must_not_exceed_debits, frozen, freeze_reason,
	debits_posted, credits_posted, debits_pending, credits_pending, description, created_at, updated_at`

// insertAccount creates the account of (merchant, code, currency) unless it exists, and
// returns the stored one either way (created reports which).
func (s *Store) insertAccount(ctx context.Context, q sqlx.ExtContext, a Account) (out Account, created bool, err error) {
	const ins = `INSERT INTO ledger_accounts (account_id, merchant_id, code, currency,
			debits_must_not_exceed_credits, credits_must_not_exceed_debits, description)
		VALUES ($1, NULLIF($2, ''), $3, $4, $5, $6, $7)
		ON CONFLICT ON CONSTRAINT ledger_accounts_owner_key DO NOTHING
		RETURNING ` + accountColumns
	err = sqlx.GetContext(ctx, q, &out, ins, a.ID, a.MerchantID, a.Code, a.Currency,
		a.DebitsMustNotExceedCredits, a.CreditsMustNotExceedDebits, a.Description)
	if err == nil {
		return out, true, nil
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23503" { // foreign key: no such merchant
		return Account{}, false, errs.NotFound("merchant %s", a.MerchantID)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Account{}, false, fmt.Errorf("insert account: %w", err)
	}
	const sel = `SELECT ` + accountColumns + ` FROM ledger_accounts
		WHERE merchant_id IS NOT DISTINCT FROM NULLIF($1, '') AND code = $2 AND currency = $3`
	if err := sqlx.GetContext(ctx, q, &out, sel, a.MerchantID, a.Code, a.Currency); err != nil {
		return Account{}, false, fmt.Errorf("select account by owner: %w", err)
	}
	return out, false, nil
}

// accountByOwner returns the account of (merchant, code, currency), or errs.ErrNotFound.
func (s *Store) accountByOwner(ctx context.Context, q sqlx.QueryerContext, merchantID string, code AccountCode, currency string) (Account, error) {
	const sel = `SELECT ` + accountColumns + ` FROM ledger_accounts
		WHERE merchant_id IS NOT DISTINCT FROM NULLIF($1, '') AND code = $2 AND currency = $3`
	var a Account
	if err := sqlx.GetContext(ctx, q, &a, sel, merchantID, code, currency); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Account{}, errs.NotFound("account of %s %s %s", merchantID, code, currency)
		}
		return Account{}, fmt.Errorf("select account by owner: %w", err)
	}
	return a, nil
}

func (s *Store) account(ctx context.Context, q sqlx.QueryerContext, id string) (Account, error) {
	const sel = `SELECT ` + accountColumns + ` FROM ledger_accounts WHERE account_id = $1`
	var a Account
	if err := sqlx.GetContext(ctx, q, &a, sel, id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Account{}, errs.NotFound("account %s", id)
		}
		return Account{}, fmt.Errorf("select account: %w", err)
	}
	return a, nil
}

// accountAt returns the account with its totals as of the instant at (posted totals only:
// pending totals are not kept historically), read in one snapshot. Transfers are subtracted
// from the current totals, so recent instants are cheap.
func (s *Store) accountAt(ctx context.Context, q sqlx.QueryerContext, id string, at time.Time) (Account, error) {
	const sel = `SELECT ` + accountColumns + `,
			(SELECT COALESCE(sum(amount), 0) FROM ledger_transfers
				WHERE debit_account_id = $1 AND created_at >= $2 AND status = 'POSTED') AS later_debits,
			(SELECT COALESCE(sum(amount), 0) FROM ledger_transfers
				WHERE credit_account_id = $1 AND created_at >= $2 AND status = 'POSTED') AS later_credits
		FROM ledger_accounts WHERE account_id = $1`
	var row struct {
		Account
		LaterDebits  int64 `db:"later_debits"`
		LaterCredits int64 `db:"later_credits"`
	}
	if err := sqlx.GetContext(ctx, q, &row, sel, id, at); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Account{}, errs.NotFound("account %s", id)
		}
		return Account{}, fmt.Errorf("select balance: %w", err)
	}
	a := row.Account
	a.DebitsPosted -= row.LaterDebits
	a.CreditsPosted -= row.LaterCredits
	a.DebitsPending, a.CreditsPending = 0, 0
	return a, nil
}

func (s *Store) accounts(ctx context.Context, merchantID string, code AccountCode, after string, limit int) ([]Account, error) {
	const sel = `SELECT ` + accountColumns + ` FROM ledger_accounts
		WHERE ($1 = '' OR merchant_id = $1) AND ($2 = '' OR code = $2) AND account_id > $3
		ORDER BY account_id LIMIT $4`
	var as []Account
	if err := s.db.SelectContext(ctx, &as, sel, merchantID, code, after, limit); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return as, nil
}

// setFrozen freezes or unfreezes an account. It waits for the account's lock, so once it
// returns no transaction is still moving money on a frozen account.
func (s *Store) setFrozen(ctx context.Context, id string, frozen bool, reason string) (Account, error) {
	const upd = `UPDATE ledger_accounts SET frozen = $2, freeze_reason = $3, updated_at = now()
		WHERE account_id = $1 RETURNING ` + accountColumns
	var a Account
	if err := s.db.GetContext(ctx, &a, upd, id, frozen, reason); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Account{}, errs.NotFound("account %s", id)
		}
		return Account{}, fmt.Errorf("set account frozen: %w", err)
	}
	return a, nil
}

// readSet is what the read half of a batch found.
type readSet struct {
	accounts map[string]*Account
	// versions are the accounts' row versions (xmin): an UPDATE of the row by anyone changes
	// it, so a batch that skips the read checks them instead (see writtenAccounts).
	versions map[string]int64
	// now is the database clock once every lock was granted: the batch's timestamp.
	now   time.Time
	known map[string]*record
}

// lockedAccount is an account read with its row version.
type lockedAccount struct {
	Account
	RowVersion int64 `db:"row_version"`
}

// lockAndRead is the read half of a batch, in one round trip: it locks the accounts of
// lockIDs (sorted) in id order, then reads the database clock (the batch's timestamp, taken
// after every lock was granted) and the transfers of knownIDs. The statements travel as one
// simple query: PostgreSQL runs them in order, each with its own snapshot, so the transfers
// are read after the locks are held and include everything committed by transactions that
// held them.
//
// The ids travel as array literals (the simple query protocol has no parameters).
func (s *Store) lockAndRead(ctx context.Context, b *batchTx, lockIDs, knownIDs []string) (readSet, error) {
	var q strings.Builder
	if len(lockIDs) > 0 {
		stmt, err := b.statement(lockAccountsStmt, pq.Array(lockIDs))
		if err != nil {
			return readSet{}, fmt.Errorf("lock accounts: %w", err)
		}
		q.WriteString(stmt + ";")
	}
	q.WriteString(`SELECT clock_timestamp();`)
	if len(knownIDs) > 0 {
		stmt, err := b.statement(readTransfersStmt, pq.Array(knownIDs))
		if err != nil {
			return readSet{}, fmt.Errorf("read transfers: %w", err)
		}
		q.WriteString(stmt + ";")
	}
	rs, err := b.query(ctx, q.String())
	if err != nil {
		return readSet{}, fmt.Errorf("lock accounts: %w", err)
	}
	defer rs.Close()
	rows := rs.Rows
	read := readSet{
		accounts: make(map[string]*Account, len(lockIDs)),
		versions: make(map[string]int64, len(lockIDs)),
		known:    map[string]*record{},
	}
	// Each result set is scanned through its own sqlx.Rows: sqlx caches the column mapping.
	next := func() *sqlx.Rows { return &sqlx.Rows{Rows: rows, Mapper: rs.Mapper} }
	if len(lockIDs) > 0 {
		rs := next()
		for rs.Next() {
			var a lockedAccount
			if err := rs.StructScan(&a); err != nil {
				return readSet{}, fmt.Errorf("scan account: %w", err)
			}
			read.accounts[a.ID], read.versions[a.ID] = &a.Account, a.RowVersion
		}
		if !rows.NextResultSet() {
			return readSet{}, fmt.Errorf("lock accounts: %w", errors.Join(rows.Err(), errMissingResult))
		}
	}
	if !rows.Next() {
		return readSet{}, fmt.Errorf("read clock: %w", errors.Join(rows.Err(), errMissingResult))
	}
	if err := rows.Scan(&read.now); err != nil {
		return readSet{}, fmt.Errorf("read clock: %w", err)
	}
	read.now = read.now.Truncate(time.Microsecond)
	for rows.Next() { // the driver moves to the next result set only past the end of this one
	}
	if len(knownIDs) > 0 {
		if !rows.NextResultSet() {
			return readSet{}, fmt.Errorf("read transfers: %w", errors.Join(rows.Err(), errMissingResult))
		}
		rs := next()
		for rs.Next() {
			var r transferRow
			if err := rs.StructScan(&r); err != nil {
				return readSet{}, fmt.Errorf("scan transfer: %w", err)
			}
			read.known[r.ID] = &record{Transfer: r.transfer(), fp: r.Fingerprint}
		}
	}
	if err := rows.Err(); err != nil {
		return readSet{}, fmt.Errorf("lock accounts and read transfers: %w", err)
	}
	return read, nil
}

var errMissingResult = errors.New("missing result set")

const transferColumns = `transfer_id, seq, debit_account_id, credit_account_id, amount, currency, code,
	reference, metadata, pending, post_pending, void_pending, COALESCE(pending_transfer_id, '') AS pending_transfer_id,
	timeout_seconds, expires_at, status, error, error_message, fingerprint, created_at, resolved_at`

// transferRow is a ledger_transfers row.
type transferRow struct {
	ID                string       `db:"transfer_id"`
	Seq               int64        `db:"seq"`
	DebitAccountID    string       `db:"debit_account_id"`
	CreditAccountID   string       `db:"credit_account_id"`
	Amount            int64        `db:"amount"`
	Currency          string       `db:"currency"`
	Code              TransferCode `db:"code"`
	Reference         string       `db:"reference"`
	Metadata          []byte       `db:"metadata"`
	Pending           bool         `db:"pending"`
	PostPending       bool         `db:"post_pending"`
	VoidPending       bool         `db:"void_pending"`
	PendingTransferID string       `db:"pending_transfer_id"`
	TimeoutSeconds    int32        `db:"timeout_seconds"`
	ExpiresAt         sql.NullTime `db:"expires_at"`
	Status            Status       `db:"status"`
	Error             Refusal      `db:"error"`
	ErrorMessage      string       `db:"error_message"`
	Fingerprint       []byte       `db:"fingerprint"`
	CreatedAt         time.Time    `db:"created_at"`
	ResolvedAt        sql.NullTime `db:"resolved_at"`
}

func (r transferRow) transfer() Transfer {
	t := Transfer{
		ID: r.ID, DebitAccountID: r.DebitAccountID, CreditAccountID: r.CreditAccountID, Amount: r.Amount,
		Currency: r.Currency, Code: r.Code, Reference: r.Reference, Pending: r.Pending, PostPending: r.PostPending,
		VoidPending: r.VoidPending, PendingTransferID: r.PendingTransferID, TimeoutSeconds: r.TimeoutSeconds,
		Status: r.Status, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt.Time, ResolvedAt: r.ResolvedAt.Time,
		Refusal: r.Error, Message: r.ErrorMessage,
	}
	if len(r.Metadata) > 2 { // not "{}"
		_ = json.Unmarshal(r.Metadata, &t.Metadata) // written by us from a map[string]string
	}
	return t
}

// transfers reads the transfers of ids (duplicates allowed) as engine records, in one
// round trip (ids as in lockAndRead).
func (s *Store) transfers(ctx context.Context, b *batchTx, ids []string) (map[string]*record, error) {
	out := map[string]*record{}
	if len(ids) == 0 {
		return out, nil
	}
	stmt, err := b.statement(readTransfersStmt, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("select transfers by id: %w", err)
	}
	rows, err := b.query(ctx, stmt)
	if err != nil {
		return nil, fmt.Errorf("select transfers by id: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r transferRow
		if err := rows.StructScan(&r); err != nil {
			return nil, fmt.Errorf("scan transfer: %w", err)
		}
		out[r.ID] = &record{Transfer: r.transfer(), fp: r.Fingerprint}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select transfers by id: %w", err)
	}
	return out, nil
}

func (s *Store) transfer(ctx context.Context, id string) (Transfer, error) {
	const sel = `SELECT ` + transferColumns + ` FROM ledger_transfers WHERE transfer_id = $1`
	var r transferRow
	if err := s.db.GetContext(ctx, &r, sel, id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Transfer{}, errs.NotFound("transfer %s", id)
		}
		return Transfer{}, fmt.Errorf("select transfer: %w", err)
	}
	return r.transfer(), nil
}

// versionCheck is what a batch that skipped its read (see writtenAccounts) assumed: the
// accounts it locks, sorted, and their row versions.
type versionCheck struct {
	ids      []string
	versions []int64
	// newIDs are the batch's transfer ids, which it took to be new.
	newIDs []string
}

// written is what a batch's write reports.
type written struct {
	at time.Time // the batch's timestamp
	// version is the row version of the accounts the write updated (0 when it updated none).
	version int64
}

// writeBatch writes a batch in one statement (every transfer of a batch is created at now):
// the new running totals of the changed accounts (each account once), the resolution of loaded
// pending transfers and the new transfers, inserted in order with one multi-row INSERT. The
// statement checks itself: a pending transfer that is no longer PENDING (resolved
// concurrently) fails it as a serialization failure, which is retried; an account not
// updated fails it as an internal error. It is a simple query that may carry COMMIT (see
// batchTx), so its values are inlined as quoted literals (as EXECUTE arguments in a
// group-commit batch) and its checks fail inside it (ledger_assert), before COMMIT could run.
//
// A batch that skipped its read passes check: the write is then preceded, in the same round
// trip, by the locking of check's accounts in id order and the proof that none changed since
// and that the batch's transfer ids are new (a serialization failure otherwise), and the
// batch's timestamp is the database clock once those locks are granted, as a read would have
// taken it; now is ignored.
func (s *Store) writeBatch(ctx context.Context, b *batchTx, check *versionCheck, accounts []*Account, resolves, inserts []*record, now time.Time) (written, error) {
	if len(accounts) == 0 && len(resolves) == 0 && len(inserts) == 0 {
		return written{at: now}, nil
	}
	na := len(accounts)
	accID, dp, cp, dpe, cpe := make([]string, na), make([]int64, na), make([]int64, na), make([]int64, na), make([]int64, na)
	for i, a := range accounts {
		accID[i], dp[i], cp[i], dpe[i], cpe[i] = a.ID, a.DebitsPosted, a.CreditsPosted, a.DebitsPending, a.CreditsPending
	}
	resID, resStatus := make([]string, len(resolves)), make([]string, len(resolves))
	for i, r := range resolves {
		resID[i], resStatus[i] = r.ID, string(r.Status)
	}
	n := len(inserts)
	var (
		id, dr, cr, currency, code, reference, metadata = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		amount, timeout                                 = make([]int64, n), make([]int64, n)
		pending, post, void                             = make([]bool, n), make([]bool, n), make([]bool, n)
		pendingID, expires, status, refusal, message    = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		resolved                                        = make([]string, n)
		fp                                              = make([][]byte, n)
	)
	for i, r := range inserts {
		id[i], dr[i], cr[i], amount[i], currency[i] = r.ID, r.DebitAccountID, r.CreditAccountID, r.Amount, r.Currency
		code[i], reference[i], metadata[i] = string(r.Code), r.Reference, "{}"
		if len(r.Metadata) > 0 {
			b, err := json.Marshal(r.Metadata)
			if err != nil {
				return written{}, fmt.Errorf("encode metadata: %w", err)
			}
			metadata[i] = string(b)
		}
		pending[i], post[i], void[i], pendingID[i], timeout[i] = r.Pending, r.PostPending, r.VoidPending, r.PendingTransferID, int64(r.TimeoutSeconds)
		status[i], refusal[i], message[i], fp[i] = string(r.Status), string(r.Refusal), r.Message, r.fp
		expires[i], resolved[i] = pgTime(r.ExpiresAt), pgTime(r.ResolvedAt)
	}
	var at any = now
	if check != nil {
		at = pq.NullTime{} // NULL: the statement's clock
	}
	args := []any{at,
		pq.Array(accID), pq.Array(dp), pq.Array(cp), pq.Array(dpe), pq.Array(cpe),
		pq.Array(resID), pq.Array(resStatus),
		pq.Array(id), pq.Array(dr), pq.Array(cr), pq.Array(amount), pq.Array(currency),
		pq.Array(code), pq.Array(reference), pq.Array(metadata), pq.Array(pending), pq.Array(post), pq.Array(void),
		pq.Array(pendingID), pq.Array(timeout), pq.Array(expires), pq.Array(status), pq.Array(refusal),
		pq.Array(message), pq.Array(fp), pq.Array(resolved), len(resolves), na, n}
	query, err := b.statement(writeBatchStmt, args...)
	if err != nil {
		return written{}, fmt.Errorf("write ledger batch: %w", err)
	}
	skip := 0
	if check != nil {
		accounts, err := b.statement(checkAccountsStmt, pq.Array(check.ids), pq.Array(check.versions))
		if err != nil {
			return written{}, fmt.Errorf("check ledger accounts: %w", err)
		}
		ids, err := b.statement(checkNewStmt, pq.Array(check.newIDs))
		if err != nil {
			return written{}, fmt.Errorf("check transfer ids: %w", err)
		}
		query, skip = accounts+"; "+ids+"; "+query, 2
	}
	var (
		w       written
		version sql.NullInt64
	)
	if err := b.write(ctx, query, skip, &w.at, &version); err != nil {
		return written{}, fmt.Errorf("write ledger batch: %w", err)
	}
	w.version = version.Int64
	return w, nil
}

// The statements of a batch: prepared on a group-commit batch's connection (see ownTx),
// inlined in a caller's transaction (see batchTx.statement).
const (
	lockAccountsStmt  = "ledger_lock_accounts"
	checkAccountsStmt = "ledger_check_accounts"
	checkNewStmt      = "ledger_check_new"
	readTransfersStmt = "ledger_read_transfers"
	writeBatchStmt    = "ledger_write_batch"
)

var batchStatements = map[string]string{
	lockAccountsStmt: `SELECT ` + accountColumns + `, xmin::text::bigint AS row_version
		FROM ledger_accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE`,
	// The subquery locks in id order, as lockAccountsStmt does, and the versions compared
	// are those of the rows' latest versions.
	checkAccountsStmt: `SELECT ledger_assert(count(*) = cardinality($1::text[]), '40001',
			'ledger batch: an account changed since this server last wrote it')
		FROM (SELECT account_id, xmin FROM ledger_accounts WHERE account_id = ANY($1::text[])
			ORDER BY account_id FOR UPDATE) l
		JOIN unnest($1::text[], $2::bigint[]) AS v(id, version)
			ON v.id = l.account_id AND l.xmin::text::bigint = v.version`,
	// A statement of its own, after checkAccountsStmt: its snapshot is taken with the locks
	// held, as lockAndRead's read of the transfers is.
	checkNewStmt: `SELECT ledger_assert(NOT EXISTS (SELECT FROM ledger_transfers WHERE transfer_id = ANY($1::text[])),
		'40001', 'ledger batch: a transfer id is not new')`,
	readTransfersStmt: `SELECT ` + transferColumns + ` FROM ledger_transfers WHERE transfer_id = ANY($1::text[])`,
	writeBatchStmt:    writeBatchSQL,
}

// writeBatchSQL's timestamp is $1, or the clock when $1 is NULL (volatile, so evaluated once).
// It returns the timestamp and the updated accounts' row version.
const writeBatchSQL = `WITH clock AS (
		SELECT COALESCE($1::timestamptz, clock_timestamp()) AS at
	), accounts AS (
		UPDATE ledger_accounts a SET debits_posted = v.dp, credits_posted = v.cp,
			debits_pending = v.dpe, credits_pending = v.cpe, updated_at = (SELECT at FROM clock)
		FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS v(id, dp, cp, dpe, cpe)
		WHERE a.account_id = v.id
		RETURNING a.xmin::text::bigint AS version
	), resolved AS (
		UPDATE ledger_transfers t SET status = v.status, resolved_at = (SELECT at FROM clock)
		FROM unnest($7::text[], $8::text[]) AS v(id, status)
		WHERE t.transfer_id = v.id AND t.status = 'PENDING'
		RETURNING 1
	), inserted AS (
		INSERT INTO ledger_transfers (transfer_id, debit_account_id, credit_account_id, amount,
			currency, code, reference, metadata, pending, post_pending, void_pending, pending_transfer_id,
			timeout_seconds, expires_at, status, error, error_message, fingerprint, created_at, resolved_at)
		SELECT v.id, v.dr, v.cr, v.amount, v.currency, v.code, v.reference, v.metadata::jsonb,
			v.pending, v.post, v.void, NULLIF(v.pending_id, ''), v.timeout, NULLIF(v.expires_at, '')::timestamptz,
			v.status, v.error, v.message, v.fp, (SELECT at FROM clock), NULLIF(v.resolved_at, '')::timestamptz
		FROM unnest($9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[], $14::text[], $15::text[],
			$16::text[], $17::boolean[], $18::boolean[], $19::boolean[], $20::text[], $21::integer[], $22::text[],
			$23::text[], $24::text[], $25::text[], $26::bytea[], $27::text[])
			WITH ORDINALITY AS v(id, dr, cr, amount, currency, code, reference, metadata, pending, post, void,
				pending_id, timeout, expires_at, status, error, message, fp, resolved_at, ord)
		ORDER BY v.ord
		RETURNING 1
	)
	SELECT at, (SELECT max(version) FROM accounts) FROM clock
	WHERE ledger_assert((SELECT count(*) FROM resolved) = $28, '40001', 'ledger batch: a pending transfer was resolved concurrently')
		AND ledger_assert((SELECT count(*) FROM accounts) = $29 AND (SELECT count(*) FROM inserted) = $30, 'XX000',
			'ledger batch: not every account was updated or transfer inserted')`

// pgTime formats t for a text array; the zero time is "" (NULL).
func pgTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
}

// expiredPending returns up to limit pending transfers whose timeout has passed.
func (s *Store) expiredPending(ctx context.Context, limit int) ([]string, error) {
	const sel = `SELECT transfer_id FROM ledger_transfers
		WHERE status = 'PENDING' AND expires_at IS NOT NULL AND expires_at <= clock_timestamp()
		ORDER BY expires_at LIMIT $1`
	var ids []string
	if err := s.db.SelectContext(ctx, &ids, sel, limit); err != nil {
		return nil, fmt.Errorf("select expired pending transfers: %w", err)
	}
	return ids, nil
}

// historyCursor is the position after a transfer in an account's history.
type historyCursor struct {
	At  time.Time
	Seq int64
}

// accountTransfers pages through an account's transfers (refused ones excluded) in the order
// they were applied, within [start, end) when those are set.
func (s *Store) accountTransfers(ctx context.Context, accountID string, after historyCursor, start, end time.Time, limit int) ([]transferRow, error) {
	// One index range per side; a transfer never has the same account on both.
	const sel = `SELECT * FROM (
			(SELECT ` + transferColumns + ` FROM ledger_transfers
				WHERE debit_account_id = $1 AND (created_at, seq) > ($2, $3) AND created_at >= $4 AND created_at < $5
					AND status <> 'FAILED'
				ORDER BY created_at, seq LIMIT $6)
			UNION ALL
			(SELECT ` + transferColumns + ` FROM ledger_transfers
				WHERE credit_account_id = $1 AND (created_at, seq) > ($2, $3) AND created_at >= $4 AND created_at < $5
					AND status <> 'FAILED'
				ORDER BY created_at, seq LIMIT $6)
		) t ORDER BY created_at, seq LIMIT $6`
	var rows []transferRow
	if err := s.db.SelectContext(ctx, &rows, sel, accountID, after.At, after.Seq, start, end, limit); err != nil {
		return nil, fmt.Errorf("list account transfers: %w", err)
	}
	return rows, nil
}

// postedBetween returns the posted movements of an account in [start, end), in order, at
// most limit of them.
func (s *Store) postedBetween(ctx context.Context, q sqlx.QueryerContext, accountID string, start, end time.Time, limit int) ([]transferRow, error) {
	const sel = `SELECT * FROM (
			(SELECT ` + transferColumns + ` FROM ledger_transfers
				WHERE debit_account_id = $1 AND created_at >= $2 AND created_at < $3 AND status = 'POSTED')
			UNION ALL
			(SELECT ` + transferColumns + ` FROM ledger_transfers
				WHERE credit_account_id = $1 AND created_at >= $2 AND created_at < $3 AND status = 'POSTED')
		) t ORDER BY created_at, seq LIMIT $4`
	var rows []transferRow
	if err := sqlx.SelectContext(ctx, q, &rows, sel, accountID, start, end, limit); err != nil {
		return nil, fmt.Errorf("select posted transfers: %w", err)
	}
	return rows, nil
}

// invariantReport is what checkInvariants found.
type invariantReport struct {
	DebitsPosted  int64 // sum over all accounts, clamped to int64
	CreditsPosted int64
	Accounts      int
	Violations    []string
}

// checkInvariants proves the books in one snapshot: overall debits equal credits (posted and
// pending), every account's totals equal the sums of its transfers, limits hold, and every
// applied transfer's accounts exist.
func (s *Store) checkInvariants(ctx context.Context) (invariantReport, error) {
	var rep invariantReport
	err := s.inReadOnlySnapshot(ctx, func(tx *sqlx.Tx) error {
		const totals = `SELECT count(*), COALESCE(sum(debits_posted), 0)::text, COALESCE(sum(credits_posted), 0)::text,
				COALESCE(sum(debits_pending), 0)::text, COALESCE(sum(credits_pending), 0)::text
			FROM ledger_accounts`
		var dp, cp, dpe, cpe string
		if err := tx.QueryRowxContext(ctx, totals).Scan(&rep.Accounts, &dp, &cp, &dpe, &cpe); err != nil {
			return fmt.Errorf("sum account totals: %w", err)
		}
		if dp != cp {
			rep.Violations = append(rep.Violations, fmt.Sprintf("posted debits %s differ from posted credits %s", dp, cp))
		}
		if dpe != cpe {
			rep.Violations = append(rep.Violations, fmt.Sprintf("pending debits %s differ from pending credits %s", dpe, cpe))
		}
		rep.DebitsPosted, rep.CreditsPosted = saturate(dp), saturate(cp)

		const perAccount = `WITH d AS (
				SELECT debit_account_id AS id,
					COALESCE(sum(amount) FILTER (WHERE status = 'POSTED'), 0) AS posted,
					COALESCE(sum(amount) FILTER (WHERE status = 'PENDING'), 0) AS pending
				FROM ledger_transfers WHERE status <> 'FAILED' GROUP BY 1
			), c AS (
				SELECT credit_account_id AS id,
					COALESCE(sum(amount) FILTER (WHERE status = 'POSTED'), 0) AS posted,
					COALESCE(sum(amount) FILTER (WHERE status = 'PENDING'), 0) AS pending
				FROM ledger_transfers WHERE status <> 'FAILED' GROUP BY 1
			)
			SELECT a.account_id, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
				COALESCE(d.posted, 0)::text, COALESCE(c.posted, 0)::text, COALESCE(d.pending, 0)::text, COALESCE(c.pending, 0)::text
			FROM ledger_accounts a LEFT JOIN d ON d.id = a.account_id LEFT JOIN c ON c.id = a.account_id
			WHERE a.debits_posted <> COALESCE(d.posted, 0) OR a.credits_posted <> COALESCE(c.posted, 0)
				OR a.debits_pending <> COALESCE(d.pending, 0) OR a.credits_pending <> COALESCE(c.pending, 0)
				OR (a.debits_must_not_exceed_credits AND a.debits_posted + a.debits_pending > a.credits_posted)
				OR (a.credits_must_not_exceed_debits AND a.credits_posted + a.credits_pending > a.debits_posted)
			ORDER BY a.account_id LIMIT 100`
		rows, err := tx.QueryxContext(ctx, perAccount)
		if err != nil {
			return fmt.Errorf("check account totals: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, sdp, scp, sdpe, scpe string
			var adp, acp, adpe, acpe int64
			if err := rows.Scan(&id, &adp, &acp, &adpe, &acpe, &sdp, &scp, &sdpe, &scpe); err != nil {
				return fmt.Errorf("scan account check: %w", err)
			}
			rep.Violations = append(rep.Violations, fmt.Sprintf(
				"account %s: totals (debits posted %d, credits posted %d, debits pending %d, credits pending %d) "+
					"differ from its transfers (%s, %s, %s, %s) or break its limit", id, adp, acp, adpe, acpe, sdp, scp, sdpe, scpe))
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("check account totals: %w", err)
		}

		const orphans = `SELECT t.transfer_id FROM ledger_transfers t
			WHERE t.status <> 'FAILED' AND (
				NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.account_id = t.debit_account_id) OR
				NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.account_id = t.credit_account_id))
			LIMIT 100`
		var ids []string
		if err := tx.SelectContext(ctx, &ids, orphans); err != nil {
			return fmt.Errorf("check transfer accounts: %w", err)
		}
		for _, id := range ids {
			rep.Violations = append(rep.Violations, fmt.Sprintf("transfer %s names an account that does not exist", id))
		}
		return nil
	})
	return rep, err
}

// saturate parses a numeric sum, clamped to int64 (the sum of all accounts may exceed it).
func saturate(n string) int64 {
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil && strings.HasPrefix(n, "-") {
		return math.MinInt64
	}
	if err != nil {
		return math.MaxInt64
	}
	return v
}

// inReadOnlySnapshot runs fn in a REPEATABLE READ READ ONLY transaction: one snapshot for
// every statement.
func (s *Store) inReadOnlySnapshot(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// availableAccounts pages through the MERCHANT_AVAILABLE accounts of a currency.
func (s *Store) availableAccounts(ctx context.Context, currency, after string, limit int) ([]Account, error) {
	const sel = `SELECT ` + accountColumns + ` FROM ledger_accounts
		WHERE code = 'MERCHANT_AVAILABLE' AND currency = $1 AND account_id > $2
		ORDER BY account_id LIMIT $3`
	var as []Account
	if err := s.db.SelectContext(ctx, &as, sel, currency, after, limit); err != nil {
		return nil, fmt.Errorf("list available accounts: %w", err)
	}
	return as, nil
}

// settlementRow is a ledger_settlements row.
type settlementRow struct {
	Amount     int64          `db:"amount"`
	TransferID sql.NullString `db:"transfer_id"`
}

func (s *Store) settlement(ctx context.Context, q sqlx.QueryerContext, merchantID, currency, month string) (settlementRow, bool, error) {
	const sel = `SELECT amount, transfer_id FROM ledger_settlements
		WHERE merchant_id = $1 AND currency = $2 AND month = $3`
	var r settlementRow
	err := sqlx.GetContext(ctx, q, &r, sel, merchantID, currency, month)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("select settlement: %w", err)
	}
	return r, true, nil
}

// latestSettledMonth returns the last month settled for the merchant, or "".
func (s *Store) latestSettledMonth(ctx context.Context, q sqlx.QueryerContext, merchantID, currency string) (string, error) {
	const sel = `SELECT COALESCE(max(month), '') FROM ledger_settlements WHERE merchant_id = $1 AND currency = $2`
	var m string
	if err := sqlx.GetContext(ctx, q, &m, sel, merchantID, currency); err != nil {
		return "", fmt.Errorf("select latest settlement: %w", err)
	}
	return m, nil
}

// settledSince sums settlements of months before month that were booked at or after since.
func (s *Store) settledSince(ctx context.Context, q sqlx.QueryerContext, merchantID, currency, month string, since time.Time) (int64, error) {
	const sel = `SELECT COALESCE(sum(amount), 0) FROM ledger_settlements
		WHERE merchant_id = $1 AND currency = $2 AND month < $3 AND created_at >= $4`
	var n int64
	if err := sqlx.GetContext(ctx, q, &n, sel, merchantID, currency, month, since); err != nil {
		return 0, fmt.Errorf("sum later settlements: %w", err)
	}
	return n, nil
}

func (s *Store) insertSettlement(ctx context.Context, q sqlx.ExecerContext, st Settlement, at time.Time) error {
	const ins = `INSERT INTO ledger_settlements (merchant_id, currency, month, amount, transfer_id, created_at)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6)`
	if _, err := q.ExecContext(ctx, ins, st.MerchantID, st.Currency, st.Month, st.Amount, st.TransferID, at); err != nil {
		return fmt.Errorf("insert settlement: %w", err)
	}
	return nil
}
