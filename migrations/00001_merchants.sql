-- +goose Up
-- Merchants, their apps and each app's channel configurations (secrets encrypted).
CREATE TABLE merchants (
    merchant_id   text PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    contact_email text NOT NULL DEFAULT '',
    status        text NOT NULL CHECK (status IN ('ACTIVE', 'FROZEN')),
    freeze_reason text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE apps (
    app_id               text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants (merchant_id),
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    webhook_url          text NOT NULL DEFAULT '',
    -- SHA-256 of the API key: keys are 256-bit random, so a fast hash is enough and lookups
    -- stay cheap on every request.
    api_key_hash         bytea NOT NULL,
    api_key_prefix       text NOT NULL,
    webhook_secret_enc   bytea NOT NULL,
    webhook_secret_keyid text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT apps_api_key_hash_key UNIQUE (api_key_hash)
);
CREATE INDEX apps_merchant_idx ON apps (merchant_id, app_id);

CREATE TABLE channel_configs (
    app_id      text NOT NULL REFERENCES apps (app_id),
    channel     text NOT NULL CHECK (channel IN ('ALIPAY', 'WECHATPAY', 'COLLECTOR')),
    merchant_id text NOT NULL REFERENCES merchants (merchant_id),
    enabled     boolean NOT NULL,
    -- Non-secret settings (ids, URLs, public keys) as JSON.
    settings    jsonb NOT NULL DEFAULT '{}',
    -- Secret settings (private keys, APIv3 key) as AES-256-GCM ciphertext of a JSON object.
    secrets_enc   bytea,
    secrets_keyid text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, channel)
);

-- +goose Down
DROP TABLE channel_configs;
DROP TABLE apps;
DROP TABLE merchants;
