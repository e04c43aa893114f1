// Command paycenter runs the payment center.
//
//	paycenter serve    serve with PAYCENTER_DATABASE_URL and keys from the environment
//	paycenter migrate  apply database migrations and exit
//	paycenter dev      start a private PostgreSQL and the sandbox channels, migrate, seed a
//	                   demo merchant and app, serve
//	paycenter sandbox  serve the sandbox Alipay and WeChat Pay channels alone
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/migrations"
	"github.com/paycenter/paycenter/server/internal/config"
	"github.com/paycenter/paycenter/server/internal/metrics"
	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/server"
)

const usage = `usage: paycenter <command>

commands:
  serve    serve the API (needs PAYCENTER_DATABASE_URL, PAYCENTER_ADMIN_KEYS, PAYCENTER_MASTER_KEYS)
  migrate  apply database migrations to PAYCENTER_DATABASE_URL and exit
  dev      everything on one machine: private PostgreSQL, migrations, sandbox channels,
           demo merchant and app
  sandbox  the sandbox Alipay and WeChat Pay servers alone (PAYCENTER_SANDBOX_ADDR)

configuration comes from PAYCENTER_* environment variables; see the README.
`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	server.TuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "paycenter: bad configuration:\n%v\n", err)
		os.Exit(2)
	}
	logger := newLogger(cfg)
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, cfg, logger)
	case "migrate":
		err = migrate(ctx, cfg)
	case "dev":
		err = dev(ctx, cfg, logger)
	case "sandbox":
		err = runSandbox(ctx, cfg, logger)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		logger.Error("paycenter failed", "error", err)
		os.Exit(1)
	}
}

func newLogger(cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if err := cfg.RequireProduction(); err != nil {
		return err
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
	return listenAndServe(ctx, cfg, srv, logger)
}

func migrate(ctx context.Context, cfg config.Config) error {
	if cfg.DatabaseURL == "" {
		return errors.New("PAYCENTER_DATABASE_URL: required by migrate")
	}
	db, err := pgdb.Open(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	return migrations.Apply(ctx, db.DB)
}

func newServer(cfg config.Config, db *sqlx.DB, logger *slog.Logger) (*server.Server, error) {
	return server.New(server.Config{
		PublicURL:       cfg.PublicURL,
		DB:              db,
		DatabaseURL:     cfg.DatabaseURL,
		Logger:          logger,
		Registry:        metrics.NewRegistry(),
		AdminKeys:       cfg.AdminKeys,
		Keyring:         cfg.Keyring,
		CORSOrigins:     cfg.CORSOrigins,
		MaxRequestBytes: cfg.MaxRequestBytes,
		AppRateLimit:    cfg.AppRateLimit,
		ShutdownTimeout: cfg.ShutdownTimeout,
	})
}

func listenAndServe(ctx context.Context, cfg config.Config, srv *server.Server, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("PAYCENTER_ADDR: listen on %s: %w", cfg.Addr, err)
	}
	logger.Info("paycenter listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL)
	return srv.Serve(ctx, ln)
}
