package server

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"connectrpc.com/connect"

	"github.com/paycenter/paycenter/server/internal/ids"
	"github.com/paycenter/paycenter/server/internal/metrics"
)

// RequestIDHeader carries a request id in and out; callers may set their own.
const RequestIDHeader = "Request-Id"

var requestIDPattern = regexp.MustCompile(`^[0-9A-Za-z_.:-]{1,64}$`)

type requestIDKey struct{}

// Logger returns fallback tagged with the request's id, if ctx has one. It is built when
// something is logged, not for every request.
func Logger(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return fallback.With("request_id", id)
	}
	return fallback
}

// withRequestID gives every HTTP request an id, echoes it in the response and keeps it in
// the context for Logger.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !requestIDPattern.MatchString(id) {
			id = ids.New("req")
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// edge is the outermost interceptor: it turns domain errors into RPC codes (one function),
// then logs and counts the outcome, so logs and metrics see the codes callers see.
type edge struct {
	logger  *slog.Logger
	metrics *metrics.RPC
}

func (e *edge) log(ctx context.Context, procedure string, start time.Time, err error) {
	level := slog.LevelInfo
	if code := connect.CodeOf(err); err != nil && (code == connect.CodeInternal || code == connect.CodeUnknown) {
		level = slog.LevelError
	}
	if !e.logger.Enabled(ctx, level) {
		return
	}
	Logger(ctx, e.logger).Log(ctx, level, "rpc", "procedure", procedure, "code", metrics.Code(err),
		"duration_ms", float64(time.Since(start).Microseconds())/1000)
}

func (e *edge) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return e.metrics.WrapUnary(func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		res, err := next(ctx, req)
		if err != nil {
			err = toConnect(ctx, Logger(ctx, e.logger), req.Spec().Procedure, err)
		}
		e.log(ctx, req.Spec().Procedure, start, err)
		return res, err
	})
}

func (e *edge) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (e *edge) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return e.metrics.WrapStreamingHandler(func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := toConnect(ctx, Logger(ctx, e.logger), conn.Spec().Procedure, next(ctx, conn))
		e.log(ctx, conn.Spec().Procedure, start, err)
		return err
	})
}
