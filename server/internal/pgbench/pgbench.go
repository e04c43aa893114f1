// Package pgbench runs the same-run database baseline of paycenter's benchmarks: pgbench
// doing one money transfer by hand per transaction (two balance updates in id order and two
// entry inserts), on tables of its own, against the database being benchmarked.
package pgbench

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/cpustat"
	"github.com/paycenter/paycenter/server/internal/pgdb"
)

// script is one transfer: two balance updates (in id order, so clients do not deadlock) and
// two entry inserts, in one transaction.
const script = `\set a random(1, :naccounts)
\set d random(1, :naccounts - 1)
\set b 1 + (:a + :d - 1) % :naccounts
\set lo least(:a, :b)
\set hi greatest(:a, :b)
\set amount random(1, 10000)
\set neg -:amount
\set dlo CASE WHEN :a < :b THEN -:amount ELSE :amount END
\set dhi -:dlo
BEGIN;
UPDATE pgbench_transfer_accounts SET balance = balance + :dlo WHERE id = :lo;
UPDATE pgbench_transfer_accounts SET balance = balance + :dhi WHERE id = :hi;
INSERT INTO pgbench_transfer_entries (account_id, amount) VALUES (:a, :neg);
INSERT INTO pgbench_transfer_entries (account_id, amount) VALUES (:b, :amount);
END;
`

// Options configure a run.
type Options struct {
	BinDir   string // where pgbench is (BinDir below finds it)
	URL      string // the database, as pgbench reaches it
	Clients  int
	Accounts int
	// Warmup runs before the measured Duration and is left out of every number: pgbench's
	// sessions are new, and on this VM the first seconds of a new session run at a fraction
	// of its steady speed (measured: about 700 tps in the first second, 3000–3500 from the fifth), where
	// the benchmarks' servers hold warm connections. Unmeasured, it would flatter them.
	Warmup   time.Duration
	Duration time.Duration
	// Postmaster, when not 0, is the cluster's postmaster pid: Run then measures PostgreSQL's
	// CPU time during the run.
	Postmaster int
}

// Result is what pgbench measured.
type Result struct {
	Clients   int
	TPS       float64
	Failed    int
	Latencies []time.Duration // one per measured transaction, sorted
	CPU       time.Duration   // pgbench's own user and system time (the client's share of the machine)
	// PostgresCPU is the cluster's CPU time (0 without Options.Postmaster); MachineBusy is the
	// share of the machine's CPU time that was busy (anyone's). Like CPU, both are over the
	// measured window only.
	PostgresCPU time.Duration
	MachineBusy float64
}

// Percentile returns the p-quantile (0..1) of the latencies.
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(len(r.Latencies)-1, int(p*float64(len(r.Latencies))))]
}

// Run creates the baseline's tables on db (replacing earlier ones) and runs pgbench for
// o.Warmup + o.Duration, measuring the last o.Duration.
func Run(ctx context.Context, db *sqlx.DB, o Options) (Result, error) {
	setup := []string{
		`DROP TABLE IF EXISTS pgbench_transfer_entries, pgbench_transfer_accounts`,
		`CREATE TABLE pgbench_transfer_accounts (id integer PRIMARY KEY, balance bigint NOT NULL)`,
		fmt.Sprintf(`INSERT INTO pgbench_transfer_accounts (id, balance) SELECT i, 0 FROM generate_series(1, %d) i`, o.Accounts),
		`CREATE TABLE pgbench_transfer_entries (id bigserial PRIMARY KEY, account_id integer NOT NULL, amount bigint NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now())`,
		`CREATE INDEX ON pgbench_transfer_entries (account_id, created_at)`,
		`CHECKPOINT`,
	}
	for _, q := range setup {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return Result{}, fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
		}
	}
	dir, err := os.MkdirTemp("", "pgbench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil { // pgbench may run as postgres and logs here
		return Result{}, err
	}
	scriptPath := filepath.Join(dir, "transfer.sql")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		return Result{}, err
	}
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(o.Clients), "-j", strconv.Itoa(min(o.Clients, runtime.NumCPU())),
		"-T", strconv.Itoa(int(math.Ceil((o.Warmup + o.Duration).Seconds()))), "-D", "naccounts=" + strconv.Itoa(o.Accounts),
		"-f", scriptPath, "-l", "--log-prefix", filepath.Join(dir, "log"), o.URL}
	cmd := exec.CommandContext(ctx, filepath.Join(o.BinDir, "pgbench"), args...)
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// Like the server binaries, run as the postgres user when we are root.
	cred, err := pgdb.ServerCredential()
	if err != nil {
		return Result{}, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	// Only pgbench's own run after its warm-up is measured: not the setup above (its
	// CHECKPOINT especially), nor the warm-up.
	children := cpustat.PostgresChildren(o.Postmaster)
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return Result{}, fmt.Errorf("pgbench ended within its warm-up (%v): %s", err, out.String())
	case <-time.After(o.Warmup):
	}
	from := time.Now()
	pg0, _ := cpustat.PostgresCPU(o.Postmaster)
	self0, _ := cpustat.ProcessCPU(cmd.Process.Pid)
	busy0, total0 := cpustat.MachineCPU()
	if err := <-exited; err != nil {
		return Result{}, fmt.Errorf("%w: %s", err, out.String())
	}
	busy1, total1 := cpustat.MachineCPU()
	pg1 := settledPostgresCPU(o.Postmaster, children)
	r := Result{Clients: o.Clients, CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime() - self0, PostgresCPU: pg1 - pg0}
	if total1 > total0 {
		r.MachineBusy = float64(busy1-busy0) / float64(total1-total0)
	}
	if m := regexp.MustCompile(`number of failed transactions: ([0-9]+)`).FindStringSubmatch(out.String()); m != nil {
		r.Failed, _ = strconv.Atoi(m[1])
	}
	var last time.Time
	if r.Latencies, last, err = transactionsSince(dir, from); err != nil {
		return Result{}, err
	}
	if len(r.Latencies) == 0 || !last.After(from) {
		return Result{}, fmt.Errorf("no pgbench transactions after its warm-up: %s", out.String())
	}
	r.TPS = float64(len(r.Latencies)) / last.Sub(from).Seconds()
	slices.Sort(r.Latencies)
	return r, nil
}

// settledPostgresCPU reads the cluster's CPU time once pgbench's sessions have ended and been
// reaped (the postmaster is back to its children before the run): a session reaped while
// PostgresCPU scans can be missed once, and pgbench's sessions end a moment after it exits.
// The cluster is otherwise idle, so the total stops growing then.
func settledPostgresCPU(postmaster, children int) time.Duration {
	last, _ := cpustat.PostgresCPU(postmaster)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		now, _ := cpustat.PostgresCPU(postmaster)
		if now-last < time.Millisecond && cpustat.PostgresChildren(postmaster) <= children {
			return max(now, last)
		}
		last = max(last, now)
	}
	return last
}

// transactionsSince reads pgbench's per-transaction logs ("client tx latency_us script
// epoch_s epoch_us", the epoch being when the transaction ended) and returns the latencies
// of the transactions that ended after from, and when the last one ended.
func transactionsSince(dir string, from time.Time) ([]time.Duration, time.Time, error) {
	files, err := filepath.Glob(filepath.Join(dir, "log*"))
	if err != nil || len(files) == 0 {
		return nil, time.Time{}, fmt.Errorf("no pgbench logs in %s (%v)", dir, err)
	}
	var (
		lat  []time.Duration
		last time.Time
	)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, time.Time{}, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 6 {
				continue
			}
			us, err1 := strconv.ParseInt(fields[2], 10, 64)
			sec, err2 := strconv.ParseInt(fields[4], 10, 64)
			usec, err3 := strconv.ParseInt(fields[5], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				continue // a failed transaction ("failed" for its latency), counted by pgbench
			}
			if ended := time.Unix(sec, usec*1000); ended.After(from) {
				lat = append(lat, time.Duration(us)*time.Microsecond)
				if ended.After(last) {
					last = ended
				}
			}
		}
		fh.Close()
	}
	return lat, last, nil
}

// BinDir finds pgbench: flagValue when set, else beside the PostgreSQL server binaries.
func BinDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	return pgdb.BinDir()
}
