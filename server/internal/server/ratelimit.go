package server

import (
	"context"
	"errors"
	"sync"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"

	"github.com/paycenter/paycenter/server/internal/auth"
)

// rateLimiter bounds each app's (and each phone's) request rate on this replica with a token
// bucket, so one misbehaving integration cannot starve the others. Operators are not limited.
type rateLimiter struct {
	perSecond rate.Limit
	burst     int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newRateLimiter(perSecond float64) *rateLimiter {
	return &rateLimiter{perSecond: rate.Limit(perSecond), burst: max(1, int(2*perSecond)), buckets: map[string]*rate.Limiter{}}
}

var errRateLimited = errors.New("too many requests from this key: slow down and retry")

func (l *rateLimiter) allow(ctx context.Context) error {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Kind == auth.KindAdmin {
		return nil
	}
	key := p.AppID + "/" + p.DeviceID
	l.mu.Lock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) > 100000 { // bound memory; buckets refill quickly anyway
			l.buckets = map[string]*rate.Limiter{}
		}
		b = rate.NewLimiter(l.perSecond, l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	if !b.Allow() {
		return connect.NewError(connect.CodeResourceExhausted, errRateLimited)
	}
	return nil
}

func (l *rateLimiter) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := l.allow(ctx); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (l *rateLimiter) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l *rateLimiter) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := l.allow(ctx); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
