package auth

import (
	"context"
	"errors"

	"connectrpc.com/connect"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// Interceptor authenticates every RPC. Procedures in anonymous may also be called without a
// key (they authorise by other means, e.g. a cashier token); a key that is sent must be valid.
func (a *Authenticator) Interceptor(anonymous ...string) connect.Interceptor {
	open := make(map[string]bool, len(anonymous))
	for _, p := range anonymous {
		open[p] = true
	}
	return &interceptor{a: a, anonymous: open}
}

type interceptor struct {
	a         *Authenticator
	anonymous map[string]bool
}

func (i *interceptor) authenticate(ctx context.Context, procedure, header string) (context.Context, error) {
	if header == "" && i.anonymous[procedure] {
		return ctx, nil
	}
	p, err := i.a.Authenticate(ctx, header)
	if err != nil {
		return ctx, err
	}
	return WithPrincipal(ctx, p), nil
}

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, err := i.authenticate(ctx, req.Spec().Procedure, req.Header().Get("Authorization"))
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.authenticate(ctx, conn.Spec().Procedure, conn.RequestHeader().Get("Authorization"))
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
