package pgbench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The baseline counts only what pgbench did after its warm-up: its throughput is over the
// measured window, and the transactions of the warm-up are not in it.
func TestRunMeasuresOnlyAfterTheWarmup(t *testing.T) {
	url := pgtest.URL(t)
	db := pgtest.Open(t, url, 2)
	bin, err := BinDir("")
	if err != nil {
		t.Fatal(err)
	}
	const warmup, measured = 2 * time.Second, 2 * time.Second
	r, err := Run(context.Background(), db, Options{BinDir: bin, URL: url, Clients: 4, Accounts: 100,
		Warmup: warmup, Duration: measured})
	if err != nil {
		t.Fatal(err)
	}
	var entries int
	if err := db.Get(&entries, `SELECT count(*) FROM pgbench_transfer_entries`); err != nil {
		t.Fatal(err)
	}
	all := entries / 2 // two entries per transfer
	if n := len(r.Latencies); n == 0 || n >= all {
		t.Fatalf("measured %d transfers of the %d pgbench committed: want some, and not the warm-up's", n, all)
	}
	// About half the run is warm-up (pgbench's -T rounds up to whole seconds).
	if share := float64(len(r.Latencies)) / float64(all); share < 0.25 || share > 0.75 {
		t.Errorf("measured %.0f%% of the transfers, want about half", share*100)
	}
	if perWindow := r.TPS * measured.Seconds(); perWindow < 0.8*float64(len(r.Latencies)) || perWindow > 1.25*float64(len(r.Latencies)) {
		t.Errorf("TPS %.0f over %s does not match the %d transfers measured", r.TPS, measured, len(r.Latencies))
	}
	if r.Failed != 0 {
		t.Errorf("%d failed transfers", r.Failed)
	}
}

func TestTransactionsSinceSkipsEarlierAndFailedOnes(t *testing.T) {
	dir := t.TempDir()
	logs := map[string]string{
		"log.1": "0 0 1500 0 1700000000 100000\n" + // before from
			"0 1 2500 0 1700000001 200000\n" +
			"0 2 failed 0 1700000001 300000\n",
		"log.1.1": "1 0 3500 0 1700000002 400000\n",
	}
	for name, text := range logs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lat, last, err := transactionsSince(dir, time.Unix(1700000001, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 2 || lat[0]+lat[1] != 6*time.Millisecond {
		t.Errorf("latencies %v, want 2.5ms and 3.5ms", lat)
	}
	if want := time.Unix(1700000002, 400000*1000); !last.Equal(want) {
		t.Errorf("last %v, want %v", last, want)
	}
}
