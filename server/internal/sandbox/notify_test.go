package sandbox

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func testMessage(id, url string) *message {
	return &message{
		id: id, outTradeNo: "T" + id, event: "TEST", url: url,
		build: func(ctx context.Context, forged bool) (*http.Request, error) {
			body := id
			if forged {
				body += "-forged"
			}
			return http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		},
		accepted: func(status int, _ []byte) bool { return status == http.StatusOK },
	}
}

func newTestNotifier(t *testing.T, schedule []time.Duration, hold time.Duration) *notifier {
	t.Helper()
	n := newNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)), &http.Client{Timeout: 5 * time.Second}, schedule, hold)
	t.Cleanup(n.close)
	return n
}

func waitIdleTest(t *testing.T, n *notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.waitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNotifierRetriesOnScheduleThenGivesUp(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	n := newTestNotifier(t, []time.Duration{5 * time.Millisecond, 5 * time.Millisecond}, time.Second)
	n.enqueue(testMessage("1", srv.URL))
	waitIdleTest(t, n)
	if got := hits.Load(); got != 3 {
		t.Fatalf("attempts = %d, want 3 (first + two retries)", got)
	}
	ds := n.deliveries()
	if len(ds) != 3 || ds[2].Attempt != 3 || ds[2].Accepted || ds[2].StatusCode != http.StatusInternalServerError {
		t.Fatalf("deliveries: %+v", ds)
	}
}

func TestNotifierReorderFallsBackToHold(t *testing.T) {
	t.Parallel()
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer srv.Close()
	n := newTestNotifier(t, nil, 50*time.Millisecond)
	n.faultNext(Fault{Reorder: true})
	start := time.Now()
	n.enqueue(testMessage("1", srv.URL))
	if body := <-got; body != "1" || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("held notification arrived after %v", time.Since(start))
	}
}

func TestNotifierCloseAbortsAttemptInFlight(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	n := newTestNotifier(t, nil, time.Second)
	n.enqueue(testMessage("1", srv.URL))
	<-arrived
	closed := make(chan struct{})
	go func() { n.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("close did not abort the attempt in flight")
	}
	select {
	case <-n.done:
	default:
		t.Fatal("delivery goroutine still running after close")
	}
	n.close() // idempotent
}
