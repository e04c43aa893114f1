package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/paycenter/paycenter/server/internal/sandbox"
)

// RSA key generation dominates test time on two cores, so the tests share a
// small pool of keys generated once; every test still gets its own sandbox.
var (
	keysOnce sync.Once
	keys     []sandbox.KeyPair
	keysErr  error
)

const (
	keyAlipaySandbox = iota
	keyAlipayApp
	keyWechatSandbox
	keyWechatMerchant
	keyStranger // registered nowhere: signs requests that must be rejected
	keyCount
)

func testKey(t testing.TB, i int) sandbox.KeyPair {
	t.Helper()
	keysOnce.Do(func() {
		keys = make([]sandbox.KeyPair, keyCount)
		var wg sync.WaitGroup
		errs := make([]error, keyCount)
		for i := range keys {
			wg.Go(func() { keys[i], errs[i] = sandbox.GenerateKeyPair() })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				keysErr = err
			}
		}
	})
	if keysErr != nil {
		t.Fatalf("generate keys: %v", keysErr)
	}
	return keys[i]
}

// fastRetries compresses the channels' hour-long retry schedules.
var fastRetries = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}

func testOptions(t testing.TB, key int) sandbox.Options {
	return sandbox.Options{
		PrivateKeyPEM: testKey(t, key).PrivateKeyPEM,
		Logger:        testLogger(t),
		RetrySchedule: fastRetries,
		ReorderHold:   time.Second,
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// receiver is a merchant's notify endpoint: it hands every request to check
// and answers what check returns.
type receiver struct {
	*httptest.Server
	requests chan *http.Request
}

// newReceiver starts a notify endpoint. answer decides the response from the
// request (the body stays readable for the test, which gets a copy).
func newReceiver(t testing.TB, answer func(w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{requests: make(chan *http.Request, 64)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		clone := r.Clone(context.Background())
		clone.Body = io.NopCloser(bytes.NewReader(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		answer(w, r)
		rc.requests <- clone
	}))
	t.Cleanup(rc.Close)
	return rc
}

// next waits for the next notification.
func (rc *receiver) next(t testing.TB) *http.Request {
	t.Helper()
	select {
	case r := <-rc.requests:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5s")
		return nil
	}
}

// none asserts that nothing more arrived.
func (rc *receiver) none(t testing.TB) {
	t.Helper()
	select {
	case r := <-rc.requests:
		t.Fatalf("unexpected notification to %s", r.URL)
	default:
	}
}

func waitIdle(t testing.TB, idle func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := idle(ctx); err != nil {
		t.Fatalf("notifications still pending: %v", err)
	}
}

// postJSON calls a control endpoint and decodes its JSON answer.
func postJSON(t testing.TB, srv *httptest.Server, path string, body any, wantStatus int) map[string]any {
	t.Helper()
	var in io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		in = bytes.NewReader(b)
	}
	resp, err := srv.Client().Post(srv.URL+path, "application/json", in)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("POST %s: status %d, want %d: %s", path, resp.StatusCode, wantStatus, raw)
	}
	out := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("POST %s: %v: %s", path, err, raw)
		}
	}
	return out
}

// getJSON reads a control endpoint into out.
func getJSON(t testing.TB, srv *httptest.Server, path string, out any) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}
