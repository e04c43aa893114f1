package webhook

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's Prometheus metrics; labels are bounded (attempt results).
type metrics struct {
	attempts *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, s *Service) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_webhook_attempts_total",
			Help: "Webhook delivery attempts, by result (delivered, http_error, network_error, no_url, target_error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paycenter_webhook_attempt_duration_seconds",
			Help:    "Time of webhook HTTP attempts, from sending to the end of the answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	for _, r := range []Result{ResultDelivered, ResultHTTPError, ResultNetworkError, ResultNoURL, ResultTargetError} {
		m.attempts.WithLabelValues(string(r))
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.duration, &backlogCollector{s: s})
	}
	return m
}

func (m *metrics) observe(o outcome) {
	m.attempts.WithLabelValues(string(o.result)).Inc()
	switch o.result {
	case ResultDelivered, ResultHTTPError, ResultNetworkError:
		m.duration.Observe(o.duration.Seconds())
	}
}

var (
	backlogDesc = prometheus.NewDesc("paycenter_webhook_backlog",
		"Webhook events not yet delivered or failed (pending or in flight), across all replicas.", nil, nil)
	oldestDesc = prometheus.NewDesc("paycenter_webhook_oldest_pending_age_seconds",
		"Age of the oldest webhook event not yet delivered or failed; 0 when there is none.", nil, nil)
	overdueDesc = prometheus.NewDesc("paycenter_webhook_oldest_overdue_seconds",
		"How long the most overdue webhook event has been due for an attempt it has not had (pending past its "+
			"retry time, or in flight past its lease); 0 when there is none. Back-off waits do not count: it grows "+
			"only when dispatchers fall behind.", nil, nil)
)

// backlogCollector reads the backlog from the database at scrape time, so every replica
// reports the same, current numbers whether or not its dispatcher runs.
type backlogCollector struct{ s *Service }

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestDesc
	ch <- overdueDesc
}

// Collect omits the gauges when the database does not answer, rather than failing the
// whole scrape (absent() alerts catch that).
func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.s.now()
	n, oldest, due, err := c.s.store.backlog(ctx)
	if err != nil {
		c.s.logger.Warn("webhook: backlog metrics", "error", err)
		return
	}
	// A due time still ahead (an event waiting out its back-off) is not overdue: 0.
	since := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return max(now.Sub(t).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, since(oldest))
	ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, since(due))
}
