package sandbox

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Options are the settings both sandboxes share. The zero value works.
type Options struct {
	// PrivateKeyPEM is the sandbox's own signing key (the "Alipay" or
	// "WeChat Pay platform" key). Empty means generate one at start.
	PrivateKeyPEM string
	// PublicURL is the base URL payers reach the sandbox at, used in QR codes
	// and cashier links. Empty means derive it from each request's Host.
	PublicURL string
	// Logger receives the sandbox's logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient delivers notifications; nil means a client with a timeout.
	HTTPClient *http.Client
	// RetrySchedule is the wait before each retry of a notification the
	// merchant did not accept. Nil means the channel's real schedule (hours
	// long); tests pass a compressed one.
	RetrySchedule []time.Duration
	// ReorderHold bounds how long Fault.Reorder holds a notification back
	// when no later one comes. Zero means two seconds.
	ReorderHold time.Duration
	// ManualRefunds keeps refunds processing until CompleteRefund or
	// FailRefund; by default they complete at once.
	ManualRefunds bool
}

// Real retry schedules, from the channels' documentation.
var (
	// Alipay: 4m, 10m, 10m, 1h, 2h, 6h, 15h (eight attempts in about 25h).
	alipayRetrySchedule = []time.Duration{
		4 * time.Minute, 10 * time.Minute, 10 * time.Minute,
		time.Hour, 2 * time.Hour, 6 * time.Hour, 15 * time.Hour,
	}
	// WeChat Pay: 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h.
	wechatRetrySchedule = []time.Duration{
		15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute,
		10 * time.Minute, 20 * time.Minute, 30 * time.Minute, 30 * time.Minute,
		30 * time.Minute, time.Hour, 3 * time.Hour, 3 * time.Hour, 3 * time.Hour,
		6 * time.Hour, 6 * time.Hour,
	}
)

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Logger
}

func (o Options) newNotifier(log *slog.Logger, defaultSchedule []time.Duration) *notifier {
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: attemptTimeout}
	}
	schedule := o.RetrySchedule
	if schedule == nil {
		schedule = defaultSchedule
	}
	hold := o.ReorderHold
	if hold <= 0 {
		hold = 2 * time.Second
	}
	return newNotifier(log, client, schedule, hold)
}

// baseURL is where payers reach the sandbox.
func (o Options) baseURL(r *http.Request) string {
	if o.PublicURL != "" {
		return strings.TrimRight(o.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
