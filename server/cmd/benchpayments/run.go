package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	paycenter "github.com/paycenter/paycenter/clients/go"
	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/migrations"
	"github.com/paycenter/paycenter/server/internal/cpustat"
	"github.com/paycenter/paycenter/server/internal/pgbench"
	"github.com/paycenter/paycenter/server/internal/pgdb"
)

// summary is everything the run measured and checked; -out writes it.
type summary struct {
	PostgreSQL  string    `json:"postgresql"`
	Database    string    `json:"database"`
	CPUs        int       `json:"cpus"`
	DurationS   float64   `json:"duration_s"`
	WarmupS     float64   `json:"warmup_s"`
	Concurrency int       `json:"concurrency"`
	Sandboxes   int       `json:"sandboxes"`
	Mix         string    `json:"mix"`
	Baseline    *baseline `json:"baseline,omitempty"`

	Payments struct {
		PerSecond   float64        `json:"per_second"`
		P50ms       float64        `json:"p50_ms"`
		P99ms       float64        `json:"p99_ms"`
		CreateP50ms float64        `json:"create_p50_ms"`
		CreateP99ms float64        `json:"create_p99_ms"`
		InWindow    int            `json:"completed_in_window"`
		Started     int            `json:"started"`
		Paid        int            `json:"paid"`
		Completed   int            `json:"completed"`
		ByKind      map[string]int `json:"by_kind"`
		Failures    map[string]int `json:"failures,omitempty"`
	} `json:"payments"`

	CPU struct {
		ServerMsPerPayment   float64 `json:"server_ms_per_payment"`
		PostgresMsPerPayment float64 `json:"postgres_ms_per_payment,omitempty"`
		LoadMsPerPayment     float64 `json:"load_ms_per_payment"`
		ServerCores          float64 `json:"server_cores"`
		MachineBusyPct       float64 `json:"machine_busy_pct"`
		OtherBusyPct         float64 `json:"other_processes_busy_pct"`
		ServerLifetimeMs     float64 `json:"server_lifetime_ms"`
		Method               string  `json:"method"`
	} `json:"cpu"`
	// RSASignMs is one RSA-2048 signature's CPU time, measured in the same run (rsaSignCPU).
	RSASignMs float64 `json:"rsa_sign_ms"`
	// Units are the server's CPU per Connect RPC and per database round trip, measured in the
	// same run (measureUnitCosts).
	Units           *unitCosts `json:"unit_costs,omitempty"`
	TargetServerMs  float64    `json:"target_server_ms_per_payment"`
	ServerCPUPass   bool       `json:"server_cpu_pass"`
	RatioToBaseline float64    `json:"ratio_to_baseline,omitempty"`

	InvariantsOK bool `json:"invariants_ok"`
	Webhooks     struct {
		Missing     int  `json:"missing"`
		Multiple    int  `json:"multiple"`
		Redelivered int  `json:"redelivered"`
		BadSig      int  `json:"bad_signature"`
		Mismatched  int  `json:"mismatched"`
		Unexpected  int  `json:"unexpected"`
		OK          bool `json:"exactly_once"`
	} `json:"webhooks"`
	SucceededInDB     int      `json:"succeeded_in_db"`
	Undelivered       int      `json:"undelivered_events_in_db"`
	ServerMetrics     []string `json:"server_metrics,omitempty"`
	ServerLogProblems []string `json:"server_log_problems,omitempty"`
}

func run(ctx context.Context, c config) error {
	m, err := parseMix(c.mix)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	binDir, err := pgbench.BinDir(c.pgBin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "benchpayments-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// PostgreSQL runs as the postgres user when we are root: it must traverse the parent.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}

	url := os.Getenv("PAYCENTER_DATABASE_URL")
	where, postmaster := "PAYCENTER_DATABASE_URL", 0
	if url == "" {
		dir := c.dataDir
		if dir == "" {
			dir = filepath.Join(tmp, "data")
		}
		opts := pgdb.ClusterOptions{DataDir: dir, Durable: true, Logger: logger}
		if c.pgStats > 0 {
			opts.Settings = map[string]string{"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all",
				"pg_stat_statements.track_planning": "on"}
		}
		cluster, err := pgdb.StartCluster(ctx, opts)
		if err != nil {
			return err
		}
		defer cluster.Stop()
		if err := cluster.CreateDatabase(ctx, "paycenter_bench", ""); err != nil {
			return err
		}
		url = cluster.URL("paycenter_bench")
		where = "private durable cluster in " + dir
		if postmaster, err = cpustat.PostmasterPID(dir); err != nil {
			fmt.Fprintln(os.Stderr, "benchpayments: PostgreSQL's CPU will not be measured:", err)
		}
	}
	db, err := pgdb.Open(ctx, url, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Apply(ctx, db.DB); err != nil {
		return err
	}
	pgStats := c.pgStats > 0 && postmaster > 0
	if pgStats {
		if _, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
			return fmt.Errorf("pg_stat_statements: %w", err)
		}
	}
	s := &summary{Database: where, CPUs: runtime.NumCPU(), DurationS: c.duration.Seconds(), WarmupS: c.warmup.Seconds(),
		Concurrency: c.concurrency, Sandboxes: c.sandboxes, Mix: m.String(), TargetServerMs: targetCPUPerPayment}
	var fsync, syncCommit string
	_ = db.QueryRowContext(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('server_version')`).Scan(&fsync, &syncCommit, &s.PostgreSQL)
	fmt.Printf("benchpayments: PostgreSQL %s (fsync=%s, synchronous_commit=%s), %s\n", s.PostgreSQL, fsync, syncCommit, where)
	fmt.Printf("  %d CPUs; %s measured after %s warm-up; %d payers over %d apps (one sandbox pair each); mix %s\n",
		s.CPUs, c.duration, c.warmup, c.concurrency, c.sandboxes, s.Mix)
	if fsync != "on" || syncCommit != "on" {
		fmt.Println("  WARNING: the database is not durable; numbers are not comparable")
	}

	if !c.skipBaseline {
		fmt.Printf("  running pgbench for %s...\n", c.duration)
		b, err := runPgbench(ctx, c, db, binDir, url, postmaster)
		if err != nil {
			return fmt.Errorf("pgbench: %w", err)
		}
		s.Baseline = &b
	}

	sign, err := rsaSignCPU()
	if err != nil {
		return fmt.Errorf("RSA baseline: %w", err)
	}
	s.RSASignMs = ms(sign)

	adminKey := "bench-admin-" + randomSecret(18)
	serverURL := url
	if c.serverDBParams != "" {
		sep := "?"
		if strings.Contains(serverURL, "?") {
			sep = "&"
		}
		serverURL += sep + c.serverDBParams
		fmt.Printf("  the server's database URL has %s\n", c.serverDBParams)
	}
	srv, err := startChild(ctx, c, serverURL, adminKey, masterKeyring(), filepath.Join(tmp, "server.log"))
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_, _ = srv.stop()
		}
	}()
	sb, err := startSandboxes(c.sandboxes)
	if err != nil {
		return err
	}
	defer sb.close()
	recv, err := startReceiver()
	if err != nil {
		return err
	}
	defer recv.close()
	admin := paycenter.New(srv.url, adminKey)
	tenants, err := setupTenants(ctx, srv.url, admin, sb, recv)
	if err != nil {
		return fmt.Errorf("set up merchants: %w (server log: %s)", err, tail(srv.logPath, 5))
	}

	fmt.Printf("  running payments for %s + %s...\n", c.warmup, c.duration)
	var (
		before, after   cpustat.Snapshot
		beforeErr       error
		loadProfile     *os.File
		loadProfileErr  error
		profilingServer = c.cpuProfile != ""
		topStatements   []string
	)
	w := window{
		start: func() {
			if pgStats {
				_, _ = db.ExecContext(ctx, `SELECT pg_stat_statements_reset()`)
			}
			before, beforeErr = cpustat.TakeSnapshot(srv.pid(), postmaster)
			if profilingServer {
				srv.signal(syscall.SIGUSR1)
			}
			if c.loadCPUProfile != "" {
				if loadProfile, loadProfileErr = os.Create(c.loadCPUProfile); loadProfileErr == nil {
					loadProfileErr = pprof.StartCPUProfile(loadProfile)
				}
			}
		},
		end: func() {
			after, _ = cpustat.TakeSnapshot(srv.pid(), postmaster)
			if pgStats {
				topStatements = readTopStatements(ctx, db, c.pgStats)
			}
			if profilingServer {
				srv.signal(syscall.SIGUSR2)
			}
			if loadProfile != nil {
				pprof.StopCPUProfile()
				loadProfile.Close()
			}
		},
	}
	res := drive(ctx, c, m, tenants, recv, w)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if beforeErr != nil {
		return beforeErr
	}
	if loadProfileErr != nil {
		fmt.Fprintln(os.Stderr, "benchpayments: load CPU profile:", loadProfileErr)
	}
	// A redelivery would come within the dispatcher's poll interval: give it a moment.
	time.Sleep(time.Second)
	if u, err := measureUnitCosts(ctx, srv.pid(), srv.url, 4000, 8); err != nil {
		fmt.Fprintln(os.Stderr, "benchpayments: unit costs:", err)
	} else {
		s.Units = &u
	}

	p := &s.Payments
	p.InWindow, p.Started, p.Paid, p.Completed = res.inWindow, res.started, res.paid, res.completed
	p.ByKind, p.Failures = res.byKind, res.failures
	p.PerSecond = float64(res.inWindow) / c.duration.Seconds()
	p.P50ms, p.P99ms = ms(percentile(res.latency, 0.50)), ms(percentile(res.latency, 0.99))
	p.CreateP50ms, p.CreateP99ms = ms(percentile(res.createLatency, 0.50)), ms(percentile(res.createLatency, 0.99))

	wall := after.At.Sub(before.At)
	s.CPU.Method = "server: utime+stime of the server process (/proc/<pid>/stat) across the window; " +
		"postgres: same over the postmaster, its children and reaped children; load: getrusage(RUSAGE_SELF) of this process"
	if n := float64(res.inWindow); n > 0 {
		s.CPU.ServerMsPerPayment = ms(after.Server-before.Server) / n
		s.CPU.LoadMsPerPayment = ms(after.Load-before.Load) / n
		if postmaster > 0 && before.PostgresErr == nil && after.PostgresErr == nil {
			s.CPU.PostgresMsPerPayment = ms(after.Postgres-before.Postgres) / n
		}
	}
	if wall > 0 {
		s.CPU.ServerCores = float64(after.Server-before.Server) / float64(wall)
	}
	if d := after.Total - before.Total; d > 0 {
		s.CPU.MachineBusyPct = 100 * float64(after.MachineBusy-before.MachineBusy) / float64(d)
		// What neither the server, PostgreSQL nor this process used: other work on a shared box.
		ours := (after.Server - before.Server) + (after.Postgres - before.Postgres) + (after.Load - before.Load)
		s.CPU.OtherBusyPct = max(0, s.CPU.MachineBusyPct-100*float64(ours)/float64(d))
	}
	s.ServerCPUPass = res.inWindow > 0 && s.CPU.ServerMsPerPayment <= targetCPUPerPayment
	if s.Baseline != nil && s.Baseline.TPS > 0 {
		s.RatioToBaseline = p.PerSecond / s.Baseline.TPS
	}

	// The checks.
	inv, err := admin.Ledger.CheckInvariants(ctx, connect.NewRequest(&paycenterv1.CheckInvariantsRequest{}))
	if err != nil {
		return fmt.Errorf("CheckInvariants: %w", err)
	}
	s.InvariantsOK = inv.Msg.GetOk()
	wh := &s.Webhooks
	wh.Missing, wh.Multiple, wh.Redelivered = recv.exactlyOnce(res.paidTradeNos)
	recv.mu.Lock()
	wh.BadSig, wh.Mismatched, wh.Unexpected = recv.badSig, recv.mismatched, recv.unexpected
	recv.mu.Unlock()
	wh.OK = wh.Missing == 0 && wh.Multiple == 0 && wh.Redelivered == 0 && wh.BadSig == 0 && wh.Mismatched == 0 && wh.Unexpected == 0
	appIDs := make([]string, len(tenants))
	for i, t := range tenants {
		appIDs[i] = t.appID
	}
	if err := db.GetContext(ctx, &s.SucceededInDB, `SELECT count(*) FROM payments WHERE app_id = ANY($1) AND status = 'SUCCEEDED'`, pq.Array(appIDs)); err != nil {
		return fmt.Errorf("count payments: %w", err)
	}
	if err := db.GetContext(ctx, &s.Undelivered, `SELECT count(*) FROM webhook_events WHERE app_id = ANY($1) AND status <> 'DELIVERED'`, pq.Array(appIDs)); err != nil {
		return fmt.Errorf("count webhook events: %w", err)
	}
	s.ServerMetrics = scrapeMetrics(ctx, srv.url, "paycenter_channel_callbacks_total", "paycenter_webhook_attempts_total")

	lifetime, stopErr := srv.stop()
	stopped = true
	s.CPU.ServerLifetimeMs = ms(lifetime)
	if stopErr != nil {
		fmt.Fprintln(os.Stderr, "benchpayments:", stopErr)
	}

	s.ServerLogProblems = logProblems(srv.logPath, 5)
	printSummary(os.Stdout, s)
	if len(topStatements) > 0 {
		fmt.Printf("\n  top statements of the window (pg_stat_statements, wall time incl. lock waits, by exec+plan; %d payments):\n", res.inWindow)
		for _, line := range topStatements {
			fmt.Println("   ", line)
		}
	}
	if c.out != "" {
		if err := writeSummary(c.out, s); err != nil {
			return err
		}
	}
	var problems []string
	if !s.InvariantsOK {
		problems = append(problems, fmt.Sprintf("ledger invariants violated: %v", inv.Msg.GetViolations()))
	}
	if !wh.OK {
		problems = append(problems, "webhooks were not exactly once per payment")
	}
	if s.SucceededInDB != res.paid {
		problems = append(problems, fmt.Sprintf("%d payments paid at the sandbox but %d SUCCEEDED in the database", res.paid, s.SucceededInDB))
	}
	if len(res.failures) > 0 {
		problems = append(problems, "some payments failed (see failures)")
	}
	if res.inWindow == 0 {
		problems = append(problems, "no payment completed in the window")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// readTopStatements lists the n statements that took the most time since the last reset.
func readTopStatements(ctx context.Context, db *sqlx.DB, n int) []string {
	rows, err := db.QueryContext(ctx, `SELECT calls, total_exec_time, total_plan_time, rows, regexp_replace(query, '\s+', ' ', 'g')
		FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time + total_plan_time DESC LIMIT $1`, n)
	if err != nil {
		return []string{"pg_stat_statements: " + err.Error()}
	}
	defer rows.Close()
	var out []string
	var sumCalls int64
	var sumExec, sumPlan float64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0), coalesce(sum(total_plan_time), 0)
		FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'`).Scan(&sumCalls, &sumExec, &sumPlan); err == nil {
		out = append(out, fmt.Sprintf("all statements: %d calls, exec %.0f ms, plan %.0f ms", sumCalls, sumExec, sumPlan))
	}
	for rows.Next() {
		var (
			calls, nrows int64
			total, plan  float64
			query        string
		)
		if err := rows.Scan(&calls, &total, &plan, &nrows, &query); err != nil {
			return append(out, err.Error())
		}
		if len(query) > 160 {
			query = query[:160] + "…"
		}
		c := float64(max(calls, 1))
		out = append(out, fmt.Sprintf("exec %7.0f ms plan %6.0f ms %7d calls %7.3f+%.3f ms/call %7d rows  %s", total, plan, calls, total/c, plan/c, nrows, query))
	}
	return out
}

// logProblems returns up to n WARN or ERROR lines of the server's log, and how many more.
func logProblems(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	more := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		if len(out) < n {
			out = append(out, line)
		} else {
			more++
		}
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("... and %d more", more))
	}
	return out
}

// scrapeMetrics returns the server's non-zero samples of the named metrics.
func scrapeMetrics(ctx context.Context, url string, names ...string) []string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return nil
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, n := range names {
			if (strings.HasPrefix(line, n+"{") || strings.HasPrefix(line, n+" ")) && !strings.HasSuffix(line, " 0") {
				out = append(out, line)
			}
		}
	}
	return out
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func printSummary(out io.Writer, s *summary) {
	p := s.Payments
	fmt.Fprintln(out)
	fmt.Fprintf(out, "  %-44s %7s %10s %10s %10s\n", "run", "clients", "per s", "p50", "p99")
	if b := s.Baseline; b != nil {
		failed := ""
		if b.Failed > 0 {
			failed = fmt.Sprintf("  (%d failed)", b.Failed)
		}
		fmt.Fprintf(out, "  %-44s %7d %10.1f %8.2fms %8.2fms%s\n", "pgbench baseline (2 UPDATE + 2 INSERT)", b.Clients, b.TPS, b.P50ms, b.P99ms, failed)
	}
	fmt.Fprintf(out, "  %-44s %7d %10.1f %8.2fms %8.2fms\n", "payments: create → pay → callback → webhook", s.Concurrency, p.PerSecond, p.P50ms, p.P99ms)
	fmt.Fprintf(out, "  %-44s %7s %10s %8.2fms %8.2fms\n", "  of which CreatePayment (incl. prepay)", "", "", p.CreateP50ms, p.CreateP99ms)
	fmt.Fprintln(out)
	fmt.Fprintf(out, "  %-36s %8.2f ms   target ≤ %.1f ms: %s\n", "server CPU per payment", s.CPU.ServerMsPerPayment, s.TargetServerMs, verdict(s.ServerCPUPass))
	if s.RSASignMs > 0 {
		fmt.Fprintf(out, "  %-36s %8.2f ms   (measured in this run; every prepay needs one: server CPU per payment = %.1f of them)\n",
			"one RSA-2048 signature", s.RSASignMs, s.CPU.ServerMsPerPayment/s.RSASignMs)
	}
	if u := s.Units; u != nil {
		fmt.Fprintf(out, "  %-36s %8.3f ms   (a health check, %d calls from %d callers; a payment makes 4 HTTP exchanges)\n",
			"one Connect RPC, server CPU", u.RPCus/1000, u.Calls, u.Concurrency)
		fmt.Fprintf(out, "  %-36s %8.3f ms   (the health check's database ping, less the above; a payment makes about 12)\n",
			"one database round trip, server CPU", u.RoundTripUs/1000)
	}
	if s.CPU.PostgresMsPerPayment > 0 {
		extra := ""
		if s.Baseline != nil && s.Baseline.PostgresCPU > 0 {
			extra = fmt.Sprintf("   (pgbench: %.2f ms per transfer)", s.Baseline.PostgresCPU)
		}
		fmt.Fprintf(out, "  %-36s %8.2f ms%s\n", "PostgreSQL CPU per payment", s.CPU.PostgresMsPerPayment, extra)
	} else {
		fmt.Fprintf(out, "  %-36s %8s\n", "PostgreSQL CPU per payment", "n/a (not a private cluster)")
	}
	fmt.Fprintf(out, "  %-36s %8.2f ms   (sandboxes' signing, payers, receiver: not the server)\n", "load process CPU per payment", s.CPU.LoadMsPerPayment)
	fmt.Fprintf(out, "  %-36s %8.2f cores of %d; machine %.0f%% busy, %.0f%% points of it by other processes\n", "server CPU in the window",
		s.CPU.ServerCores, s.CPUs, s.CPU.MachineBusyPct, s.CPU.OtherBusyPct)
	if s.RatioToBaseline > 0 {
		fmt.Fprintf(out, "  %-36s %8.3fx\n", "payments/s ÷ baseline tps", s.RatioToBaseline)
	}
	fmt.Fprintf(out, "  %-36s %d in the window; %d started, %d paid, %d webhooks received in all\n", "payments", p.InWindow, p.Started, p.Paid, p.Completed)
	if len(p.ByKind) > 1 {
		var parts []string
		for _, k := range sortedKeys(p.ByKind) {
			parts = append(parts, fmt.Sprintf("%s %d", k, p.ByKind[k]))
		}
		fmt.Fprintf(out, "  %-36s %s\n", "  by channel/method", strings.Join(parts, ", "))
	}
	for _, k := range sortedKeys(p.Failures) {
		fmt.Fprintf(out, "  %-36s %d × %s\n", "FAILED", p.Failures[k], k)
	}
	fmt.Fprintf(out, "  %-36s %s\n", "CheckInvariants", okText(s.InvariantsOK))
	wh := s.Webhooks
	fmt.Fprintf(out, "  %-36s %s (missing %d, several %d, redelivered %d, bad signature %d, wrong data %d, unexpected %d)\n",
		"one payment.succeeded per payment", okText(wh.OK), wh.Missing, wh.Multiple, wh.Redelivered, wh.BadSig, wh.Mismatched, wh.Unexpected)
	fmt.Fprintf(out, "  %-36s %d SUCCEEDED payments, %d undelivered events\n", "database", s.SucceededInDB, s.Undelivered)
	for _, line := range s.ServerMetrics {
		fmt.Fprintf(out, "    %s\n", line)
	}
	for _, line := range s.ServerLogProblems {
		fmt.Fprintf(out, "  server log: %s\n", line)
	}
	fmt.Fprintf(out, "  CPU method: %s; server CPU over its whole life %.0f ms.\n", s.CPU.Method, s.CPU.ServerLifetimeMs)
}

func okText(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

// writeSummary writes s as JSON (a .json path) or as markdown.
func writeSummary(path string, s *summary) error {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(b, '\n'), 0o644)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## make bench-payments\n\nPostgreSQL %s, %s; %d CPUs; %gs measured after %gs warm-up; %d payers, %d apps, mix `%s`.\n\n",
		s.PostgreSQL, s.Database, s.CPUs, s.DurationS, s.WarmupS, s.Concurrency, s.Sandboxes, s.Mix)
	b.WriteString("| run | clients | per s | p50 | p99 |\n|---|---:|---:|---:|---:|\n")
	if bl := s.Baseline; bl != nil {
		fmt.Fprintf(&b, "| pgbench baseline (2 UPDATE + 2 INSERT) | %d | %.1f | %.2f ms | %.2f ms |\n", bl.Clients, bl.TPS, bl.P50ms, bl.P99ms)
	}
	fmt.Fprintf(&b, "| payments: create → pay → callback → webhook | %d | %.1f | %.2f ms | %.2f ms |\n\n", s.Concurrency, s.Payments.PerSecond, s.Payments.P50ms, s.Payments.P99ms)
	b.WriteString("| measure | value |\n|---|---:|\n")
	fmt.Fprintf(&b, "| server CPU per payment (target ≤ %.1f ms) | %.2f ms %s |\n", s.TargetServerMs, s.CPU.ServerMsPerPayment, verdict(s.ServerCPUPass))
	if s.RSASignMs > 0 {
		fmt.Fprintf(&b, "| one RSA-2048 signature (every prepay needs one) | %.2f ms |\n", s.RSASignMs)
	}
	if u := s.Units; u != nil {
		fmt.Fprintf(&b, "| one Connect RPC, server CPU (health check) | %.3f ms |\n| one database round trip, server CPU | %.3f ms |\n", u.RPCus/1000, u.RoundTripUs/1000)
	}
	if s.CPU.PostgresMsPerPayment > 0 {
		fmt.Fprintf(&b, "| PostgreSQL CPU per payment | %.2f ms |\n", s.CPU.PostgresMsPerPayment)
	}
	fmt.Fprintf(&b, "| load process CPU per payment | %.2f ms |\n", s.CPU.LoadMsPerPayment)
	if s.RatioToBaseline > 0 {
		fmt.Fprintf(&b, "| payments/s ÷ baseline tps | %.3f |\n", s.RatioToBaseline)
	}
	fmt.Fprintf(&b, "| CheckInvariants | %s |\n| one payment.succeeded per payment | %s |\n", okText(s.InvariantsOK), okText(s.Webhooks.OK))
	fmt.Fprintf(&b, "\nCPU method: %s.\n", s.CPU.Method)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
