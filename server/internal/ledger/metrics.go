package ledger

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ledger's Prometheus metrics; labels are bounded (codes and outcomes).
type metrics struct {
	transfers       *prometheus.CounterVec
	batchSize       prometheus.Histogram
	batchSeconds    prometheus.Histogram
	batchReads      *prometheus.CounterVec
	expired         prometheus.Counter
	invariantsOK    prometheus.Gauge
	invariantChecks *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_ledger_transfers_total",
			Help: "Ledger transfers processed, by transfer code and result (applied, replayed, or the refusal).",
		}, []string{"code", "result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paycenter_ledger_batch_size",
			Help:    "Transfers applied per database transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 .. 2048
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paycenter_ledger_batch_duration_seconds",
			Help:    "Time of one group-commit database transaction, commit included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}),
		batchReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_ledger_batch_reads_total",
			Help: "Group-commit batches by their read: done (a round trip before the write), skipped (this server wrote every account last), missed (skipped, but an account had changed or a transfer id was not new: run again with the read).",
		}, []string{"read"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycenter_ledger_pending_expired_total",
			Help: "Pending transfers voided because their timeout passed.",
		}),
		invariantsOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paycenter_ledger_invariants_ok",
			Help: "1 if the latest invariant check (by any replica) proved the books add up, 0 if it found a violation.",
		}),
		invariantChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_ledger_invariant_checks_total",
			Help: "Invariant checks run by this replica, by result (ok, violated, error).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.transfers, m.batchSize, m.batchSeconds, m.batchReads, m.expired, m.invariantsOK, m.invariantChecks)
	}
	return m
}

// observe counts a committed batch.
func (m *metrics) observe(batch [][]*entry, e *engine) {
	n := 0
	for _, entries := range batch {
		for _, en := range entries {
			n++
			code := strings.ToLower(string(en.t.Code))
			if !en.t.Code.valid() {
				code = "unspecified"
			}
			result := "applied"
			switch {
			case en.result.Refusal != "":
				result = strings.ToLower(string(en.result.Refusal))
			case en.result.Replayed:
				result = "replayed"
			}
			m.transfers.WithLabelValues(code, result).Inc()
		}
	}
	if n > 0 {
		m.batchSize.Observe(float64(n))
	}
	if e != nil && e.expired > 0 {
		m.expired.Add(float64(e.expired))
	}
}

// invariantsHold sets the invariant gauge from the latest check's result.
func (m *metrics) invariantsHold(ok bool) {
	if ok {
		m.invariantsOK.Set(1)
	} else {
		m.invariantsOK.Set(0)
	}
}
