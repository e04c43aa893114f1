// Package config reads paycenter's settings from environment variables and validates them, so
// a bad setting stops the start with a message naming the variable.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paycenter/paycenter/server/internal/secret"
)

// Config is paycenter's configuration.
type Config struct {
	Addr            string
	SandboxAddr     string
	DatabaseURL     string
	DataDir         string
	AdminKeys       []string
	MasterKeys      string
	Keyring         *secret.Keyring
	PublicURL       string
	CORSOrigins     []string
	MaxRequestBytes int64
	DBMaxConns      int
	AppRateLimit    float64
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	LogFormat       string
}

// Var documents one environment variable; Vars is the README's configuration table.
type Var struct {
	Name, Default, Help string
}

// Vars lists every variable paycenter reads.
var Vars = []Var{
	{"PAYCENTER_ADDR", "127.0.0.1:8080", "host:port to listen on (HTTP/1.1 and cleartext HTTP/2)"},
	{"PAYCENTER_DATABASE_URL", "", "PostgreSQL URL; required by `serve`; `dev` starts a private cluster when empty"},
	{"PAYCENTER_DATA_DIR", ".data", "`dev` only: where the private cluster and generated dev keys live"},
	{"PAYCENTER_SANDBOX_ADDR", "127.0.0.1:8081", "`dev` and `sandbox`: host:port of the sandbox Alipay and WeChat Pay servers"},
	{"PAYCENTER_ADMIN_KEYS", "", "comma-separated operator keys (each at least 24 characters); required by `serve`"},
	{"PAYCENTER_MASTER_KEYS", "", "comma-separated `id:base64(32 bytes)` AES-256 keys, current first, for secrets at rest; required by `serve`"},
	{"PAYCENTER_PUBLIC_URL", "http://<PAYCENTER_ADDR>", "base URL that payers and channels reach (cashier pages, notify URLs)"},
	{"PAYCENTER_CORS_ORIGINS", "", "comma-separated browser origins allowed to call the API (`*` for any)"},
	{"PAYCENTER_MAX_REQUEST_BYTES", "1048576", "largest request body accepted"},
	{"PAYCENTER_DB_MAX_CONNS", "20", "database connection pool size"},
	{"PAYCENTER_APP_RATE_LIMIT", "500", "requests per second each app key may make on one replica (bursts of twice that; 0: no limit)"},
	{"PAYCENTER_SHUTDOWN_TIMEOUT", "15s", "how long a graceful stop waits for requests in flight"},
	{"PAYCENTER_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"PAYCENTER_LOG_FORMAT", "text", "text or json"},
}

// Load reads the variables through getenv. Errors name every bad variable at once.
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, v := range Vars {
			if v.Name == name && !strings.HasPrefix(v.Default, "http://<") {
				return v.Default
			}
		}
		return ""
	}
	var problems []error
	bad := func(name, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	c := Config{
		Addr:        get("PAYCENTER_ADDR"),
		SandboxAddr: get("PAYCENTER_SANDBOX_ADDR"),
		DatabaseURL: get("PAYCENTER_DATABASE_URL"),
		DataDir:     get("PAYCENTER_DATA_DIR"),
		MasterKeys:  get("PAYCENTER_MASTER_KEYS"),
		LogFormat:   get("PAYCENTER_LOG_FORMAT"),
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("PAYCENTER_ADDR", "want host:port, e.g. 127.0.0.1:8080 (%v)", err)
	}
	if _, _, err := net.SplitHostPort(c.SandboxAddr); err != nil {
		bad("PAYCENTER_SANDBOX_ADDR", "want host:port, e.g. 127.0.0.1:8081 (%v)", err)
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("PAYCENTER_DATABASE_URL", "want a postgres:// URL")
		}
	}
	for _, k := range splitList(get("PAYCENTER_ADMIN_KEYS")) {
		if len(k) < 24 {
			bad("PAYCENTER_ADMIN_KEYS", "every key must be at least 24 characters")
			break
		}
		c.AdminKeys = append(c.AdminKeys, k)
	}
	if c.MasterKeys != "" {
		k, err := secret.ParseKeyring(c.MasterKeys)
		if err != nil {
			bad("PAYCENTER_MASTER_KEYS", "%v", err)
		}
		c.Keyring = k
	}
	c.PublicURL = strings.TrimRight(get("PAYCENTER_PUBLIC_URL"), "/")
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("PAYCENTER_PUBLIC_URL", "want an absolute http(s) URL")
	}
	c.CORSOrigins = splitList(get("PAYCENTER_CORS_ORIGINS"))
	if n, err := strconv.ParseInt(get("PAYCENTER_MAX_REQUEST_BYTES"), 10, 64); err != nil || n < 1024 || n > 64<<20 {
		bad("PAYCENTER_MAX_REQUEST_BYTES", "want a number of bytes between 1024 and 67108864")
	} else {
		c.MaxRequestBytes = n
	}
	if n, err := strconv.Atoi(get("PAYCENTER_DB_MAX_CONNS")); err != nil || n < 2 || n > 1000 {
		bad("PAYCENTER_DB_MAX_CONNS", "want a number between 2 and 1000")
	} else {
		c.DBMaxConns = n
	}
	if n, err := strconv.ParseFloat(get("PAYCENTER_APP_RATE_LIMIT"), 64); err != nil || n < 0 || n > 1e6 {
		bad("PAYCENTER_APP_RATE_LIMIT", "want requests per second between 0 (no limit) and 1000000")
	} else {
		c.AppRateLimit = n
	}
	if d, err := time.ParseDuration(get("PAYCENTER_SHUTDOWN_TIMEOUT")); err != nil || d <= 0 {
		bad("PAYCENTER_SHUTDOWN_TIMEOUT", "want a positive duration like 15s")
	} else {
		c.ShutdownTimeout = d
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("PAYCENTER_LOG_LEVEL"))); err != nil {
		bad("PAYCENTER_LOG_LEVEL", "want debug, info, warn or error")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("PAYCENTER_LOG_FORMAT", "want text or json")
	}
	return c, errors.Join(problems...)
}

// RequireProduction checks what `serve` needs beyond Load: a database, admin and master keys.
func (c Config) RequireProduction() error {
	var problems []error
	if c.DatabaseURL == "" {
		problems = append(problems, errors.New("PAYCENTER_DATABASE_URL: required by serve"))
	}
	if len(c.AdminKeys) == 0 {
		problems = append(problems, errors.New("PAYCENTER_ADMIN_KEYS: required by serve"))
	}
	if c.Keyring == nil {
		problems = append(problems, errors.New("PAYCENTER_MASTER_KEYS: required by serve"))
	}
	return errors.Join(problems...)
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
