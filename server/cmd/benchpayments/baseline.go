package main

// The pgbench baseline, the same single-transfer script as cmd/benchledger's (copied, not
// shared, so each command stays self-contained), on tables of its own.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
)

// baseline is the pgbench run.
type baseline struct {
	Clients     int     `json:"clients"`
	TPS         float64 `json:"tps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Failed      int     `json:"failed"`
	PostgresCPU float64 `json:"postgres_cpu_ms_per_tx,omitempty"`
}

// pgbenchScript is one transfer by hand: two balance updates (in id order, so clients do not
// deadlock) and two entry inserts, in one transaction.
const pgbenchScript = `\set a random(1, :naccounts)
\set d random(1, :naccounts - 1)
\set b 1 + (:a + :d - 1) % :naccounts
\set lo least(:a, :b)
\set hi greatest(:a, :b)
\set amount random(1, 10000)
\set neg -:amount
\set dlo CASE WHEN :a < :b THEN -:amount ELSE :amount END
\set dhi -:dlo
BEGIN;
UPDATE benchpayments_accounts SET balance = balance + :dlo WHERE id = :lo;
UPDATE benchpayments_accounts SET balance = balance + :dhi WHERE id = :hi;
INSERT INTO benchpayments_entries (account_id, amount) VALUES (:a, :neg);
INSERT INTO benchpayments_entries (account_id, amount) VALUES (:b, :amount);
END;
`

// runPgbench runs the baseline; postmaster (0 when unknown) lets it measure PostgreSQL's CPU.
func runPgbench(ctx context.Context, c config, db *sqlx.DB, binDir, url string, postmaster int) (baseline, error) {
	setup := []string{
		`DROP TABLE IF EXISTS benchpayments_entries, benchpayments_accounts`,
		`CREATE TABLE benchpayments_accounts (id integer PRIMARY KEY, balance bigint NOT NULL)`,
		fmt.Sprintf(`INSERT INTO benchpayments_accounts (id, balance) SELECT i, 0 FROM generate_series(1, %d) i`, c.accounts),
		`CREATE TABLE benchpayments_entries (id bigserial PRIMARY KEY, account_id integer NOT NULL, amount bigint NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now())`,
		`CREATE INDEX ON benchpayments_entries (account_id, created_at)`,
		`CHECKPOINT`,
	}
	for _, q := range setup {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return baseline{}, fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
		}
	}
	dir, err := os.MkdirTemp("", "benchpayments-pgbench-")
	if err != nil {
		return baseline{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil { // pgbench may run as postgres and writes its logs here
		return baseline{}, err
	}
	script := filepath.Join(dir, "transfer.sql")
	if err := os.WriteFile(script, []byte(pgbenchScript), 0o644); err != nil {
		return baseline{}, err
	}
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(c.pgbenchClients), "-j", strconv.Itoa(min(c.pgbenchClients, runtime.NumCPU())),
		"-T", strconv.Itoa(int(math.Ceil(c.duration.Seconds()))), "-D", "naccounts=" + strconv.Itoa(c.accounts),
		"-f", script, "-l", "--log-prefix", filepath.Join(dir, "log"), url}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "pgbench"), args...)
	cmd.Dir = dir
	if os.Geteuid() == 0 {
		// Like the server binaries, run as the postgres user when we are root.
		if u, err := user.Lookup("postgres"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
	}
	var pgBefore time.Duration
	if postmaster > 0 {
		pgBefore, _ = postgresCPU(postmaster)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return baseline{}, fmt.Errorf("%w: %s", err, out)
	}
	var pgUsed time.Duration
	if postmaster > 0 {
		after, _ := postgresCPU(postmaster)
		pgUsed = after - pgBefore
	}
	m := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`).FindSubmatch(out)
	if m == nil {
		return baseline{}, fmt.Errorf("no tps in pgbench output: %s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	lat, err := pgbenchLatencies(dir)
	if err != nil {
		return baseline{}, err
	}
	b := baseline{Clients: c.pgbenchClients, TPS: tps, P50ms: ms(percentile(lat, 0.50)), P99ms: ms(percentile(lat, 0.99))}
	if m := regexp.MustCompile(`number of failed transactions: ([0-9]+)`).FindSubmatch(out); m != nil {
		b.Failed, _ = strconv.Atoi(string(m[1]))
	}
	if pgUsed > 0 && len(lat) > 0 {
		b.PostgresCPU = ms(pgUsed) / float64(len(lat))
	}
	return b, nil
}

// pgbenchLatencies reads pgbench's per-transaction logs: "client tx latency_us script epoch us".
func pgbenchLatencies(dir string) ([]time.Duration, error) {
	files, err := filepath.Glob(filepath.Join(dir, "log*"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no pgbench logs in %s (%v)", dir, err)
	}
	var lat []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			if us, err := strconv.ParseInt(fields[2], 10, 64); err == nil {
				lat = append(lat, time.Duration(us)*time.Microsecond)
			}
		}
		fh.Close()
	}
	return lat, nil
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pgBinDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if dir := os.Getenv("PAYCENTER_PG_BIN"); dir != "" {
		return dir, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	best, bestVersion := "", -1
	for _, m := range matches {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if err == nil && v > bestVersion {
			best, bestVersion = filepath.Dir(m), v
		}
	}
	if best == "" {
		if p, err := exec.LookPath("pgbench"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", errors.New("pgbench not found: install PostgreSQL or pass -pg-bin")
	}
	return best, nil
}
