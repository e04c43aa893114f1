package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" || c.MaxRequestBytes != 1<<20 ||
		c.ShutdownTimeout != 15*time.Second || c.DataDir != ".data" {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.RequireProduction(); err == nil || !strings.Contains(err.Error(), "PAYCENTER_DATABASE_URL") {
		t.Fatalf("serve without a database: %v", err)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	_, err := Load(env(map[string]string{
		"PAYCENTER_ADDR":              "no-port",
		"PAYCENTER_DATABASE_URL":      "mysql://x",
		"PAYCENTER_ADMIN_KEYS":        "short",
		"PAYCENTER_MASTER_KEYS":       "k1:bm90MzJieXRlcw==",
		"PAYCENTER_MAX_REQUEST_BYTES": "ten",
		"PAYCENTER_SHUTDOWN_TIMEOUT":  "-1s",
		"PAYCENTER_LOG_LEVEL":         "loud",
		"PAYCENTER_LOG_FORMAT":        "xml",
		"PAYCENTER_PUBLIC_URL":        "ftp://x",
		"PAYCENTER_DB_MAX_CONNS":      "1",
		"PAYCENTER_APP_RATE_LIMIT":    "fast",
	}))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, name := range []string{"PAYCENTER_ADDR", "PAYCENTER_DATABASE_URL", "PAYCENTER_ADMIN_KEYS", "PAYCENTER_MASTER_KEYS",
		"PAYCENTER_MAX_REQUEST_BYTES", "PAYCENTER_SHUTDOWN_TIMEOUT", "PAYCENTER_LOG_LEVEL", "PAYCENTER_LOG_FORMAT",
		"PAYCENTER_PUBLIC_URL", "PAYCENTER_DB_MAX_CONNS", "PAYCENTER_APP_RATE_LIMIT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
