// Command benchledger measures the ledger against the database it runs on. In one run, on one
// durable PostgreSQL (a private cluster it starts, or PAYCENTER_DATABASE_URL), it runs:
//
//  1. pgbench with a single-transfer script (2 UPDATE + 2 INSERT per transaction) at
//     -pgbench-clients clients: the baseline, what the database does for hand-written SQL;
//  2. the ledger through its Connect API (the real server in-process, the Go client over
//     HTTP/2) with 1 transfer per RPC at -clients concurrent clients;
//  3. the same with -batch transfers per RPC;
//
// and prints transfers/s, p50/p99 latency and the ratio to the baseline, then proves the
// books with CheckInvariants.
//
//	go run ./server/cmd/benchledger -duration 10s
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
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of each measured run")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured warm-up before each ledger run")
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
	batches   string // group commit statistics
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

	baseline, err := runPgbench(ctx, c, db, binDir, url, postmaster)
	if err != nil {
		return fmt.Errorf("pgbench: %w", err)
	}
	results := []result{baseline}
	printResult(baseline, baseline)

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
	for _, r := range []struct {
		name    string
		clients int
		perRPC  int
	}{
		{"ledger, 1 transfer/RPC", c.clients, 1},
		{fmt.Sprintf("ledger, %d transfers/RPC", c.batch), c.batchClients, c.batch},
	} {
		n0, size0 := batchStats(srv, "paycenter_ledger_batch_size")
		_, secs0 := batchStats(srv, "paycenter_ledger_batch_duration_seconds")
		res, err := driveLedger(ctx, client, accounts, r.name, r.clients, r.perRPC, c.warmup, c.duration, postmaster)
		if err != nil {
			return err
		}
		n1, size1 := batchStats(srv, "paycenter_ledger_batch_size")
		_, secs1 := batchStats(srv, "paycenter_ledger_batch_duration_seconds")
		if n := float64(n1 - n0); n > 0 {
			res.batches = fmt.Sprintf("%.0f transfers and %.1fms per transaction", (size1-size0)/n, (secs1-secs0)/n*1000)
		}
		results = append(results, res)
		printResult(res, baseline)
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
	if b, l := baseline.clientCPU+baseline.postgresCPU, results[1].clientCPU+results[1].postgresCPU; baseline.postgresCPU > 0 && l > 0 {
		fmt.Printf("  CPU per transfer, everything: pgbench %.0fµs, ledger 1/RPC %.0fµs (%.2fx less): on a machine\n"+
			"  whose cores are all busy, throughput follows that ratio.\n", us(b), us(l), float64(b)/float64(l))
	}
	for _, r := range results[1:] {
		fmt.Printf("  group commit, %s: %s\n", r.name, r.batches)
	}
	fmt.Printf("  CheckInvariants: ok=%v, %d accounts, Σ debits posted %d = Σ credits posted %d\n",
		inv.Msg.GetOk(), inv.Msg.GetAccountsChecked(), inv.Msg.GetTotalDebitsPosted(), inv.Msg.GetTotalCreditsPosted())
	fmt.Printf("  targets: 1/RPC %.2fx (≥ 2x: %s), %d/RPC %.2fx (≥ 5x: %s)\n",
		results[1].perSecond/baseline.perSecond, verdict(results[1].perSecond >= 2*baseline.perSecond),
		c.batch, results[2].perSecond/baseline.perSecond, verdict(results[2].perSecond >= 5*baseline.perSecond))
	if !inv.Msg.GetOk() {
		return fmt.Errorf("invariants violated: %v", inv.Msg.GetViolations())
	}
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

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
		Accounts: c.accounts, Duration: c.duration, Postmaster: postmaster})
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

func startServer(ctx context.Context, db *sqlx.DB, logger *slog.Logger) (*running, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyring, err := secret.ParseKeyring("bench:" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		return nil, err
	}
	adminKey := "bench-admin-" + base64.RawURLEncoding.EncodeToString(key[:12])
	reg := metrics.NewRegistry()
	srv, err := server.New(server.Config{DB: db, Logger: logger, Registry: reg, AdminKeys: []string{adminKey}, Keyring: keyring,
		MaxRequestBytes: 4 << 20, ShutdownTimeout: 10 * time.Second})
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
				ts := make([]*paycenterv1.Transfer, perRPC)
				for k := range ts {
					a := rng.IntN(len(accounts))
					b := (a + 1 + rng.IntN(len(accounts)-1)) % len(accounts)
					ts[k] = &paycenterv1.Transfer{TransferId: fmt.Sprintf("b%s-%d-%d-%d", run, g, i, k), DebitAccountId: accounts[a],
						CreditAccountId: accounts[b], Amount: 1 + rng.Int64N(10000), Currency: "CNY", Code: paycenterv1.TransferCode_TRANSFER_CODE_PAYMENT}
				}
				res, err := c.Ledger.CreateTransfers(ctx, connect.NewRequest(&paycenterv1.CreateTransfersRequest{Transfers: ts}))
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
				for _, r := range res.Msg.GetResults() {
					if r.GetError() == paycenterv1.TransferError_TRANSFER_ERROR_UNSPECIFIED {
						myApplied++
					} else {
						myRefused++
					}
				}
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
