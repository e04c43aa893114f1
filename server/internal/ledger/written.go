package ledger

import (
	"sync"
	"time"
)

// writtenAccounts remembers the accounts as this server's group commits left them, with
// their row versions (xmin), so that a batch whose accounts it all holds can skip its read:
// it locks them and proves their versions unchanged in the same round trip as its write (see
// Store.writeBatch). That halves a batch's round trips. Anything else that changed an account
// since (a payment's transaction, a freeze, another replica) changed its row version, so the
// proof fails, the batch is retried with a read, and the batch decides on the rows it read,
// exactly as without the cache. The cache only ever saves a round trip; it never decides.
//
// A miss costs the batch two more round trips (its ROLLBACK, then the read), so an account
// that changed behind this server's back is not remembered again for contendedFor: where
// several replicas, or payments, keep writing one account, its batches read first, as they
// did before the cache, instead of missing every time.
//
// A row version is a 32-bit transaction id that wraps around after about four billion
// transactions; entries older than writtenMaxAge are ignored, long before that could happen.
type writtenAccounts struct {
	mu sync.Mutex
	m  map[string]writtenAccount
	// contended holds, for accounts found changed lately, until when they are not remembered.
	contended map[string]time.Time
}

type writtenAccount struct {
	account Account
	version int64
	at      time.Time
}

const (
	writtenMaxAge      = time.Hour
	writtenMaxAccounts = 20_000 // a few megabytes
	contendedFor       = 100 * time.Millisecond
)

// lookup returns copies of the accounts of ids and their versions, and whether it holds
// every one of them.
func (w *writtenAccounts) lookup(ids []string) (map[string]*Account, map[string]int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	accounts, versions := make(map[string]*Account, len(ids)), make(map[string]int64, len(ids))
	for _, id := range ids {
		e, ok := w.m[id]
		if !ok || time.Since(e.at) > writtenMaxAge {
			return nil, nil, false
		}
		a := e.account
		accounts[id], versions[id] = &a, e.version
	}
	return accounts, versions, true
}

// remember stores the accounts a batch locked as it committed them, with their versions.
func (w *writtenAccounts) remember(accounts map[string]*Account, versions map[string]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil || len(w.m)+len(accounts) > writtenMaxAccounts {
		w.m = make(map[string]writtenAccount, len(accounts))
	}
	now := time.Now()
	for id, a := range accounts {
		if until, ok := w.contended[id]; ok {
			if now.Before(until) {
				continue
			}
			delete(w.contended, id)
		}
		w.m[id] = writtenAccount{account: *a, version: versions[id], at: now}
	}
}

// missed drops the accounts of a batch that found one of them changed (or a transfer id
// taken), and keeps them out for contendedFor.
func (w *writtenAccounts) missed(ids []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.contended == nil || len(w.contended)+len(ids) > writtenMaxAccounts {
		w.contended = make(map[string]time.Time, len(ids))
	}
	until := time.Now().Add(contendedFor)
	for _, id := range ids {
		delete(w.m, id)
		w.contended[id] = until
	}
}
