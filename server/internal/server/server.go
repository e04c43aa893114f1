// Package server assembles paycenter's HTTP surface: the five Connect services, health,
// reflection, metrics and CORS on one handler that speaks HTTP/1.1 and cleartext HTTP/2, and
// serves it with a graceful shutdown that drains streams.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"

	"github.com/paycenter/paycenter/gen/go/paycenter/v1/paycenterv1connect"
	"github.com/paycenter/paycenter/server/internal/auth"
	"github.com/paycenter/paycenter/server/internal/cashier"
	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/channel/alipay"
	"github.com/paycenter/paycenter/server/internal/channel/wechatpay"
	"github.com/paycenter/paycenter/server/internal/ledger"
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/metrics"
	"github.com/paycenter/paycenter/server/internal/payment"
	"github.com/paycenter/paycenter/server/internal/refund"
	"github.com/paycenter/paycenter/server/internal/secret"
	"github.com/paycenter/paycenter/server/internal/webhook"
)

// Config is what the server needs; main builds it from the environment.
type Config struct {
	// PublicURL is the base URL payers and channels reach (cashier pages, notify routes).
	PublicURL string
	// Channels are the payment channel adapters; nil means the real Alipay and WeChat Pay
	// adapters (which reach whatever gateway each app's configuration names).
	Channels map[merchant.Channel]channel.Channel
	// WorkerInterval is how often background workers (compensation, refunds) look for work.
	WorkerInterval time.Duration
	// Now is the clock of payment expiry and compensation (nil: time.Now); tests move it.
	Now func() time.Time
	// FirstCheck is when a new payment is first checked at its channel (default 10s).
	FirstCheck time.Duration
	// InvariantInterval is how often the replicas, taking turns, prove the ledger's books
	// (default 10 minutes).
	InvariantInterval time.Duration
	// WebhookSchedule overrides the webhook back-off (tests compress it); nil: about 24 hours.
	WebhookSchedule []time.Duration
	DB              *sqlx.DB
	// DatabaseURL is DB's connection string, for the connection that LISTENs for payment
	// changes; empty leaves WatchPayment streams polling their rows.
	DatabaseURL     string
	Logger          *slog.Logger
	Registry        *prometheus.Registry
	AdminKeys       []string
	Keyring         *secret.Keyring
	CORSOrigins     []string // browser origins allowed to call the API; empty allows none
	MaxRequestBytes int64    // largest request body accepted
	// AppRateLimit is the requests per second each app (or phone) may make on one replica,
	// with bursts of twice that; 0 means no limit.
	AppRateLimit    float64
	ShutdownTimeout time.Duration
}

// Server is paycenter's HTTP server.
type Server struct {
	cfg     Config
	handler http.Handler
	drain   context.CancelFunc
	drained context.Context
	workers []func(context.Context)
	// The domains, for callers that need them in-process (dev seeding, tests).
	Merchants *merchant.Service
	Payments  *payment.Service
	Refunds   *refund.Service
	Ledger    *ledger.Service
	Webhooks  *webhook.Service
}

// ServiceNames are the fully-qualified names of the five services.
var ServiceNames = []string{
	paycenterv1connect.MerchantServiceName,
	paycenterv1connect.PaymentServiceName,
	paycenterv1connect.RefundServiceName,
	paycenterv1connect.LedgerServiceName,
	paycenterv1connect.CollectorServiceName,
}

// New wires the domains and builds the handler.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil || cfg.Logger == nil || cfg.Registry == nil || cfg.Keyring == nil {
		return nil, errors.New("server: DB, Logger, Registry and Keyring are required")
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 1 << 20
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	if cfg.WorkerInterval <= 0 {
		cfg.WorkerInterval = time.Second
	}
	if cfg.InvariantInterval <= 0 {
		cfg.InvariantInterval = 10 * time.Minute
	}
	if cfg.Channels == nil {
		// One pooled client for the gateways: the default transport keeps only two idle
		// connections per host, and every new one would be a TLS handshake in production.
		gateways := &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
		cfg.Channels = map[merchant.Channel]channel.Channel{
			merchant.ChannelAlipay:    alipay.New(alipay.WithHTTPClient(gateways)),
			merchant.ChannelWechatPay: wechatpay.New(wechatpay.WithHTTPClient(gateways)),
		}
	}
	s := &Server{cfg: cfg}
	s.drained, s.drain = context.WithCancel(context.Background())

	metrics.RegisterDB(cfg.Registry, cfg.DB.DB)
	merchants := merchant.NewService(merchant.NewStore(cfg.DB), cfg.Keyring)
	s.Merchants = merchants
	authn := auth.NewAuthenticator(cfg.AdminKeys, merchants, nil)

	interceptors := []connect.Interceptor{
		&edge{logger: cfg.Logger, metrics: metrics.NewRPC(cfg.Registry)},
		&drainer{drained: s.drained},
		authn.Interceptor(paycenterv1connect.PaymentServiceWatchPaymentProcedure),
	}
	if cfg.AppRateLimit > 0 {
		interceptors = append(interceptors, newRateLimiter(cfg.AppRateLimit))
	}
	opts := connect.WithHandlerOptions(
		connect.WithInterceptors(interceptors...),
		connect.WithReadMaxBytes(int(cfg.MaxRequestBytes)),
		// Compressing small messages costs more CPU than the bytes it saves.
		connect.WithCompressMinBytes(1024),
	)

	ledgers := ledger.NewService(cfg.DB, ledger.Options{Logger: cfg.Logger, Registerer: cfg.Registry})
	webhooks := webhook.New(cfg.DB, merchants, webhook.Options{Logger: cfg.Logger, Registerer: cfg.Registry, Schedule: cfg.WebhookSchedule})
	bookkeeping := newBooks(ledgers)
	payments := payment.NewService(payment.Config{
		DB: cfg.DB, Merchants: merchants, Channels: cfg.Channels, Books: bookkeeping, PublicURL: cfg.PublicURL,
		Logger: cfg.Logger, Metrics: payment.NewMetrics(cfg.Registry), FirstCheck: cfg.FirstCheck, Now: cfg.Now,
	})
	if cfg.DatabaseURL != "" {
		payments.Changes = payment.NewChanges(cfg.DatabaseURL, cfg.Logger)
	}
	evs := events{outbox: webhooks, payments: payments}
	payments.Events = evs.paymentEvents()
	refunds := refund.NewService(refund.Config{
		DB: cfg.DB, Payments: payments, Merchants: merchants, Channels: cfg.Channels, Books: bookkeeping,
		Events: evs.refundEvents(), Logger: cfg.Logger, Registry: cfg.Registry,
	})
	s.Merchants, s.Payments, s.Refunds, s.Ledger, s.Webhooks = merchants, payments, refunds, ledgers, webhooks
	s.workers = []func(context.Context){
		ledgers.Start, // voids timed-out pending transfers
		func(ctx context.Context) { _ = webhooks.Run(ctx) },
		func(ctx context.Context) { payments.RunCompensation(ctx, cfg.WorkerInterval) },
		func(ctx context.Context) { refunds.RunWorker(ctx, cfg.WorkerInterval) },
		func(ctx context.Context) { ledgers.RunInvariantChecks(ctx, cfg.InvariantInterval) },
	}
	if payments.Changes != nil {
		s.workers = append(s.workers, payments.Changes.Run)
	}

	mux := http.NewServeMux()
	mux.Handle(paycenterv1connect.NewMerchantServiceHandler(merchant.NewHandler(merchants), opts))
	mux.Handle(paycenterv1connect.NewPaymentServiceHandler(payment.NewHandler(payments, webhook.NewHandler(webhooks)), opts))
	mux.Handle(paycenterv1connect.NewRefundServiceHandler(refund.NewHandler(refunds), opts))
	mux.Handle(paycenterv1connect.NewLedgerServiceHandler(ledger.NewHandler(ledgers), opts))
	mux.Handle(paycenterv1connect.NewCollectorServiceHandler(paycenterv1connect.UnimplementedCollectorServiceHandler{}, opts))
	mux.Handle("POST /notify/{channel}/{app}", payments.NotifyHandler(func(r *http.Request, appID string, ch merchant.Channel, rf channel.Refund) error {
		return refunds.ApplyRefund(r.Context(), appID, ch, rf)
	}))
	mux.Handle("/pay/", cashier.Handler(payments))

	mux.Handle(grpchealth.NewHandler(&healthChecker{db: cfg.DB, services: ServiceNames, drained: s.drained}))
	reflector := grpcreflect.NewStaticReflector(append([]string{grpchealth.HealthV1ServiceName, grpcreflect.ReflectV1ServiceName}, ServiceNames...)...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	mux.Handle("/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{Registry: cfg.Registry}))

	corsHandler := cors.New(cors.Options{
		AllowedOrigins: cfg.CORSOrigins,
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", RequestIDHeader),
		ExposedHeaders: append(connectcors.ExposedHeaders(), RequestIDHeader),
		MaxAge:         7200,
	})
	// MaxBytesHandler bounds bodies that do not go through Connect (which has its own limit,
	// applied after decompression).
	s.handler = withRequestID(corsHandler.Handler(http.MaxBytesHandler(mux, cfg.MaxRequestBytes+4096)))
	return s, nil
}

// Handler is the whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx is done, then stops accepting, ends open streams and waits up
// to the shutdown timeout for requests in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{
		Handler:           s.handler,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No Read/WriteTimeout: they would cut long streams; HTTP/2 pings find dead peers.
		HTTP2:    &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
		ErrorLog: slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	var workers sync.WaitGroup
	for _, work := range s.workers {
		workers.Go(func() { work(s.drained) })
	}
	defer workers.Wait()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.drain()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.cfg.Logger.Info("shutting down: draining requests, streams and workers", "timeout", s.cfg.ShutdownTimeout)
	s.drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// drainer ends streaming handlers when the server shuts down, so Shutdown does not wait for
// streams that would otherwise live forever. Handlers end when their context is done.
type drainer struct{ drained context.Context }

func (d *drainer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (d *drainer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (d *drainer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(d.drained, cancel)
		defer stop()
		return next(ctx, conn)
	}
}

// healthChecker answers SERVING while the database answers and the server is not draining.
type healthChecker struct {
	db       *sqlx.DB
	services []string
	drained  context.Context
}

func (h *healthChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	known := req.Service == ""
	for _, name := range h.services {
		known = known || req.Service == name
	}
	if !known {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	if h.drained.Err() != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := h.db.PingContext(pingCtx); err != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}
