// Package paycenter is the Go client of paycenter: one value holding typed clients of all five
// services, authenticated with a bearer key, speaking Connect (or gRPC) over HTTP/2.
package paycenter

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/paycenter/paycenter/gen/go/paycenter/v1/paycenterv1connect"
)

// Client reaches every paycenter service.
type Client struct {
	Merchants paycenterv1connect.MerchantServiceClient
	Payments  paycenterv1connect.PaymentServiceClient
	Refunds   paycenterv1connect.RefundServiceClient
	Ledger    paycenterv1connect.LedgerServiceClient
	Collector paycenterv1connect.CollectorServiceClient
}

type options struct {
	httpClient *http.Client
	grpc       bool
	retries    int
	extra      []connect.ClientOption
}

// Option configures a Client.
type Option func(*options)

// WithHTTPClient uses hc instead of the default HTTP/2 client.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithGRPC speaks the gRPC protocol instead of Connect.
func WithGRPC() Option { return func(o *options) { o.grpc = true } }

// WithRetries retries read-only calls up to n times when the server is unavailable (default 2).
func WithRetries(n int) Option { return func(o *options) { o.retries = n } }

// WithClientOptions adds Connect client options (interceptors, compression...).
func WithClientOptions(opts ...connect.ClientOption) Option {
	return func(o *options) { o.extra = append(o.extra, opts...) }
}

// New returns a Client for the server at baseURL (e.g. "http://localhost:8080") that sends
// key as `Authorization: Bearer <key>`.
func New(baseURL, key string, opts ...Option) *Client {
	o := options{retries: 2}
	for _, opt := range opts {
		opt(&o)
	}
	if o.httpClient == nil {
		o.httpClient = NewHTTPClient()
	}
	copts := []connect.ClientOption{connect.WithInterceptors(bearer(key), retry(o.retries))}
	if o.grpc {
		copts = append(copts, connect.WithGRPC())
	}
	copts = append(copts, o.extra...)
	hc, url := o.httpClient, strings.TrimRight(baseURL, "/")
	return &Client{
		Merchants: paycenterv1connect.NewMerchantServiceClient(hc, url, copts...),
		Payments:  paycenterv1connect.NewPaymentServiceClient(hc, url, copts...),
		Refunds:   paycenterv1connect.NewRefundServiceClient(hc, url, copts...),
		Ledger:    paycenterv1connect.NewLedgerServiceClient(hc, url, copts...),
		Collector: paycenterv1connect.NewCollectorServiceClient(hc, url, copts...),
	}
}

// NewHTTPClient returns an HTTP client that speaks HTTP/2 to https URLs and cleartext HTTP/2
// (prior knowledge) to http URLs, as paycenter serves, so streams work in both.
func NewHTTPClient() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols:           protocols,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: 30 * time.Second},
	}}
}

func bearer(key string) connect.Interceptor {
	return &headerInterceptor{name: "Authorization", value: "Bearer " + key}
}

type headerInterceptor struct{ name, value string }

func (h *headerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if h.value != "Bearer " {
			req.Header().Set(h.name, h.value)
		}
		return next(ctx, req)
	}
}

func (h *headerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if h.value != "Bearer " {
			conn.RequestHeader().Set(h.name, h.value)
		}
		return conn
	}
}

func (h *headerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// retry re-sends read-only unary calls (Get*, List*, Check*) that failed with UNAVAILABLE,
// with a short back-off. Writes are idempotent by their keys, but retrying them is left to
// the caller, who knows whether the key was reused.
func retry(n int) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			method := req.Spec().Procedure[strings.LastIndex(req.Spec().Procedure, "/")+1:]
			readOnly := strings.HasPrefix(method, "Get") || strings.HasPrefix(method, "List") || strings.HasPrefix(method, "Check")
			res, err := next(ctx, req)
			for attempt := 1; readOnly && attempt <= n && connect.CodeOf(err) == connect.CodeUnavailable; attempt++ {
				select {
				case <-ctx.Done():
					return nil, errors.Join(err, ctx.Err())
				case <-time.After(time.Duration(attempt*attempt) * 100 * time.Millisecond):
				}
				res, err = next(ctx, req)
			}
			return res, err
		}
	}
}
