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
	"github.com/paycenter/paycenter/server/internal/merchant"
	"github.com/paycenter/paycenter/server/internal/metrics"
	"github.com/paycenter/paycenter/server/internal/secret"
)

// Config is what the server needs; main builds it from the environment.
type Config struct {
	DB              *sqlx.DB
	Logger          *slog.Logger
	Registry        *prometheus.Registry
	AdminKeys       []string
	Keyring         *secret.Keyring
	CORSOrigins     []string // browser origins allowed to call the API; empty allows none
	MaxRequestBytes int64    // largest request body accepted
	ShutdownTimeout time.Duration
}

// Server is paycenter's HTTP server.
type Server struct {
	cfg     Config
	handler http.Handler
	drain   context.CancelFunc
	drained context.Context
	// Merchants is the merchant domain, for callers that need it in-process (dev seeding).
	Merchants *merchant.Service
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
	s := &Server{cfg: cfg}
	s.drained, s.drain = context.WithCancel(context.Background())

	metrics.RegisterDB(cfg.Registry, cfg.DB.DB)
	merchants := merchant.NewService(merchant.NewStore(cfg.DB), cfg.Keyring)
	s.Merchants = merchants
	authn := auth.NewAuthenticator(cfg.AdminKeys, merchants, nil)

	opts := connect.WithHandlerOptions(
		connect.WithInterceptors(
			&edge{logger: cfg.Logger, metrics: metrics.NewRPC(cfg.Registry)},
			&drainer{drained: s.drained},
			authn.Interceptor(paycenterv1connect.PaymentServiceWatchPaymentProcedure),
		),
		connect.WithReadMaxBytes(int(cfg.MaxRequestBytes)),
	)

	mux := http.NewServeMux()
	mux.Handle(paycenterv1connect.NewMerchantServiceHandler(merchant.NewHandler(merchants), opts))
	mux.Handle(paycenterv1connect.NewPaymentServiceHandler(paycenterv1connect.UnimplementedPaymentServiceHandler{}, opts))
	mux.Handle(paycenterv1connect.NewRefundServiceHandler(paycenterv1connect.UnimplementedRefundServiceHandler{}, opts))
	mux.Handle(paycenterv1connect.NewLedgerServiceHandler(paycenterv1connect.UnimplementedLedgerServiceHandler{}, opts))
	mux.Handle(paycenterv1connect.NewCollectorServiceHandler(paycenterv1connect.UnimplementedCollectorServiceHandler{}, opts))

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
	s.handler = withRequestID(cfg.Logger, corsHandler.Handler(http.MaxBytesHandler(mux, cfg.MaxRequestBytes+4096)))
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
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.cfg.Logger.Info("shutting down: draining requests and streams", "timeout", s.cfg.ShutdownTimeout)
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
