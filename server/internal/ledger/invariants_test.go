package ledger

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
)

// Replicas take turns at the periodic check: one runs it per interval, the others export its
// result, including a violation.
func TestPeriodicInvariantCheckRunsOncePerIntervalAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Open(t, pgtest.URL(t), 10)
	replicas := []*Service{
		NewService(db, Options{Registerer: prometheus.NewRegistry()}),
		NewService(db, Options{Registerer: prometheus.NewRegistry()}),
	}
	checks := func() (n float64) {
		for _, r := range replicas {
			for _, result := range []string{"ok", "violated", "error"} {
				n += value(r.metrics.invariantChecks.WithLabelValues(result))
			}
		}
		return n
	}
	gauges := func() (out []float64) {
		for _, r := range replicas {
			out = append(out, value(r.metrics.invariantsOK))
		}
		return out
	}
	// Both at once, twice over, on a ledger nobody has checked: one check in all.
	for round := range 2 {
		var wg sync.WaitGroup
		for _, r := range replicas {
			wg.Go(func() {
				if _, err := r.periodicCheck(ctx, time.Hour); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
	}
	if n := checks(); n != 1 {
		t.Fatalf("%v checks in one interval across two replicas, want 1", n)
	}
	// The one that did not check may have read the table before the other recorded it.
	for _, r := range replicas {
		if _, err := r.periodicCheck(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if g := gauges(); g[0] != 1 || g[1] != 1 {
		t.Fatalf("invariant gauges %v after a passing check, want 1 on both", g)
	}

	// Break the books, let the interval pass: the next turn finds it, and both replicas say so.
	if _, err := db.ExecContext(ctx, `INSERT INTO ledger_accounts (account_id, code, currency, debits_posted)
		VALUES ('acc_broken', 'EXTERNAL_FUNDING', 'CNY', 5)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE ledger_invariant_checks SET checked_at = checked_at - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	ran0, err := replicas[1].periodicCheck(ctx, time.Hour)
	if err != nil || !ran0 {
		t.Fatalf("the due check did not run: %v", err)
	}
	if ran, err := replicas[0].periodicCheck(ctx, time.Hour); err != nil || ran {
		t.Fatalf("a second check within the interval (ran %v, %v)", ran, err)
	}
	if g := gauges(); g[0] != 0 || g[1] != 0 {
		t.Fatalf("invariant gauges %v after a violation, want 0 on both", g)
	}
	var recorded int
	if err := db.GetContext(ctx, &recorded, `SELECT cardinality(violations) FROM ledger_invariant_checks WHERE NOT ok`); err != nil || recorded == 0 {
		t.Fatalf("the violation was not recorded: %d, %v", recorded, err)
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		panic(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}
