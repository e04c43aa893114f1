package pgdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
)

// ClusterOptions configures a private cluster.
type ClusterOptions struct {
	// DataDir holds the cluster's files; created when missing and reused when it already holds
	// a cluster. Every parent directory must be traversable by the user the server runs as.
	DataDir string
	// Durable keeps PostgreSQL's default fsync behaviour; tests turn it off for speed.
	Durable bool
	// Logger receives start/stop messages; nil discards them.
	Logger *slog.Logger
	// Settings are extra `-c name=value` server settings.
	Settings map[string]string
}

// Cluster is a PostgreSQL server this process started and owns.
type Cluster struct {
	dataDir   string
	socketDir string
	cmd       *exec.Cmd
	exited    chan struct{}
	logger    *slog.Logger
}

// StartCluster initialises (if needed) and starts a PostgreSQL cluster that listens only on a
// private unix socket. initdb and postgres refuse to run as root, so as root they run as the
// "postgres" user. The cluster stops when Stop is called or this process dies.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := ServerCredential()
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := prepareDir(dataDir, cred, 0o700); err != nil {
		return nil, err
	}
	// Socket paths are limited to ~107 bytes, so the socket lives in a short temp directory.
	socketDir, err := os.MkdirTemp("", "pcpg-")
	if err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if err := prepareDir(socketDir, cred, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		args := []string{"-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"}
		if !opts.Durable {
			args = append(args, "--no-sync")
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb %s: %w: %s", dataDir, err, strings.TrimSpace(string(out)))
		}
	}
	settings := map[string]string{
		"listen_addresses":        "",
		"unix_socket_directories": socketDir,
		"max_connections":         "200",
		"shared_buffers":          "128MB",
	}
	if !opts.Durable {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	args := []string{"-D", dataDir}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	logFile, err := os.OpenFile(filepath.Join(socketDir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("postgres log: %w", err)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig stops the server if this process dies without calling Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c := &Cluster{dataDir: dataDir, socketDir: socketDir, cmd: cmd, exited: make(chan struct{}), logger: logger}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	logger.Info("postgres started", "data_dir", dataDir, "socket_dir", socketDir)
	return c, nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := sqlx.Open("postgres", c.URL("postgres"))
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(filepath.Join(c.socketDir, "postgres.log"))
			return fmt.Errorf("postgres exited during start-up: %s", strings.TrimSpace(string(log)))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within a minute: %w", err)
		}
	}
}

// URL is a connection URL for database dbname on this cluster.
func (c *Cluster) URL(dbname string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&sslmode=disable", dbname, c.socketDir)
}

// Stop shuts the server down (fast mode: open sessions are ended) and waits for it.
func (c *Cluster) Stop() {
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	os.RemoveAll(c.socketDir)
	c.logger.Info("postgres stopped", "data_dir", c.dataDir)
}

// CreateDatabase creates database name on the cluster if it does not exist.
func (c *Cluster) CreateDatabase(ctx context.Context, name, template string) error {
	db, err := sqlx.Open("postgres", c.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	stmt := "CREATE DATABASE " + quoteIdent(name)
	if template != "" {
		stmt += " TEMPLATE " + quoteIdent(template)
	}
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// BinDir finds the PostgreSQL server binaries (initdb, postgres, pgbench): PAYCENTER_PG_BIN,
// else the newest /usr/lib/postgresql/N/bin, else the directory of initdb on PATH.
func BinDir() (string, error) {
	if dir := os.Getenv("PAYCENTER_PG_BIN"); dir != "" {
		return dir, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestVersion := "", -1
	for _, m := range matches {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if err == nil && v > bestVersion {
			best, bestVersion = filepath.Dir(m), v
		}
	}
	if best != "" {
		return best, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries not found: install PostgreSQL (initdb, postgres) or set PAYCENTER_PG_BIN")
}

// ServerCredential is the user PostgreSQL's programs run as: nil (this process's user), or
// the "postgres" user when this process is root (initdb refuses root).
func ServerCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New(`running as root, but there is no "postgres" user to run PostgreSQL as (initdb refuses root)`)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepareDir creates dir owned by the server's user and checks that the user can reach it.
func prepareDir(dir string, cred *syscall.Credential, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	if cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("PostgreSQL runs as the postgres user and cannot traverse %s (mode %v): choose a data directory under a world-traversable path (PAYCENTER_DATA_DIR)", p, fi.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
	}
}
