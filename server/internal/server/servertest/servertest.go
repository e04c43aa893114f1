// Package servertest starts a real paycenter server for tests: its own migrated database, a
// real listener on 127.0.0.1 speaking HTTP/1.1 and cleartext HTTP/2, and the Go client.
package servertest

import (
	"context"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	paycenter "github.com/paycenter/paycenter/clients/go"
	"github.com/paycenter/paycenter/server/internal/metrics"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
	"github.com/paycenter/paycenter/server/internal/secret"
	"github.com/paycenter/paycenter/server/internal/server"
)

// AdminKey is the operator key of test servers.
const AdminKey = "test-admin-key-0123456789abcdef"

// Env is a running test server.
type Env struct {
	// Stop shuts the server down gracefully (once) and returns what Serve returned.
	Stop func() error
	URL  string
	DB   *sqlx.DB
	// DatabaseURL is DB's connection string.
	DatabaseURL string
	Server      *server.Server
	Registry    *prometheus.Registry
	Keyring     *secret.Keyring
	Logger      *slog.Logger
}

// Option adjusts the server's configuration before it starts.
type Option func(*server.Config)

// Start runs a server on a fresh database until the test ends. Set PAYCENTER_TEST_LOG=1 to
// see its logs.
func Start(tb testing.TB, opts ...Option) *Env {
	tb.Helper()
	dbURL := pgtest.URL(tb)
	return start(tb, pgtest.Open(tb, dbURL, 20), dbURL, opts)
}

// Replica runs a second server on primary's database, as another replica would.
func Replica(tb testing.TB, primary *Env, opts ...Option) *Env {
	tb.Helper()
	return start(tb, primary.DB, primary.DatabaseURL, opts)
}

func start(tb testing.TB, db *sqlx.DB, dbURL string, opts []Option) *Env {
	tb.Helper()
	keyring, err := secret.ParseKeyring("test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("PAYCENTER_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	cfg := server.Config{
		PublicURL:       url,
		WorkerInterval:  100 * time.Millisecond,
		FirstCheck:      time.Second,
		WebhookSchedule: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond},
		DB:              db,
		DatabaseURL:     dbURL,
		Logger:          logger,
		Registry:        metrics.NewRegistry(),
		AdminKeys:       []string{AdminKey},
		Keyring:         keyring,
		CORSOrigins:     []string{"http://localhost:3000"},
		MaxRequestBytes: 1 << 20,
		ShutdownTimeout: 5 * time.Second,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
		})
		return stopErr
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("server shutdown: %v", err)
		}
	})
	return &Env{Stop: stop, URL: url, DB: db, DatabaseURL: dbURL, Server: srv, Registry: cfg.Registry, Keyring: keyring, Logger: logger}
}

// Client returns a Go client that authenticates with key.
func (e *Env) Client(key string, opts ...paycenter.Option) *paycenter.Client {
	return paycenter.New(e.URL, key, opts...)
}

// Admin returns a Go client with the admin key.
func (e *Env) Admin(opts ...paycenter.Option) *paycenter.Client { return e.Client(AdminKey, opts...) }
