package server

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/paycenter/paycenter/server/internal/errs"
)

// toConnect is the one place where domain errors become RPC codes. Anything unexpected is
// INTERNAL with a generic message; the cause is logged, never sent.
func toConnect(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	var fe *errs.FieldError
	if errors.As(err, &fe) {
		return connect.NewError(connect.CodeInvalidArgument, fe)
	}
	var de *errs.Error
	if errors.As(err, &de) {
		return connect.NewError(codeOf(de.Kind), errors.New(de.Message))
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	for _, kind := range []error{errs.ErrNotFound, errs.ErrAlreadyExists, errs.ErrFailedPrecondition,
		errs.ErrPermissionDenied, errs.ErrUnauthenticated, errs.ErrUnavailable, errs.ErrInvalid} {
		if errors.Is(err, kind) {
			return connect.NewError(codeOf(kind), errors.New(kind.Error()))
		}
	}
	logger.ErrorContext(ctx, "internal error", "procedure", procedure, "error", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

func codeOf(kind error) connect.Code {
	switch kind {
	case errs.ErrInvalid:
		return connect.CodeInvalidArgument
	case errs.ErrNotFound:
		return connect.CodeNotFound
	case errs.ErrAlreadyExists:
		return connect.CodeAlreadyExists
	case errs.ErrFailedPrecondition:
		return connect.CodeFailedPrecondition
	case errs.ErrPermissionDenied:
		return connect.CodePermissionDenied
	case errs.ErrUnauthenticated:
		return connect.CodeUnauthenticated
	case errs.ErrUnavailable:
		return connect.CodeUnavailable
	}
	return connect.CodeInternal
}
