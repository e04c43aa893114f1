package server

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target for a server process: collect when the heap
// has grown by 400% of what survived the last collection, not Go's default 100%. The
// server's live heap is a few megabytes (3 MB under benchpayments' load), so the default
// collects very often: collection was a sixth of the Go CPU of `make bench-ledger`. At 400,
// that CPU per transfer fell by 14–20% for about 12 MB more resident memory (benchpayments'
// server: 31 → 44 MB).
const GCPercent = 400

// TuneGC sets GCPercent, unless the operator chose with GOGC. Process-wide: call it from main.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}
