package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/paycenter/paycenter/migrations"
	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/config"
	"github.com/paycenter/paycenter/server/internal/ids"
	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/secret"
	"github.com/paycenter/paycenter/server/internal/server"
)

// devState is what `paycenter dev` remembers between runs, in the data directory. It holds
// development keys only: production keys come from the environment.
type devState struct {
	AdminKey   string `json:"admin_key"`
	MasterKeys string `json:"master_keys"`
	MerchantID string `json:"demo_merchant_id"`
	AppID      string `json:"demo_app_id"`
}

func dev(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("PAYCENTER_DATA_DIR: %w", err)
	}
	statePath := filepath.Join(cfg.DataDir, "dev.json")
	state, err := loadDevState(statePath)
	if err != nil {
		return err
	}
	if len(cfg.AdminKeys) == 0 {
		cfg.AdminKeys = []string{state.AdminKey}
	}
	if cfg.Keyring == nil {
		if cfg.Keyring, err = secret.ParseKeyring(state.MasterKeys); err != nil {
			return fmt.Errorf("%s: %w", statePath, err)
		}
	}
	if cfg.DatabaseURL == "" {
		cluster, err := pgdb.StartCluster(ctx, pgdb.ClusterOptions{
			DataDir: filepath.Join(cfg.DataDir, "postgres"), Durable: true, Logger: logger,
		})
		if err != nil {
			return err
		}
		defer cluster.Stop()
		if err := cluster.CreateDatabase(ctx, "paycenter", ""); err != nil {
			return err
		}
		cfg.DatabaseURL = cluster.URL("paycenter")
	}
	db, err := pgdb.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Apply(ctx, db.DB); err != nil {
		return err
	}
	srv, err := newServer(cfg, db, logger)
	if err != nil {
		return err
	}
	appKey, err := seedDemo(ctx, srv, &state)
	if err != nil {
		return err
	}
	pair, sandboxURL, err := startSandbox(ctx, cfg.SandboxAddr, logger)
	if err != nil {
		return err
	}
	if err := configureSandboxChannels(ctx, srv, pair, sandboxURL, state.AppID); err != nil {
		return err
	}
	if err := saveDevState(statePath, state); err != nil {
		return err
	}
	fmt.Printf(`
paycenter dev is running
  address        http://%s  (HTTP/1.1 and cleartext HTTP/2: Connect, gRPC, gRPC-Web)
  metrics        http://%s/metrics
  admin key      %s
  demo merchant  %s
  demo app       %s
  demo app key   %s   (new on every start; the old one stops working)
  sandbox        %s  (Alipay gateway and WeChat Pay API v3; the demo app uses both)
  pay as payer   curl -X POST %s/sandbox/alipay/trades/<trade_no>/pay   (or .../wechatpay/...)
press Ctrl-C to stop
`, cfg.Addr, cfg.Addr, cfg.AdminKeys[0], state.MerchantID, state.AppID, appKey, sandboxURL, sandboxURL)
	return listenAndServe(ctx, cfg, srv, logger)
}

// seedDemo creates the demo merchant and app on the first run and issues a fresh app key on
// every run (keys are stored only as hashes, so the old one cannot be shown again).
func seedDemo(ctx context.Context, srv *server.Server, state *devState) (string, error) {
	ctx = auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindAdmin})
	if state.AppID != "" {
		if _, key, err := srv.Merchants.RotateKey(ctx, state.AppID); err == nil {
			return key, nil
		}
		// The database was reset: seed again.
	}
	m, err := srv.Merchants.CreateMerchant(ctx, "Demo Property Co.", "ops@demo.example")
	if err != nil {
		return "", fmt.Errorf("seed demo merchant: %w", err)
	}
	app, err := srv.Merchants.CreateApp(ctx, m.ID, "Demo Billing", "")
	if err != nil {
		return "", fmt.Errorf("seed demo app: %w", err)
	}
	state.MerchantID, state.AppID = m.ID, app.App.ID
	return app.APIKey, nil
}

func loadDevState(path string) (devState, error) {
	var s devState
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s = devState{AdminKey: "admin_" + ids.Secret(32), MasterKeys: secret.NewKeySpec("dev1")}
		return s, saveDevState(path, s)
	case err != nil:
		return s, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s is not valid JSON (delete it to start afresh): %w", path, err)
	}
	return s, nil
}

func saveDevState(path string, s devState) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
