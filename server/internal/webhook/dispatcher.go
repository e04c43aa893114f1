package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxErrorText bounds the error text stored per attempt.
const maxErrorText = 512

// Run delivers due events until ctx is done, then waits for the attempts in flight to be
// recorded (each is bounded by Options.Timeout) and returns nil. Run it once per replica for
// the server's lifetime; any number of Runs may share a database. Database errors are logged
// and retried, never returned.
func (s *Service) Run(ctx context.Context) error {
	n := s.opts.Workers
	slots := make(chan struct{}, n) // a token per idle worker
	for range n {
		slots <- struct{}{}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-slots:
		}
		free := 1
	take:
		for free < n {
			select {
			case <-slots:
				free++
			default:
				break take
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		// Not cancelled with ctx: a claim that commits must hand its events to workers, or
		// they would wait out their lease.
		claimCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		events, err := s.store.claim(claimCtx, s.now(), s.lease, free)
		cancel()
		wait := s.opts.PollInterval
		if err != nil {
			s.logger.Warn("webhook: claim due events", "error", err)
			wait = max(wait, time.Second) // the database is unwell: do not hammer it
		}
		for range free - len(events) {
			slots <- struct{}{}
		}
		for _, e := range events {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { slots <- struct{}{} }()
				// A claimed attempt runs to the end even during shutdown, so that its
				// outcome is recorded rather than left to the lease.
				s.attempt(context.WithoutCancel(ctx), e)
			}()
		}
		if len(events) == free {
			continue // there may be more due events
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-time.After(wait):
		}
	}
}

// attempt sends claimed event e once and records the outcome.
func (s *Service) attempt(ctx context.Context, e eventRow) {
	start := time.Now()
	o := s.send(ctx, e)
	o.duration = time.Since(start)
	o.at = s.now()
	switch {
	case o.result == ResultDelivered:
		o.status = StatusDelivered
	case o.result == ResultNoURL || e.Attempts >= e.MaxAttempts:
		o.status = StatusFailed
	default:
		o.status = StatusPending
		next := o.at.Add(s.schedule[min(e.Attempts, len(s.schedule))-1])
		o.next = &next
	}
	s.metrics.observe(o)
	recordCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.store.finish(recordCtx, e, o); err != nil {
		// The lease runs out and another attempt follows; the attempt shows as interrupted.
		s.logger.Error("webhook: record attempt", "event_id", e.EventID, "attempt", e.Attempts, "error", err)
	}
	log := s.logger.Debug
	if o.status == StatusFailed && o.result != ResultNoURL {
		log = s.logger.Info
	}
	log("webhook attempt", "event_id", e.EventID, "app_id", e.AppID, "attempt", e.Attempts,
		"result", o.result, "http_status", o.httpStatus, "status", o.status, "error", o.errText)
}

// send POSTs e's payload to its app's webhook URL, signed with the app's secret.
func (s *Service) send(ctx context.Context, e eventRow) outcome {
	targetCtx, cancel := context.WithTimeout(ctx, targetTimeout)
	url, secret, err := s.targets.WebhookTarget(targetCtx, e.AppID)
	cancel()
	if err != nil {
		// The cause may be internal (a database or key error): log it, show the app less.
		s.logger.Warn("webhook: look up target", "app_id", e.AppID, "error", err)
		return outcome{result: ResultTargetError, errText: "could not read the app's webhook settings"}
	}
	if url == "" {
		return outcome{result: ResultNoURL, errText: "the app has no webhook URL"}
	}
	ctx, cancel = context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	body := []byte(e.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return outcome{result: ResultNetworkError, errText: clean("bad webhook URL: " + err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "paycenter-webhook/1")
	req.Header.Set("Paycenter-Event-Id", e.EventID)
	req.Header.Set("Paycenter-Signature", Sign(secret, s.now(), body))
	res, err := s.client.Do(req)
	if err != nil {
		return outcome{result: ResultNetworkError, errText: clean(err.Error())}
	}
	defer res.Body.Close()
	// Read a bounded amount: a snippet for the error text, the rest so the connection can
	// be reused; a longer answer is cut off.
	snippet, _ := io.ReadAll(io.LimitReader(res.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxResponseRead))
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return outcome{result: ResultDelivered, httpStatus: res.StatusCode}
	}
	msg := fmt.Sprintf("HTTP %d", res.StatusCode)
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		msg += " (redirects are not followed)"
	}
	if text := strings.TrimSpace(string(snippet)); text != "" {
		msg += ": " + text
	}
	return outcome{result: ResultHTTPError, httpStatus: res.StatusCode, errText: clean(msg)}
}

// clean makes s storable and readable: valid UTF-8 without control characters (PostgreSQL
// text cannot hold NUL), at most maxErrorText bytes.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
