package main

// The pgbench baseline: the same single-transfer script as cmd/benchledger's.

import (
	"context"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paycenter/paycenter/server/internal/pgbench"
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

// runPgbench runs the baseline; postmaster (0 when unknown) lets it measure PostgreSQL's CPU.
func runPgbench(ctx context.Context, c config, db *sqlx.DB, binDir, url string, postmaster int) (baseline, error) {
	r, err := pgbench.Run(ctx, db, pgbench.Options{BinDir: binDir, URL: url, Clients: c.pgbenchClients,
		Accounts: c.accounts, Warmup: c.warmup, Duration: c.duration, Postmaster: postmaster})
	if err != nil {
		return baseline{}, err
	}
	b := baseline{Clients: c.pgbenchClients, TPS: r.TPS, Failed: r.Failed, P50ms: ms(r.Percentile(0.50)), P99ms: ms(r.Percentile(0.99))}
	if r.PostgresCPU > 0 && len(r.Latencies) > 0 {
		b.PostgresCPU = ms(r.PostgresCPU) / float64(len(r.Latencies))
	}
	return b, nil
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
