-- +goose Up
-- The double-entry ledger: accounts with running totals, transfers (immutable but for a
-- pending transfer's resolution) and the monthly settlement runs. Money is bigint minor units.
CREATE TABLE ledger_accounts (
    account_id  text PRIMARY KEY,
    -- NULL for platform accounts.
    merchant_id text REFERENCES merchants (merchant_id),
    code        text NOT NULL CHECK (code IN ('MERCHANT_AVAILABLE', 'MERCHANT_PENDING_SETTLEMENT',
        'CHANNEL_CLEARING_ALIPAY', 'CHANNEL_CLEARING_WECHATPAY', 'CHANNEL_CLEARING_COLLECTOR',
        'PLATFORM_FEES', 'SETTLEMENT_PAYABLE', 'EXTERNAL_FUNDING')),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    debits_must_not_exceed_credits boolean NOT NULL DEFAULT false,
    credits_must_not_exceed_debits boolean NOT NULL DEFAULT false,
    frozen          boolean NOT NULL DEFAULT false,
    freeze_reason   text NOT NULL DEFAULT '',
    debits_posted   bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted  bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending  bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_accounts_owner_key UNIQUE NULLS NOT DISTINCT (merchant_id, code, currency),
    CONSTRAINT ledger_accounts_one_limit CHECK (NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)),
    -- The limits hold in the database as well: a bug in the service cannot overdraw.
    CONSTRAINT ledger_accounts_debit_limit CHECK (NOT debits_must_not_exceed_credits
        OR debits_posted + debits_pending <= credits_posted),
    CONSTRAINT ledger_accounts_credit_limit CHECK (NOT credits_must_not_exceed_debits
        OR credits_posted + credits_pending <= debits_posted)
) WITH (fillfactor = 50); -- room for HOT updates: every transfer rewrites two account rows
CREATE INDEX ledger_accounts_merchant_idx ON ledger_accounts (merchant_id, account_id);

-- Transfers are written once. The only column that ever changes is a pending transfer's
-- status (PENDING -> PENDING_POSTED | VOIDED, by a conditional UPDATE) and its resolved_at.
-- Refused transfers are kept (status FAILED) so that a retry of the id gets the same answer;
-- their account ids are whatever the caller sent, hence no foreign keys.
CREATE TABLE ledger_transfers (
    transfer_id         text PRIMARY KEY,
    -- Tie-breaker for transfers of one database transaction (they share created_at).
    seq                 bigint GENERATED ALWAYS AS IDENTITY,
    debit_account_id    text NOT NULL,
    credit_account_id   text NOT NULL,
    amount              bigint NOT NULL,
    currency            text NOT NULL,
    code                text NOT NULL,
    reference           text NOT NULL DEFAULT '',
    metadata            jsonb NOT NULL DEFAULT '{}',
    pending             boolean NOT NULL DEFAULT false,
    post_pending        boolean NOT NULL DEFAULT false,
    void_pending        boolean NOT NULL DEFAULT false,
    pending_transfer_id text,
    timeout_seconds     integer NOT NULL DEFAULT 0,
    expires_at          timestamptz,
    status              text NOT NULL CHECK (status IN ('POSTED', 'PENDING', 'PENDING_POSTED', 'VOIDED', 'FAILED')),
    -- Why a FAILED transfer was refused (a TransferError name) and the message returned.
    error               text NOT NULL DEFAULT '',
    error_message       text NOT NULL DEFAULT '',
    -- SHA-256 of the request's content: the same id with other content is refused.
    fingerprint         bytea NOT NULL,
    -- Taken once per database transaction while the accounts are locked, so per account the
    -- order of (created_at, seq) is the order in which transfers were applied.
    created_at          timestamptz NOT NULL,
    resolved_at         timestamptz,
    CONSTRAINT ledger_transfers_amount_check CHECK (status = 'FAILED' OR amount >= 0)
);
-- History, statements and point-in-time balances of an account.
CREATE INDEX ledger_transfers_debit_idx ON ledger_transfers (debit_account_id, created_at, seq);
CREATE INDEX ledger_transfers_credit_idx ON ledger_transfers (credit_account_id, created_at, seq);
-- A pending transfer is posted or voided at most once, whatever the code does.
CREATE UNIQUE INDEX ledger_transfers_resolution_key ON ledger_transfers (pending_transfer_id)
    WHERE status <> 'FAILED' AND (post_pending OR void_pending);
-- The timeout sweeper's queue; resolved transfers leave it.
CREATE INDEX ledger_transfers_expiry_idx ON ledger_transfers (expires_at)
    WHERE status = 'PENDING' AND expires_at IS NOT NULL;

-- One row per merchant, currency and settled month: the run's statement and its idempotency key.
CREATE TABLE ledger_settlements (
    merchant_id text NOT NULL REFERENCES merchants (merchant_id),
    currency    text NOT NULL,
    month       text NOT NULL CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
    amount      bigint NOT NULL CHECK (amount >= 0),
    -- NULL when nothing was moved.
    transfer_id text REFERENCES ledger_transfers (transfer_id),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, currency, month)
);

-- +goose Down
DROP TABLE ledger_settlements;
DROP TABLE ledger_transfers;
DROP TABLE ledger_accounts;
