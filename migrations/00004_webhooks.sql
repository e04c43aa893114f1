-- +goose Up
-- The webhook outbox: events written in the same transaction as the state change they report,
-- and every delivery attempt. Both tables are keyed by merchant first so they can be sharded
-- (co-located) by merchant_id.

CREATE TABLE webhook_events (
    merchant_id     text NOT NULL REFERENCES merchants (merchant_id),
    -- Supplied by the caller (derived from what happened), so a retried transaction inserts
    -- nothing new; consumers dedupe by it.
    event_id        text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 128),
    app_id          text NOT NULL,
    type            text NOT NULL CHECK (type IN ('payment.succeeded', 'payment.closed',
                        'payment.duplicate', 'refund.succeeded', 'refund.failed')),
    trade_no        text NOT NULL DEFAULT '',
    refund_no       text NOT NULL DEFAULT '',
    -- The exact JSON body POSTed on every attempt.
    payload         text NOT NULL,
    -- PENDING: waiting for next_attempt_at. SENDING: an attempt is in flight and
    -- next_attempt_at is the end of its lease (a dispatcher that dies is retried after it).
    -- DELIVERED: the app answered 2xx. FAILED: max_attempts attempts failed.
    status          text NOT NULL CHECK (status IN ('PENDING', 'SENDING', 'DELIVERED', 'FAILED')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer NOT NULL CHECK (max_attempts >= 1),
    next_attempt_at timestamptz,
    -- Listing order (newest first); event ids are not time-sortable.
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, event_id),
    CHECK ((status IN ('PENDING', 'SENDING')) = (next_attempt_at IS NOT NULL))
);
-- The dispatcher's claim query and the backlog gauge read only unfinished events.
CREATE INDEX webhook_events_due_idx ON webhook_events (next_attempt_at)
    WHERE status IN ('PENDING', 'SENDING');
CREATE INDEX webhook_events_app_idx ON webhook_events (app_id, seq DESC);
CREATE INDEX webhook_events_trade_idx ON webhook_events (app_id, trade_no, seq DESC) WHERE trade_no <> '';
-- Redeliver finds an app's event by id (at most one row: the app has one merchant).
CREATE INDEX webhook_events_app_event_idx ON webhook_events (app_id, event_id);

CREATE TABLE webhook_attempts (
    merchant_id  text NOT NULL,
    event_id     text NOT NULL,
    attempt      integer NOT NULL CHECK (attempt >= 1),
    attempted_at timestamptz NOT NULL,
    -- sending (in flight, or the dispatcher stopped before recording a result), delivered,
    -- http_error, network_error, no_url, target_error.
    result       text NOT NULL CHECK (result IN ('sending', 'delivered', 'http_error',
                     'network_error', 'no_url', 'target_error')),
    http_status  integer NOT NULL DEFAULT 0,
    error        text NOT NULL DEFAULT '',
    duration_ms  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, event_id, attempt),
    FOREIGN KEY (merchant_id, event_id) REFERENCES webhook_events (merchant_id, event_id) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_events;
