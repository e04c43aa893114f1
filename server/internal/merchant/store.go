package merchant

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/errs"
)

// Store is the merchant domain's SQL.
type Store struct {
	db *sqlx.DB
}

// NewStore returns a Store on db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

const merchantColumns = `merchant_id, name, contact_email, status, freeze_reason, created_at, updated_at`

func (s *Store) insertMerchant(ctx context.Context, m Merchant) (Merchant, error) {
	const q = `INSERT INTO merchants (merchant_id, name, contact_email, status)
		VALUES ($1, $2, $3, $4) RETURNING ` + merchantColumns
	var out Merchant
	if err := s.db.GetContext(ctx, &out, q, m.ID, m.Name, m.ContactEmail, m.Status); err != nil {
		return Merchant{}, fmt.Errorf("insert merchant: %w", err)
	}
	return out, nil
}

func (s *Store) merchant(ctx context.Context, id string) (Merchant, error) {
	const q = `SELECT ` + merchantColumns + ` FROM merchants WHERE merchant_id = $1`
	var m Merchant
	if err := s.db.GetContext(ctx, &m, q, id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Merchant{}, errs.NotFound("merchant %s", id)
		}
		return Merchant{}, fmt.Errorf("select merchant: %w", err)
	}
	return m, nil
}

func (s *Store) merchants(ctx context.Context, after string, limit int) ([]Merchant, error) {
	const q = `SELECT ` + merchantColumns + ` FROM merchants WHERE merchant_id > $1 ORDER BY merchant_id LIMIT $2`
	var ms []Merchant
	if err := s.db.SelectContext(ctx, &ms, q, after, limit); err != nil {
		return nil, fmt.Errorf("list merchants: %w", err)
	}
	return ms, nil
}

func (s *Store) updateMerchant(ctx context.Context, id string, u MerchantUpdate) (Merchant, error) {
	const q = `UPDATE merchants SET
			name = COALESCE($2, name),
			contact_email = COALESCE($3, contact_email),
			updated_at = now()
		WHERE merchant_id = $1 RETURNING ` + merchantColumns
	var m Merchant
	if err := s.db.GetContext(ctx, &m, q, id, u.Name, u.ContactEmail); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Merchant{}, errs.NotFound("merchant %s", id)
		}
		return Merchant{}, fmt.Errorf("update merchant: %w", err)
	}
	return m, nil
}

// setMerchantStatus moves a merchant to status; a merchant already there is returned as is.
func (s *Store) setMerchantStatus(ctx context.Context, id string, status Status, reason string) (Merchant, error) {
	const q = `UPDATE merchants SET status = $2, freeze_reason = $3, updated_at = now()
		WHERE merchant_id = $1 AND status <> $2 RETURNING ` + merchantColumns
	var m Merchant
	err := s.db.GetContext(ctx, &m, q, id, status, reason)
	if errors.Is(err, sql.ErrNoRows) {
		return s.merchant(ctx, id)
	}
	if err != nil {
		return Merchant{}, fmt.Errorf("set merchant status: %w", err)
	}
	return m, nil
}

const appColumns = `app_id, merchant_id, name, webhook_url, api_key_prefix, created_at, updated_at`

type appSecrets struct {
	keyHash       []byte
	keyPrefix     string
	webhookKeyID  string
	webhookSecret []byte
}

func (s *Store) insertApp(ctx context.Context, a App, sec appSecrets) (App, error) {
	const q = `INSERT INTO apps (app_id, merchant_id, name, webhook_url, api_key_hash, api_key_prefix,
			webhook_secret_enc, webhook_secret_keyid)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ` + appColumns
	var out App
	err := s.db.GetContext(ctx, &out, q, a.ID, a.MerchantID, a.Name, a.WebhookURL, sec.keyHash, sec.keyPrefix,
		sec.webhookSecret, sec.webhookKeyID)
	if err != nil {
		return App{}, fmt.Errorf("insert app: %w", err)
	}
	return out, nil
}

func (s *Store) app(ctx context.Context, id string) (App, error) {
	const q = `SELECT ` + appColumns + ` FROM apps WHERE app_id = $1`
	var a App
	if err := s.db.GetContext(ctx, &a, q, id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return App{}, errs.NotFound("app %s", id)
		}
		return App{}, fmt.Errorf("select app: %w", err)
	}
	return a, nil
}

func (s *Store) apps(ctx context.Context, merchantID, after string, limit int) ([]App, error) {
	const q = `SELECT ` + appColumns + ` FROM apps WHERE merchant_id = $1 AND app_id > $2 ORDER BY app_id LIMIT $3`
	var as []App
	if err := s.db.SelectContext(ctx, &as, q, merchantID, after, limit); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return as, nil
}

func (s *Store) updateApp(ctx context.Context, id string, u AppUpdate) (App, error) {
	const q = `UPDATE apps SET name = COALESCE($2, name), webhook_url = COALESCE($3, webhook_url), updated_at = now()
		WHERE app_id = $1 RETURNING ` + appColumns
	return s.returningApp(ctx, "update app", id, q, id, u.Name, u.WebhookURL)
}

func (s *Store) setAppKey(ctx context.Context, id string, hash []byte, prefix string) (App, error) {
	const q = `UPDATE apps SET api_key_hash = $2, api_key_prefix = $3, updated_at = now()
		WHERE app_id = $1 RETURNING ` + appColumns
	return s.returningApp(ctx, "rotate app key", id, q, id, hash, prefix)
}

func (s *Store) setWebhookSecret(ctx context.Context, id, keyID string, enc []byte) (App, error) {
	const q = `UPDATE apps SET webhook_secret_enc = $2, webhook_secret_keyid = $3, updated_at = now()
		WHERE app_id = $1 RETURNING ` + appColumns
	return s.returningApp(ctx, "rotate webhook secret", id, q, id, enc, keyID)
}

func (s *Store) returningApp(ctx context.Context, what, id, q string, args ...any) (App, error) {
	var a App
	if err := s.db.GetContext(ctx, &a, q, args...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return App{}, errs.NotFound("app %s", id)
		}
		return App{}, fmt.Errorf("%s: %w", what, err)
	}
	return a, nil
}

func (s *Store) webhookSecret(ctx context.Context, appID string) (keyID string, enc []byte, err error) {
	const q = `SELECT webhook_secret_keyid, webhook_secret_enc FROM apps WHERE app_id = $1`
	row := s.db.QueryRowxContext(ctx, q, appID)
	if err := row.Scan(&keyID, &enc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, errs.NotFound("app %s", appID)
		}
		return "", nil, fmt.Errorf("select webhook secret: %w", err)
	}
	return keyID, enc, nil
}

func (s *Store) webhookTarget(ctx context.Context, appID string) (url, keyID string, enc []byte, err error) {
	const q = `SELECT webhook_url, webhook_secret_keyid, webhook_secret_enc FROM apps WHERE app_id = $1`
	if err := s.db.QueryRowxContext(ctx, q, appID).Scan(&url, &keyID, &enc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", "", nil, errs.NotFound("app %s", appID)
		}
		return "", "", nil, fmt.Errorf("select webhook target: %w", err)
	}
	return url, keyID, enc, nil
}

// appKeyOwner is what an API key resolves to.
type appKeyOwner struct {
	AppID      string `db:"app_id"`
	MerchantID string `db:"merchant_id"`
	Status     Status `db:"status"`
}

func (s *Store) appByKeyHash(ctx context.Context, hash []byte) (appKeyOwner, error) {
	const q = `SELECT a.app_id, a.merchant_id, m.status
		FROM apps a JOIN merchants m ON m.merchant_id = a.merchant_id
		WHERE a.api_key_hash = $1`
	var o appKeyOwner
	if err := s.db.GetContext(ctx, &o, q, hash); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return appKeyOwner{}, errs.ErrNotFound
		}
		return appKeyOwner{}, fmt.Errorf("resolve app key: %w", err)
	}
	return o, nil
}

// channelRow is a channel_configs row.
type channelRow struct {
	AppID        string    `db:"app_id"`
	MerchantID   string    `db:"merchant_id"`
	Channel      Channel   `db:"channel"`
	Enabled      bool      `db:"enabled"`
	Settings     []byte    `db:"settings"`
	SecretsEnc   []byte    `db:"secrets_enc"`
	SecretsKeyID string    `db:"secrets_keyid"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`
}

const channelColumns = `app_id, merchant_id, channel, enabled, settings, secrets_enc, secrets_keyid, created_at, updated_at`

func (s *Store) upsertChannel(ctx context.Context, r channelRow) (channelRow, error) {
	const q = `INSERT INTO channel_configs (app_id, merchant_id, channel, enabled, settings, secrets_enc, secrets_keyid)
		VALUES ($1, $2, $3, true, $4, $5, $6)
		ON CONFLICT (app_id, channel) DO UPDATE SET enabled = true, settings = EXCLUDED.settings,
			secrets_enc = EXCLUDED.secrets_enc, secrets_keyid = EXCLUDED.secrets_keyid, updated_at = now()
		RETURNING ` + channelColumns
	var out channelRow
	if err := s.db.GetContext(ctx, &out, q, r.AppID, r.MerchantID, r.Channel, string(r.Settings), r.SecretsEnc, r.SecretsKeyID); err != nil {
		return channelRow{}, fmt.Errorf("upsert channel config: %w", err)
	}
	return out, nil
}

func (s *Store) channels(ctx context.Context, appID string, after Channel, limit int) ([]channelRow, error) {
	const q = `SELECT ` + channelColumns + ` FROM channel_configs WHERE app_id = $1 AND channel > $2 ORDER BY channel LIMIT $3`
	var rs []channelRow
	if err := s.db.SelectContext(ctx, &rs, q, appID, after, limit); err != nil {
		return nil, fmt.Errorf("list channel configs: %w", err)
	}
	return rs, nil
}

func (s *Store) channel(ctx context.Context, appID string, ch Channel) (channelRow, error) {
	const q = `SELECT ` + channelColumns + ` FROM channel_configs WHERE app_id = $1 AND channel = $2`
	var r channelRow
	if err := s.db.GetContext(ctx, &r, q, appID, ch); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return channelRow{}, errs.NotFound("%s configuration of app %s", ch, appID)
		}
		return channelRow{}, fmt.Errorf("select channel config: %w", err)
	}
	return r, nil
}

func (s *Store) disableChannel(ctx context.Context, appID string, ch Channel) (channelRow, error) {
	const q = `UPDATE channel_configs SET enabled = false, updated_at = now()
		WHERE app_id = $1 AND channel = $2 RETURNING ` + channelColumns
	var r channelRow
	if err := s.db.GetContext(ctx, &r, q, appID, ch); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return channelRow{}, errs.NotFound("%s configuration of app %s", ch, appID)
		}
		return channelRow{}, fmt.Errorf("disable channel: %w", err)
	}
	return r, nil
}

func marshalJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings always marshal
	}
	return b
}
