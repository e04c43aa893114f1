// Command benchledger measures the ledger against the database it runs on. In one run, on one
// durable PostgreSQL (a private cluster it starts, or PAYCENTER_DATABASE_URL), it runs
// -rounds rounds of:
//
//  1. pgbench with a single-transfer script (2 UPDATE + 2 INSERT per transaction) at
//     -pgbench-clients clients: the baseline, what the database does for hand-written SQL;
//  2. the ledger through its Connect API (the real server in-process, the Go client over
//     HTTP/2) with 1 transfer per RPC at -clients concurrent clients;
//  3. the same with -batch transfers per RPC;
//  4. the same clients calling an RPC the server answers without the database: the ceiling
//     at one transfer per RPC, whatever the ledger did;
//
// and prints transfers/s, p50/p99 latency and the ratio to the round's baseline, then the
// median ratio over the rounds, and proves the books with CheckInvariants. Rounds, because on
// a shared machine the baseline alone moves by a third between runs minutes apart: each ratio
// compares runs seconds apart, and the median discards a round that a neighbour disturbed.
//
//	go run ./server/cmd/benchledger -duration 10s -rounds 3
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	paycenter "github.com/paycenter/paycenter/clients/go"
	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/migrations"
	"github.com/paycenter/paycenter/server/internal/cpustat"
	"github.com/paycenter/paycenter/server/internal/metrics"
	"github.com/paycenter/paycenter/server/internal/pgbench"
	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/secret"
	"github.com/paycenter/paycenter/server/internal/server"
)

type config struct {
	duration, warmup time.Duration
	rounds           int
	pgbenchClients   int
	clients          int
	batchClients     int
	batch            int
	accounts         int
	dataDir          string
	pgBin            string
	poolSize         int
	cpuprofile       string
	memprofile       string
}

func main() {
	server.TuneGC() // the server runs in this process, as in production (the load with it)
	var c config
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of each measured run")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds of baseline, 1 transfer/RPC, -batch transfers/RPC and the ceiling; the verdicts use the median ratio")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "unmeasured warm-up before each run, pgbench's included (its new sessions need about that to reach their steady speed)")
	flag.IntVar(&c.pgbenchClients, "pgbench-clients", 32, "pgbench clients (baseline)")
	flag.IntVar(&c.clients, "clients", 64, "concurrent clients sending 1 transfer per RPC")
	flag.IntVar(&c.batchClients, "batch-clients", 64, "concurrent clients sending -batch transfers per RPC")
	flag.IntVar(&c.batch, "batch", 100, "transfers per RPC in the batched run")
	flag.IntVar(&c.accounts, "accounts", 1000, "accounts transfers are spread over (in both the baseline and the ledger)")
	flag.StringVar(&c.dataDir, "data-dir", "", "data directory of the private cluster (default: a fresh temporary one, removed afterwards)")
	flag.StringVar(&c.pgBin, "pg-bin", "", "directory of pgbench and the PostgreSQL server binaries (default: the newest /usr/lib/postgresql/N/bin)")
	flag.IntVar(&c.poolSize, "pool", 20, "database connections of the paycenter server")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the ledger runs to this file")
	flag.StringVar(&c.memprofile, "memprofile", "", "write an allocation profile of the ledger runs to this file")
	flag.Parse()
	c.cpuprofile = *cpuprofile
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "benchledger:", err)
		os.Exit(1)
	}
}

// result is one measured run.
type result struct {
	name      string
	clients   int
	perSecond float64 // transfers per second
	p50, p99  time.Duration
	failed    int
	// CPU per transfer of the client and server (pgbench, or this process) and of PostgreSQL
	// (zero when the cluster is not ours to watch).
	clientCPU, postgresCPU time.Duration
	machineBusy            float64 // share of the machine's CPU time busy (anyone's)
}

func run(ctx context.Context, c config) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	binDir, err := pgbench.BinDir(c.pgBin)
	if err != nil {
		return err
	}
	url := os.Getenv("PAYCENTER_DATABASE_URL")
	where := url
	postmaster := 0 // the private cluster's, whose CPU time we read
	if url == "" {
		dir := c.dataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "benchledger-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			// PostgreSQL runs as the postgres user when we are root: it must traverse tmp.
			if err := os.Chmod(tmp, 0o755); err != nil {
				return err
			}
			dir = filepath.Join(tmp, "data")
		}
		cluster, err := pgdb.StartCluster(ctx, pgdb.ClusterOptions{DataDir: dir, Durable: true, Logger: logger})
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
			return err
		}
	}
	db, err := pgdb.Open(ctx, url, c.poolSize)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Apply(ctx, db.DB); err != nil {
		return err
	}
	var fsync, syncCommit, version string
	_ = db.QueryRowContext(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('server_version')`).Scan(&fsync, &syncCommit, &version)
	fmt.Printf("benchledger: PostgreSQL %s (fsync=%s, synchronous_commit=%s), %s\n", version, fsync, syncCommit, where)
	fmt.Printf("  %d accounts, %s per run, %d CPUs\n\n", c.accounts, c.duration, runtime.NumCPU())
	if fsync != "on" || syncCommit != "on" {
		fmt.Println("  WARNING: the database is not durable; numbers are not comparable")
	}

	srv, err := startServer(ctx, db, logger)
	if err != nil {
		return err
	}
	defer srv.stop()
	// Responses are small and local: the benchmark's client does not ask for compression.
	client := paycenter.New(srv.url, srv.adminKey, paycenter.WithClientOptions(connect.WithAcceptCompression("gzip", nil, nil)))
	accounts, err := setupAccounts(ctx, client, c.accounts)
	if err != nil {
		return fmt.Errorf("set up accounts: %w", err)
	}
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if c.rounds < 1 {
		c.rounds = 1
	}
	runs := []struct {
		name string
		run  func(name string) (result, error)
	}{
		{"ledger, 1 transfer/RPC", func(name string) (result, error) {
			return driveLedger(ctx, client, accounts, name, c.clients, 1, c.warmup, c.duration, postmaster)
		}},
		{fmt.Sprintf("ledger, %d transfers/RPC", c.batch), func(name string) (result, error) {
			return driveLedger(ctx, client, accounts, name, c.batchClients, c.batch, c.warmup, c.duration, postmaster)
		}},
		{"RPCs answered without the database", func(name string) (result, error) {
			return driveRPCs(ctx, client, name, c.clients, c.warmup, c.duration, postmaster)
		}},
	}
	// rounds[i] holds round i's baseline, then its runs in the order of runs; batches sums
	// each run's group-commit transactions over the rounds.
	rounds := make([][]result, 0, c.rounds)
	batches := make([]struct{ n, size, secs, skipped float64 }, len(runs))
	for round := range c.rounds {
		fmt.Printf("  round %d of %d\n", round+1, c.rounds)
		baseline, err := runPgbench(ctx, c, db, binDir, url, postmaster)
		if err != nil {
			return fmt.Errorf("pgbench: %w", err)
		}
		printResult(baseline, baseline)
		results := []result{baseline}
		for i, r := range runs {
			if err := settle(ctx, db); err != nil {
				return err
			}
			n0, size0 := batchStats(srv, "paycenter_ledger_batch_size")
			_, secs0 := batchStats(srv, "paycenter_ledger_batch_duration_seconds")
			skipped0 := skippedReads(srv)
			res, err := r.run(r.name)
			if err != nil {
				return err
			}
			n1, size1 := batchStats(srv, "paycenter_ledger_batch_size")
			_, secs1 := batchStats(srv, "paycenter_ledger_batch_duration_seconds")
			batches[i].n += float64(n1 - n0)
			batches[i].size += size1 - size0
			batches[i].secs += secs1 - secs0
			batches[i].skipped += skippedReads(srv) - skipped0
			results = append(results, res)
			printResult(res, baseline)
		}
		rounds = append(rounds, results)
	}

	if c.memprofile != "" {
		f, err := os.Create(c.memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	inv, err := client.Ledger.CheckInvariants(ctx, connect.NewRequest(&paycenterv1.CheckInvariantsRequest{}))
	if err != nil {
		return fmt.Errorf("CheckInvariants: %w", err)
	}
	fmt.Println()
	fmt.Println("  app CPU: the client and server's CPU per transfer (pgbench's, for the baseline); pg CPU: PostgreSQL's;\n" +
		"  busy: the machine's CPU busy during the run (everyone's).")
	var pgbenchCPU, ledgerCPU time.Duration
	for _, r := range rounds {
		pgbenchCPU += (r[0].clientCPU + r[0].postgresCPU) / time.Duration(len(rounds))
		ledgerCPU += (r[1].clientCPU + r[1].postgresCPU) / time.Duration(len(rounds))
	}
	if rounds[0][0].postgresCPU > 0 && ledgerCPU > 0 {
		fmt.Printf("  CPU per transfer, everything (mean of the rounds): pgbench %.0fµs, ledger 1/RPC %.0fµs (%.2fx less):\n"+
			"  on a machine whose cores are all busy, throughput follows that ratio.\n", us(pgbenchCPU), us(ledgerCPU), float64(pgbenchCPU)/float64(ledgerCPU))
	}
	for i, r := range runs {
		if b := batches[i]; b.n > 0 {
			fmt.Printf("  group commit, %s: %.0f transfers and %.1fms per transaction, %.0f%% without a read\n",
				r.name, b.size/b.n, b.secs/b.n*1000, 100*b.skipped/b.n)
		}
	}
	fmt.Printf("  CheckInvariants: ok=%v, %d accounts, Σ debits posted %d = Σ credits posted %d\n",
		inv.Msg.GetOk(), inv.Msg.GetAccountsChecked(), inv.Msg.GetTotalDebitsPosted(), inv.Msg.GetTotalCreditsPosted())
	one, many := medianRatio(rounds, 1), medianRatio(rounds, 2)
	fmt.Printf("  ratios by round: 1/RPC %s; %d/RPC %s; RPCs answered without the database %s\n",
		ratios(rounds, 1), c.batch, ratios(rounds, 2), ratios(rounds, 3))
	fmt.Printf("  ceiling: with these %d clients, client and server, RPCs that do nothing run at a median %.2fx\n"+
		"  the baseline; at 1 transfer per RPC no ledger can do more.\n", c.clients, medianRatio(rounds, 3))
	fmt.Printf("  targets (median ratio of %d rounds): 1/RPC %.2fx (≥ 2x: %s), %d/RPC %.2fx (≥ 5x: %s)\n",
		len(rounds), one, verdict(one >= 2), c.batch, many, verdict(many >= 5))
	if !inv.Msg.GetOk() {
		return fmt.Errorf("invariants violated: %v", inv.Msg.GetViolations())
	}
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// ratio is run i of a round against the round's baseline.
func ratio(round []result, i int) float64 { return round[i].perSecond / round[0].perSecond }

func ratios(rounds [][]result, i int) string {
	out := make([]string, len(rounds))
	for r, round := range rounds {
		out[r] = fmt.Sprintf("%.2fx", ratio(round, i))
	}
	return strings.Join(out, " ")
}

// medianRatio is the median over the rounds of run i's ratio (the mean of the middle two
// for an even number of rounds).
func medianRatio(rounds [][]result, i int) float64 {
	rs := make([]float64, len(rounds))
	for r, round := range rounds {
		rs[r] = ratio(round, i)
	}
	slices.Sort(rs)
	if n := len(rs); n%2 == 0 {
		return (rs[n/2-1] + rs[n/2]) / 2
	}
	return rs[len(rs)/2]
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func printResult(r, baseline result) {
	if r.name == baseline.name {
		fmt.Printf("  %-40s %8s %12s %10s %10s %8s %9s %8s %5s\n", "run", "clients", "transfers/s", "p50", "p99", "ratio", "app CPU", "pg CPU", "busy")
	}
	extra := ""
	if r.failed > 0 {
		extra = fmt.Sprintf("  (%d failed)", r.failed)
	}
	pg := "-"
	if r.postgresCPU > 0 {
		pg = fmt.Sprintf("%.0f", us(r.postgresCPU))
	}
	fmt.Printf("  %-40s %8d %12.0f %10s %10s %7.2fx %7.0fµs %6sµs %4.0f%%%s\n", r.name, r.clients, r.perSecond,
		r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.perSecond/baseline.perSecond,
		us(r.clientCPU), pg, 100*r.machineBusy, extra)
}

// --- baseline ---------------------------------------------------------------------------

func runPgbench(ctx context.Context, c config, db *sqlx.DB, binDir, url string, postmaster int) (result, error) {
	r, err := pgbench.Run(ctx, db, pgbench.Options{BinDir: binDir, URL: url, Clients: c.pgbenchClients,
		Accounts: c.accounts, Warmup: c.warmup, Duration: c.duration, Postmaster: postmaster})
	if err != nil {
		return result{}, err
	}
	res := result{name: "pgbench baseline (2 UPDATE + 2 INSERT)", clients: c.pgbenchClients, perSecond: r.TPS,
		p50: r.Percentile(0.50), p99: r.Percentile(0.99), failed: r.Failed, machineBusy: r.MachineBusy}
	if n := time.Duration(len(r.Latencies)); n > 0 {
		res.clientCPU, res.postgresCPU = r.CPU/n, r.PostgresCPU/n
	}
	return res, nil
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

// --- the ledger -------------------------------------------------------------------------

type running struct {
	url, adminKey string
	registry      *prometheus.Registry
	stop          func()
}

// batchStats reads a ledger histogram: samples and their sum.
func batchStats(r *running, name string) (count uint64, sum float64) {
	mfs, _ := r.registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	return 0, 0
}

// settle starts a ledger run from a database at rest, as pgbench.Run starts the baseline's
// (new tables, then CHECKPOINT): the ledger's tables keep every earlier run's transfers, and
// the vacuum and checkpoint those runs call for must not land in a measured one.
func settle(ctx context.Context, db *sqlx.DB) error {
	for _, q := range []string{`VACUUM (ANALYZE) ledger_transfers, ledger_accounts`, `CHECKPOINT`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("settle the database: %w", err)
		}
	}
	return nil
}

// skippedReads counts the group-commit batches that skipped their read.
func skippedReads(r *running) float64 {
	mfs, _ := r.registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "paycenter_ledger_batch_reads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "read" && l.GetValue() == "skipped" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func startServer(ctx context.Context, db *sqlx.DB, logger *slog.Logger) (*running, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyring, err := secret.ParseKeyring("bench:" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		return nil, err
	}
	adminKey := "bench-admin-" + base64.RawURLEncoding.EncodeToString(key[:12])
	reg := metrics.NewRegistry()
	// The benchmark proves the books itself, after its runs: a server's periodic check (its
	// first a minute after start) would scan every transfer in the middle of a measured run.
	srv, err := server.New(server.Config{DB: db, Logger: logger, Registry: reg, AdminKeys: []string{adminKey}, Keyring: keyring,
		MaxRequestBytes: 4 << 20, ShutdownTimeout: 10 * time.Second, InvariantInterval: 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return &running{url: "http://" + ln.Addr().String(), adminKey: adminKey, registry: reg,
		stop: func() { cancel(); <-done }}, nil
}

// setupAccounts opens n accounts that may not go negative (two per merchant) and funds
// each generously, so that random transfers between them are never refused.
func setupAccounts(ctx context.Context, c *paycenter.Client, n int) ([]string, error) {
	funding, err := c.Ledger.CreateAccount(ctx, connect.NewRequest(&paycenterv1.CreateAccountRequest{
		Code: paycenterv1.AccountCode_ACCOUNT_CODE_EXTERNAL_FUNDING, Currency: "CNY"}))
	if err != nil {
		return nil, err
	}
	accounts := make([]string, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	merchants := (n + 1) / 2
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := w; m < merchants; m += 8 {
				res, err := c.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: fmt.Sprintf("Bench merchant %d", m)}))
				if err == nil {
					for k, code := range []paycenterv1.AccountCode{paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_AVAILABLE, paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_PENDING_SETTLEMENT} {
						if 2*m+k >= n {
							break
						}
						var a *connect.Response[paycenterv1.CreateAccountResponse]
						a, err = c.Ledger.CreateAccount(ctx, connect.NewRequest(&paycenterv1.CreateAccountRequest{
							MerchantId: res.Msg.GetMerchant().GetMerchantId(), Code: code, Currency: "CNY", DebitsMustNotExceedCredits: true}))
						if err != nil {
							break
						}
						accounts[2*m+k] = a.Msg.GetAccount().GetAccountId()
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	for start := 0; start < n; start += 1000 {
		var ts []*paycenterv1.Transfer
		for i := start; i < min(n, start+1000); i++ {
			ts = append(ts, &paycenterv1.Transfer{TransferId: fmt.Sprintf("bench-fund-%d-%s", i, accounts[i]), DebitAccountId: funding.Msg.GetAccount().GetAccountId(),
				CreditAccountId: accounts[i], Amount: 1 << 50, Currency: "CNY", Code: paycenterv1.TransferCode_TRANSFER_CODE_RECHARGE})
		}
		res, err := c.Ledger.CreateTransfers(ctx, connect.NewRequest(&paycenterv1.CreateTransfersRequest{Transfers: ts}))
		if err != nil {
			return nil, err
		}
		for _, r := range res.Msg.GetResults() {
			if r.GetError() != paycenterv1.TransferError_TRANSFER_ERROR_UNSPECIFIED {
				return nil, fmt.Errorf("funding refused: %v %s", r.GetError(), r.GetMessage())
			}
		}
	}
	return accounts, nil
}

// driveLedger runs clients goroutines that each send perRPC random transfers per
// CreateTransfers call, warm-up first, then for d.
func driveLedger(ctx context.Context, c *paycenter.Client, accounts []string, name string, clients, perRPC int, warmup, d time.Duration, postmaster int) (result, error) {
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	return drive(ctx, name, clients, warmup, d, postmaster, func(g, i int, rng *mrand.Rand) (applied, refused int, err error) {
		ts := make([]*paycenterv1.Transfer, perRPC)
		for k := range ts {
			a := rng.IntN(len(accounts))
			b := (a + 1 + rng.IntN(len(accounts)-1)) % len(accounts)
			ts[k] = &paycenterv1.Transfer{TransferId: fmt.Sprintf("b%s-%d-%d-%d", run, g, i, k), DebitAccountId: accounts[a],
				CreditAccountId: accounts[b], Amount: 1 + rng.Int64N(10000), Currency: "CNY", Code: paycenterv1.TransferCode_TRANSFER_CODE_PAYMENT}
		}
		res, err := c.Ledger.CreateTransfers(ctx, connect.NewRequest(&paycenterv1.CreateTransfersRequest{Transfers: ts}))
		if err != nil {
			return 0, 0, err
		}
		for _, r := range res.Msg.GetResults() {
			if r.GetError() == paycenterv1.TransferError_TRANSFER_ERROR_UNSPECIFIED {
				applied++
			} else {
				refused++
			}
		}
		return applied, refused, nil
	})
}

// driveRPCs measures the ceiling under any RPC on this machine: the same clients, client and
// server calling an RPC the server answers without the database or the ledger (GetAccount
// with no id: INVALID_ARGUMENT). No ledger, however fast, does more transfers per second at
// one transfer per RPC.
func driveRPCs(ctx context.Context, c *paycenter.Client, name string, clients int, warmup, d time.Duration, postmaster int) (result, error) {
	return drive(ctx, name, clients, warmup, d, postmaster, func(int, int, *mrand.Rand) (int, int, error) {
		_, err := c.Ledger.GetAccount(ctx, connect.NewRequest(&paycenterv1.GetAccountRequest{}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			return 0, 0, fmt.Errorf("GetAccount with no id: want INVALID_ARGUMENT, got %v", err)
		}
		return 1, 0, nil
	})
}

// drive runs clients closed loops of call for warmup + d and measures the window: call's
// applied count per second, its latency, and CPU time per applied count.
func drive(ctx context.Context, name string, clients int, warmup, d time.Duration, postmaster int, call func(g, i int, rng *mrand.Rand) (applied, refused int, err error)) (result, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
		applied  int
		refused  int
		firstErr error
	)
	start := time.Now()
	measureFrom, stopAt := start.Add(warmup), start.Add(warmup+d)
	// CPU time over the measured window: this process (clients and server) and PostgreSQL.
	var self0, self1, pg0, pg1, busy0, busy1, total0, total1 time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(time.Until(measureFrom))
		self0 = cpustat.SelfCPU()
		pg0, _ = cpustat.PostgresCPU(postmaster)
		busy0, total0 = cpustat.MachineCPU()
		time.Sleep(time.Until(stopAt))
		self1 = cpustat.SelfCPU()
		pg1, _ = cpustat.PostgresCPU(postmaster)
		busy1, total1 = cpustat.MachineCPU()
	}()
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(g), uint64(start.UnixNano())))
			var myLat []time.Duration
			myApplied, myRefused := 0, 0
			for i := 0; ; i++ {
				now := time.Now()
				if now.After(stopAt) {
					break
				}
				a, r, err := call(g, i, rng)
				took := time.Since(now)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				if now.Before(measureFrom) {
					continue
				}
				myLat = append(myLat, took)
				myApplied += a
				myRefused += r
			}
			mu.Lock()
			lat = append(lat, myLat...)
			applied += myApplied
			refused += myRefused
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, fmt.Errorf("%s: %w", name, firstErr)
	}
	res := result{name: name, clients: clients, perSecond: float64(applied) / d.Seconds(),
		p50: percentile(lat, 0.50), p99: percentile(lat, 0.99), failed: refused}
	if applied > 0 {
		res.clientCPU = (self1 - self0) / time.Duration(applied)
		res.postgresCPU = (pg1 - pg0) / time.Duration(applied)
	}
	if total1 > total0 {
		res.machineBusy = float64(busy1-busy0) / float64(total1-total0)
	}
	return res, nil
}

func cmpErr(have, err error) error {
	if have != nil {
		return have
	}
	return err
}
