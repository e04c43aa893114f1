package payment

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts payments, callbacks and compensation actions (labels are bounded: channel,
// method, outcome, action — never ids or amounts).
type Metrics struct {
	createdC     *prometheus.CounterVec
	succeededC   *prometheus.CounterVec
	closedCount  *prometheus.CounterVec
	callbacks    *prometheus.CounterVec
	compensation *prometheus.CounterVec
}

// NewMetrics registers the payment metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		createdC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_payments_created_total", Help: "Payment attempts opened, by channel and method.",
		}, []string{"channel", "method"}),
		succeededC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_payments_succeeded_total", Help: "Payments confirmed paid, by channel, method and whether the money was a duplicate.",
		}, []string{"channel", "method", "duplicate"}),
		closedCount: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_payments_closed_total", Help: "Payments closed unpaid, by channel and method.",
		}, []string{"channel", "method"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_channel_callbacks_total", Help: "Channel notifications received, by channel and outcome (ok, duplicate, unchanged, forged, mismatch, unknown, error).",
		}, []string{"channel", "outcome"}),
		compensation: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_compensation_actions_total", Help: "What the compensation worker did, by channel and action.",
		}, []string{"channel", "action"}),
	}
	reg.MustRegister(m.createdC, m.succeededC, m.closedCount, m.callbacks, m.compensation)
	// Start the series alerts watch at zero, so increase() sees their first event.
	for _, ch := range []string{"ALIPAY", "WECHATPAY", "COLLECTOR"} {
		for _, outcome := range []string{"ok", "duplicate", "unchanged", "forged", "mismatch", "unknown", "error"} {
			m.callbacks.WithLabelValues(ch, outcome)
		}
		for _, action := range []string{"query_failed", "close_failed", "expired", "paid_at_expiry"} {
			m.compensation.WithLabelValues(ch, action)
		}
	}
	return m
}

func (m *Metrics) created(p Payment) {
	m.createdC.WithLabelValues(string(p.Channel), string(p.Method)).Inc()
}

func (m *Metrics) succeeded(p Payment) {
	dup := "false"
	if p.Duplicate {
		dup = "true"
	}
	m.succeededC.WithLabelValues(string(p.Channel), string(p.Method), dup).Inc()
}

func (m *Metrics) closed(p Payment) {
	m.closedCount.WithLabelValues(string(p.Channel), string(p.Method)).Inc()
}

// Callback counts one channel notification.
func (m *Metrics) Callback(ch, outcome string) { m.callbacks.WithLabelValues(ch, outcome).Inc() }

func (m *Metrics) compensated(p Payment, action string) {
	m.compensation.WithLabelValues(string(p.Channel), action).Inc()
}
