package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/page"
	"github.com/paycenter/paycenter/server/internal/pgdb"
)

// Options configure a Service; zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the paycenter_webhook_* metrics; nil keeps them unexported.
	// Register one Service per registry.
	Registerer prometheus.Registerer
	// Schedule is the wait after each failed attempt; after len(Schedule)+1 failed attempts
	// the event is FAILED (default DefaultSchedule, about 24 hours).
	Schedule []time.Duration
	// Workers bounds the attempts one Run makes at once (default 4).
	Workers int
	// PollInterval is how often an idle Run looks for due events (default 250ms). An event
	// enqueued in a transaction pgdb.InTx runs wakes this replica's Run when it commits;
	// others wait at most this long.
	PollInterval time.Duration
	// Timeout bounds one HTTP attempt, connection to end of body (default 10s).
	Timeout time.Duration
	// Now is the clock for event and attempt times and the schedule (default time.Now).
	// Replicas' clocks must agree to well within the lease (Timeout + 1 minute).
	Now func() time.Time
	// Client sends the POSTs (default: redirects are not followed). Options.Timeout applies
	// on top of the client's own.
	Client *http.Client
}

const (
	defaultWorkers      = 4
	defaultPollInterval = 250 * time.Millisecond
	defaultTimeout      = 10 * time.Second
	// targetTimeout bounds reading an app's URL and secret.
	targetTimeout = 5 * time.Second
	// leaseMargin is added to the longest an attempt can take before its outcome is
	// recorded; an attempt not recorded by then is presumed lost and the event is retried.
	leaseMargin = time.Minute
	// maxResponseRead bounds how much of an app's answer is read.
	maxResponseRead = 64 << 10
	maxEventID      = 128
)

// Service is the outbox (Enqueue), its reader (List, Redeliver) and the dispatcher (Run).
// Several Services on one database, in one process or many, share the work safely.
type Service struct {
	store    *store
	targets  Targets
	opts     Options
	logger   *slog.Logger
	client   *http.Client
	metrics  *metrics
	lease    time.Duration
	schedule []time.Duration
	// wake tells an idle Run that an event was committed.
	wake chan struct{}
}

// New returns a Service storing in db and sending where targets says.
func New(db *sqlx.DB, targets Targets, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if len(opts.Schedule) == 0 {
		opts.Schedule = DefaultSchedule
	}
	if opts.Workers <= 0 {
		opts.Workers = defaultWorkers
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultPollInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	client := opts.Client
	if client == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		// Keep a connection per worker: the default keeps two per app, and every new one to
		// an https endpoint is a TLS handshake.
		transport.MaxIdleConnsPerHost = opts.Workers
		client = &http.Client{
			Transport: transport,
			// A redirect would send the signed event somewhere the app did not configure.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	s := &Service{
		store:    &store{db: db},
		targets:  targets,
		opts:     opts,
		logger:   opts.Logger,
		client:   client,
		lease:    targetTimeout + opts.Timeout + leaseMargin,
		schedule: append([]time.Duration(nil), opts.Schedule...),
		wake:     make(chan struct{}, 1),
	}
	s.metrics = newMetrics(opts.Registerer, s)
	return s
}

// now is the clock truncated to PostgreSQL's precision, so stored and returned times agree.
func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// payload is the JSON body of every attempt.
type payload struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// Enqueue adds e to the outbox inside the caller's transaction tx: it is delivered only if tx
// commits. An event whose ID the merchant already has is ignored, so retried transactions
// never queue an event twice. Errors are programming errors (a missing field, an unknown
// type, Data that is not JSON) or database failures; either should abort tx.
func (s *Service) Enqueue(ctx context.Context, tx *sqlx.Tx, e Event) error {
	switch {
	case e.ID == "" || len(e.ID) > maxEventID:
		return fmt.Errorf("webhook event id %q: must be 1 to %d characters", e.ID, maxEventID)
	case !validType(e.Type):
		return fmt.Errorf("webhook event %s: unknown type %q", e.ID, e.Type)
	case e.AppID == "" || e.MerchantID == "":
		return fmt.Errorf("webhook event %s: app and merchant are required", e.ID)
	}
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	if !json.Valid(data) {
		return fmt.Errorf("webhook event %s: data is not valid JSON", e.ID)
	}
	now := s.now()
	// Marshal compacts Data, so every attempt sends the same tidy bytes.
	body, err := json.Marshal(payload{ID: e.ID, Type: e.Type, CreatedAt: now.Format(time.RFC3339), Data: data})
	if err != nil {
		return fmt.Errorf("webhook event %s: encode payload: %w", e.ID, err)
	}
	err = s.store.insert(ctx, tx, eventRow{
		MerchantID: e.MerchantID, EventID: e.ID, AppID: e.AppID, Type: e.Type, TradeNo: e.TradeNo,
		RefundNo: e.RefundNo, Payload: string(body), MaxAttempts: len(s.schedule) + 1, CreatedAt: now,
	})
	if err == nil {
		// This replica's dispatcher sends it as soon as it is committed; other replicas' (and
		// events from transactions pgdb.InTx does not run) are found by polling.
		pgdb.AfterCommit(tx, s.poke)
	}
	return err
}

// poke wakes an idle Run.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// List pages through appID's events, newest first, with their attempts. Other apps' events
// are invisible.
func (s *Service) List(ctx context.Context, appID string, f ListFilter, pg page.Request) ([]EventWithAttempts, string, error) {
	if appID == "" {
		return nil, "", errs.Invalid("app_id", "is required")
	}
	if len(f.TradeNo) > 64 {
		return nil, "", errs.Invalid("trade_no", "must be at most 64 characters")
	}
	var statuses []string
	switch f.Status {
	case "":
	case StatusPending:
		statuses = []string{string(StatusPending), string(StatusSending)}
	case StatusDelivered, StatusFailed:
		statuses = []string{string(f.Status)}
	default:
		return nil, "", errs.Invalid("status", "must be PENDING, DELIVERED or FAILED")
	}
	size, after, err := pg.Parse(20, 100)
	if err != nil {
		return nil, "", err
	}
	var before int64
	if after != "" {
		if before, err = strconv.ParseInt(after, 10, 64); err != nil || before <= 0 {
			return nil, "", errs.Invalid("page_token", "is not a token from a previous page")
		}
	}
	var evs []EventWithAttempts
	var next string
	// One snapshot, so that events and their attempts agree.
	err = s.inTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, func(tx *sqlx.Tx) error {
		rows, err := s.store.list(ctx, tx, appID, f.TradeNo, statuses, before, size+1)
		if err != nil {
			return err
		}
		rows, next = page.Cut(rows, size, func(r eventRow) string { return strconv.FormatInt(r.Seq, 10) })
		evs, err = s.withAttempts(ctx, tx, rows)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return evs, next, nil
}

// Redeliver queues appID's event eventID for an attempt now, keeping its past attempts
// (numbering continues). A pending event is attempted now and keeps its schedule; a
// delivered or failed one gets one more attempt, after which it is DELIVERED or FAILED
// again; an event with an attempt in flight is returned unchanged. Another app's event is
// NOT_FOUND.
func (s *Service) Redeliver(ctx context.Context, appID, eventID string) (EventWithAttempts, error) {
	if appID == "" {
		return EventWithAttempts{}, errs.Invalid("app_id", "is required")
	}
	if eventID == "" || len(eventID) > maxEventID {
		return EventWithAttempts{}, errs.Invalid("event_id", "must be 1 to %d characters", maxEventID)
	}
	var evs []EventWithAttempts
	// The requeued row stays locked until commit, so no dispatcher claims it before its
	// attempts are read: the answer shows the event as queued.
	err := s.inTx(ctx, nil, func(tx *sqlx.Tx) error {
		row, err := s.store.requeue(ctx, tx, appID, eventID, s.now())
		if errors.Is(err, errNoChange) {
			row, err = s.store.event(ctx, tx, appID, eventID)
		}
		if err != nil {
			return err
		}
		evs, err = s.withAttempts(ctx, tx, []eventRow{row})
		return err
	})
	if err != nil {
		return EventWithAttempts{}, err
	}
	return evs[0], nil
}

// inTx runs fn in a transaction with opts (nil: the defaults); see pgdb.InTx.
func (s *Service) inTx(ctx context.Context, opts *sql.TxOptions, fn func(tx *sqlx.Tx) error) error {
	return pgdb.InTx(ctx, txBeginner{db: s.store.db, opts: opts}, fn)
}

// txBeginner begins transactions with fixed options.
type txBeginner struct {
	db   *sqlx.DB
	opts *sql.TxOptions
}

func (b txBeginner) BeginTxx(ctx context.Context, _ *sql.TxOptions) (*sqlx.Tx, error) {
	return b.db.BeginTxx(ctx, b.opts)
}

// withAttempts loads the attempts of one app's events.
func (s *Service) withAttempts(ctx context.Context, tx *sqlx.Tx, rows []eventRow) ([]EventWithAttempts, error) {
	out := make([]EventWithAttempts, 0, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	eventIDs := make([]string, len(rows))
	for i, r := range rows {
		eventIDs[i] = r.EventID
	}
	// An app belongs to one merchant, so its events share the shard key.
	attempts, err := s.store.attempts(ctx, tx, rows[0].MerchantID, eventIDs)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		e := EventWithAttempts{ID: r.EventID, Type: r.Type, AppID: r.AppID, MerchantID: r.MerchantID,
			TradeNo: r.TradeNo, RefundNo: r.RefundNo, Status: r.Status, Payload: r.Payload, CreatedAt: r.CreatedAt}
		if r.NextAttemptAt != nil {
			e.NextAttemptAt = *r.NextAttemptAt
		}
		for _, a := range attempts[r.EventID] {
			at := Attempt{Number: a.Attempt, At: a.AttemptedAt, Result: a.Result, HTTPStatus: a.HTTPStatus,
				Error: a.Error, Duration: time.Duration(a.DurationMS) * time.Millisecond}
			if at.Result == ResultSending {
				at.Error = "in progress"
				if r.Status != StatusSending || at.Number != r.Attempts {
					at.Error = "no outcome recorded: the dispatcher stopped during the attempt"
				}
			}
			e.Attempts = append(e.Attempts, at)
		}
		out = append(out, e)
	}
	return out, nil
}
