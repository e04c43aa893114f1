// Command benchpayments measures paycenter's whole payment pipeline against the database it
// runs on. In one run, on one durable PostgreSQL (a private cluster it starts, or
// PAYCENTER_DATABASE_URL), it:
//
//  1. runs pgbench with a single-transfer script (2 UPDATE + 2 INSERT per transaction) at
//     -pgbench-clients clients for -duration: the baseline, what the database does for
//     hand-written SQL;
//  2. starts paycenter's server in a child process of its own (this binary re-executed with
//     the hidden "serve" command), so that the server's CPU time can be read apart from the
//     load generator's;
//  3. in this process, starts the sandbox channels (-sandboxes Alipay + WeChat Pay pairs)
//     and a webhook receiver, creates one merchant and app per pair through the admin API,
//     and runs -concurrency payers that each loop: CreatePayment (Go client, cleartext
//     HTTP/2) → the sandbox payer pays → wait for the app's payment.succeeded webhook
//     (callback verified and applied, ledger booked, outbox delivered);
//  4. prints payments/s, p50/p99 end-to-end latency, the server's CPU milliseconds per
//     payment (target ≤ 2.5 ms), PostgreSQL's, the ratio to the baseline, and checks the
//     books (CheckInvariants) and that every payment got exactly one payment.succeeded
//     webhook;
//  5. prints what the server's CPU per payment is made of, measured in the same run: one
//     RSA-2048 signature (before the load) and, on the same server right after the window,
//     one Connect RPC and one database round trip (measureUnitCosts).
//
// The server's CPU time is read from /proc/<pid>/stat (utime+stime, all threads) of the
// child at the start and the end of the measured window; PostgreSQL's is the same sum over
// the postmaster and its backends (plus the postmaster's reaped children). Usage:
//
//	go run ./server/cmd/benchpayments -duration 15s [-cpuprofile server.pprof] [-out bench.json]
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type config struct {
	duration, warmup time.Duration
	concurrency      int
	pgbenchClients   int
	accounts         int
	mix              string
	sandboxes        int
	paymentTimeout   time.Duration
	out              string
	dataDir          string
	pgBin            string
	pool             int
	logLevel         string
	cpuProfile       string
	loadCPUProfile   string
	skipBaseline     bool
	pgStats          int
	serverDBParams   string
}

// targetCPUPerPayment is the budget of server CPU per payment.
const targetCPUPerPayment = 2.5 // milliseconds

func main() {
	if len(os.Args) > 1 && os.Args[1] == serveCommand {
		if err := serveMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "benchpayments serve:", err)
			os.Exit(1)
		}
		return
	}
	var c config
	flag.DurationVar(&c.duration, "duration", 15*time.Second, "length of the measured pgbench run and of the measured payment window")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "unmeasured load before the payment window, and warm-up of the pgbench baseline (its new sessions need about that to reach their steady speed)")
	flag.IntVar(&c.concurrency, "concurrency", 32, "concurrent payers (each loops create → pay → wait for the webhook)")
	flag.IntVar(&c.pgbenchClients, "pgbench-clients", 32, "pgbench clients (baseline)")
	flag.IntVar(&c.accounts, "accounts", 1000, "accounts the pgbench transfers are spread over")
	flag.StringVar(&c.mix, "mix", "alipay/qr=1,wechatpay/qr=1", "weighted channel/method mix; channels alipay, wechatpay; methods qr, page, wap, app, jsapi")
	flag.IntVar(&c.sandboxes, "sandboxes", 4, "sandbox pairs (one merchant app each); each sandbox sends its notifications one at a time, like a single notify worker")
	flag.DurationVar(&c.paymentTimeout, "payment-timeout", 30*time.Second, "how long a payer waits for its webhook before counting the payment as lost")
	flag.StringVar(&c.out, "out", "", "also write the summary to this file (.json for JSON, otherwise markdown)")
	flag.StringVar(&c.dataDir, "data-dir", "", "data directory of the private cluster (default: a fresh temporary one, removed afterwards)")
	flag.StringVar(&c.pgBin, "pg-bin", "", "directory of pgbench and the PostgreSQL server binaries (default: the newest /usr/lib/postgresql/N/bin)")
	flag.IntVar(&c.pool, "pool", 20, "database connections of the paycenter server (PAYCENTER_DB_MAX_CONNS default)")
	flag.StringVar(&c.logLevel, "server-log-level", "info", "the server's log level (info, as in production, logs every RPC)")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the server process, over the measured window, to this file")
	flag.StringVar(&c.loadCPUProfile, "load-cpuprofile", "", "write a CPU profile of the load process (sandboxes, payers, receiver), over the measured window, to this file")
	flag.BoolVar(&c.skipBaseline, "skip-baseline", false, "skip pgbench (for profiling runs)")
	flag.StringVar(&c.serverDBParams, "server-db-params", "", "extra query parameters for the server's database URL, to try driver settings (e.g. binary_parameters=no: two round trips per statement with arguments instead of one)")
	flag.IntVar(&c.pgStats, "pg-stats", 0, "private cluster only: load pg_stat_statements (some overhead) and print the top N statements of the window by total time")
	flag.Parse()
	if c.concurrency < 1 || c.sandboxes < 1 || c.duration <= 0 {
		fmt.Fprintln(os.Stderr, "benchpayments: -concurrency and -sandboxes must be at least 1, -duration positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Everything is bounded: two measured runs, set-up, warm-up and drains.
	ctx, cancel := context.WithTimeout(ctx, 2*c.duration+2*c.warmup+c.paymentTimeout+5*time.Minute)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "benchpayments:", err)
		os.Exit(1)
	}
}

// randomSecret returns n random bytes, base64 (URL alphabet, no padding).
func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// masterKeyring returns a fresh keyring specification "id:base64(32 bytes)".
func masterKeyring() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "bench:" + base64.StdEncoding.EncodeToString(b)
}
