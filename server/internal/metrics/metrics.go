// Package metrics builds paycenter's Prometheus registry and the RPC metrics interceptor.
// The registry is passed to whoever registers metrics; nothing here is global.
package metrics

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
	"runtime/debug"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry with the Go runtime and process collectors and
// paycenter_build_info, so a scrape shows paycenter is up before any RPC has been served.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	version := "devel"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		version = info.Main.Version
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "paycenter_build_info",
		Help:        "Always 1; labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
	})
	buildInfo.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo)
	return reg
}

// RegisterDB exports the connection pool's gauges and counters (go_sql_*{db_name="paycenter"}).
func RegisterDB(reg prometheus.Registerer, db *sql.DB) {
	reg.MustRegister(collectors.NewDBStatsCollector(db, "paycenter"))
}

// RPC counts and times every RPC by procedure and code.
type RPC struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewRPC registers paycenter_rpc_requests_total and paycenter_rpc_duration_seconds.
func NewRPC(reg prometheus.Registerer) *RPC {
	m := &RPC{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycenter_rpc_requests_total",
			Help: "RPCs handled, by procedure and result code.",
		}, []string{"procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paycenter_rpc_duration_seconds",
			Help:    "RPC handling time, by procedure (streams: until the stream ends).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"procedure"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Code is the label value for err: "ok" or the Connect code's name.
func Code(err error) string {
	if err == nil {
		return "ok"
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code().String()
	}
	return connect.CodeUnknown.String()
}

func (m *RPC) observe(procedure string, start time.Time, err error) {
	m.requests.WithLabelValues(procedure, Code(err)).Inc()
	m.duration.WithLabelValues(procedure).Observe(time.Since(start).Seconds())
}

// WrapUnary implements connect.Interceptor.
func (m *RPC) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		res, err := next(ctx, req)
		m.observe(req.Spec().Procedure, start, err)
		return res, err
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (m *RPC) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (m *RPC) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		m.observe(conn.Spec().Procedure, start, err)
		return err
	}
}
