-- +goose Up
-- Payments (one row per attempt on a channel), the merchant orders they belong to, and refunds.

-- One row per (app, merchant_order_no): the order's fixed amount and currency, its latest
-- attempt, and the one attempt whose money is kept.
CREATE TABLE payment_orders (
    app_id            text NOT NULL REFERENCES apps (app_id),
    merchant_order_no text NOT NULL,
    merchant_id       text NOT NULL REFERENCES merchants (merchant_id),
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    latest_trade_no   text NOT NULL,
    paid_trade_no     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, merchant_order_no)
);

CREATE TABLE payments (
    trade_no               text PRIMARY KEY,
    merchant_id            text NOT NULL REFERENCES merchants (merchant_id),
    app_id                 text NOT NULL,
    merchant_order_no      text NOT NULL,
    channel                text NOT NULL CHECK (channel IN ('ALIPAY', 'WECHATPAY', 'COLLECTOR')),
    method                 text NOT NULL CHECK (method IN ('QR', 'PC_PAGE', 'WAP', 'APP', 'JSAPI')),
    amount                 bigint NOT NULL CHECK (amount > 0),
    currency               text NOT NULL,
    subject                text NOT NULL,
    status                 text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'CLOSED', 'FAILED')),
    -- Succeeded plus pending refunds; the CHECK is the last line of defence against over-refund.
    refunded_amount        bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    channel_transaction_id text NOT NULL DEFAULT '',
    payer_action           jsonb NOT NULL DEFAULT '{}',
    client_ip              text NOT NULL DEFAULT '',
    return_url             text NOT NULL DEFAULT '',
    payer_openid           text NOT NULL DEFAULT '',
    metadata               jsonb NOT NULL DEFAULT '{}',
    cashier_token          text NOT NULL,
    duplicate              boolean NOT NULL DEFAULT false,
    expire_at              timestamptz NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    paid_at                timestamptz,
    closed_at              timestamptz,
    -- Compensation: when the worker next asks the channel, and how often it has.
    next_check_at          timestamptz,
    check_count            integer NOT NULL DEFAULT 0,
    FOREIGN KEY (app_id, merchant_order_no) REFERENCES payment_orders (app_id, merchant_order_no)
);
CREATE INDEX payments_app_created_idx ON payments (app_id, trade_no DESC);
CREATE INDEX payments_order_idx ON payments (app_id, merchant_order_no);
CREATE INDEX payments_txn_idx ON payments (app_id, channel_transaction_id) WHERE channel_transaction_id <> '';
CREATE INDEX payments_check_idx ON payments (next_check_at) WHERE next_check_at IS NOT NULL;

CREATE TABLE refunds (
    refund_no          text PRIMARY KEY,
    merchant_id        text NOT NULL REFERENCES merchants (merchant_id),
    app_id             text NOT NULL,
    trade_no           text NOT NULL REFERENCES payments (trade_no),
    merchant_refund_no text NOT NULL,
    amount             bigint NOT NULL CHECK (amount > 0),
    currency           text NOT NULL,
    reason             text NOT NULL DEFAULT '',
    status             text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    channel_refund_id  text NOT NULL DEFAULT '',
    failure_reason     text NOT NULL DEFAULT '',
    -- True for refunds paycenter made itself (duplicate payments).
    automatic          boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    succeeded_at       timestamptz,
    next_check_at      timestamptz,
    check_count        integer NOT NULL DEFAULT 0,
    CONSTRAINT refunds_app_merchant_refund_no_key UNIQUE (app_id, merchant_refund_no)
);
CREATE INDEX refunds_trade_idx ON refunds (trade_no);
CREATE INDEX refunds_app_idx ON refunds (app_id, refund_no DESC);
CREATE INDEX refunds_check_idx ON refunds (next_check_at) WHERE next_check_at IS NOT NULL;

-- +goose Down
DROP TABLE refunds;
DROP TABLE payments;
DROP TABLE payment_orders;
