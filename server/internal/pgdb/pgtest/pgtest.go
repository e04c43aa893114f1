// Package pgtest gives each test its own freshly migrated PostgreSQL database, on a private
// cluster started once per test binary (or on PAYCENTER_TEST_DATABASE_URL's server).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/migrations"
	"github.com/paycenter/paycenter/server/internal/pgdb"
)

const templateDB = "paycenter_template"

var (
	once     sync.Once
	cluster  *pgdb.Cluster
	adminURL string // a URL whose database may be replaced to reach another database
	setupErr error
)

// Main runs the package's tests and stops the private cluster afterwards. Call it from
// TestMain: `func TestMain(m *testing.M) { pgtest.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
		os.RemoveAll(clusterDir)
	}
	os.Exit(code)
}

var clusterDir string

func setup() {
	ctx := context.Background()
	if u := os.Getenv("PAYCENTER_TEST_DATABASE_URL"); u != "" {
		adminURL = u
	} else {
		clusterDir, setupErr = os.MkdirTemp("", "paycenter-test-")
		if setupErr != nil {
			return
		}
		os.Chmod(clusterDir, 0o755)
		cluster, setupErr = pgdb.StartCluster(ctx, pgdb.ClusterOptions{DataDir: clusterDir + "/data"})
		if setupErr != nil {
			return
		}
		adminURL = cluster.URL("postgres")
	}
	// One migrated template per binary; each test database is a cheap copy of it.
	admin, err := sqlx.Open("postgres", adminURL)
	if err != nil {
		setupErr = err
		return
	}
	defer admin.Close()
	tmpl := templateDB + "_" + randomSuffix()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+tmpl); err != nil {
		setupErr = fmt.Errorf("create template: %w", err)
		return
	}
	db, err := pgdb.Open(ctx, withDatabase(adminURL, tmpl), 2)
	if err != nil {
		setupErr = err
		return
	}
	defer db.Close()
	if err := migrations.Apply(ctx, db.DB); err != nil {
		setupErr = err
		return
	}
	templateName = tmpl
}

var templateName string

// URL creates a new migrated database and returns its URL; it is dropped when the test ends.
func URL(tb testing.TB) string {
	tb.Helper()
	once.Do(setup)
	if setupErr != nil {
		tb.Fatalf("test database: %v", setupErr)
	}
	ctx := context.Background()
	admin, err := sqlx.Open("postgres", adminURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	name := "test_" + randomSuffix()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE `+templateName); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		admin, err := sqlx.Open("postgres", adminURL)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	return withDatabase(adminURL, name)
}

// DB opens a new migrated database for the test; it is closed and dropped when the test ends.
func DB(tb testing.TB) *sqlx.DB {
	tb.Helper()
	return Open(tb, URL(tb), 20)
}

// Open connects to the database at url with up to maxConns connections, closed when the test
// ends.
func Open(tb testing.TB, url string, maxConns int) *sqlx.DB {
	tb.Helper()
	db, err := pgdb.Open(context.Background(), url, maxConns)
	if err != nil {
		tb.Fatalf("open test database: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
