package channel

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// maxClients bounds a ClientCache: one entry per app, replaced when its configuration
// changes, so it only needs a bound against pathological numbers of apps.
const maxClients = 4096

// ClientCache keeps one SDK client per app so that a request does not parse RSA keys. An
// entry is reused only while the app's configuration is unchanged: its Fingerprint covers
// UpdatedAt and every setting (secrets included, as a SHA-256 digest that never leaves
// memory), so a rotated key is picked up even if UpdatedAt did not move.
type ClientCache[T any] struct {
	mu      sync.Mutex
	entries map[string]cacheEntry[T]
}

type cacheEntry[T any] struct {
	fingerprint [sha256.Size]byte
	client      T
}

// Get returns the client cached under key for this fingerprint.
func (c *ClientCache[T]) Get(key string, fp [sha256.Size]byte) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && e.fingerprint == fp {
		return e.client, true
	}
	var zero T
	return zero, false
}

// Put caches client under key, replacing an older version of the configuration.
func (c *ClientCache[T]) Put(key string, fp [sha256.Size]byte, client T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]cacheEntry[T]{}
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= maxClients {
		for k := range c.entries { // evict an arbitrary entry: it is rebuilt on its next use
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = cacheEntry[T]{fingerprint: fp, client: client}
}

// Len is the number of cached clients.
func (c *ClientCache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Fingerprint identifies one version of a configuration: its update time and settings.
func Fingerprint(updatedAt time.Time, settings ...string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(updatedAt.UnixNano()))
	h.Write(n[:])
	for _, f := range settings {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}
