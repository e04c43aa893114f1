package payment

import (
	"context"
	"testing"
	"time"

	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
)

// Changes wakes exactly the watchers of the payment PostgreSQL names, and every watcher when
// its listening connection comes back after a loss (notifications may have been missed).
func TestChangesWakeTheRightWatchersAndAllAfterReconnecting(t *testing.T) {
	url := pgtest.URL(t)
	db := pgtest.Open(t, url, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := NewChanges(url, nil)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-c.Listening():
	case <-ctx.Done():
		t.Fatal("never listening")
	}
	if !c.Live() {
		t.Fatal("listening, but not live")
	}
	t1, stop1 := c.Subscribe("T1")
	defer stop1()
	t2, stop2 := c.Subscribe("T2")
	defer stop2()
	woken := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(10 * time.Second):
			return false
		}
	}

	if _, err := db.ExecContext(ctx, `SELECT pg_notify('paycenter_payment_changed', 'T1')`); err != nil {
		t.Fatal(err)
	}
	if !woken(t1) {
		t.Fatal("T1's watcher was not woken")
	}
	select {
	case <-t2:
		t.Fatal("T2's watcher was woken by T1's change")
	default:
	}

	// Kill the listening session: the listener reconnects and wakes everyone.
	var killed int
	if err := db.GetContext(ctx, &killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil || killed != 1 {
		t.Fatalf("terminate the listening session: %d sessions, %v", killed, err)
	}
	if !woken(t1) || !woken(t2) {
		t.Fatal("watchers were not woken after the listener reconnected")
	}
}
