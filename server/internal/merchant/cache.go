package merchant

import (
	"sync"
	"time"
)

// cacheTTL bounds how long a replica uses a channel configuration or webhook target it read:
// changes made through this replica apply at once (the entry is dropped), changes made through
// another replica within this time.
const cacheTTL = 5 * time.Second

// ttlCache saves the database reads and decryptions that every payment, callback and webhook
// would otherwise repeat. Values must be safe to share (callers get copies via clone).
type ttlCache[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func (c *ttlCache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || now.After(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[K, V]) put(k K, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) > 10000 {
		c.entries = map[K]ttlEntry[V]{}
	}
	c.entries[k] = ttlEntry[V]{v: v, expires: now.Add(cacheTTL)}
}

func (c *ttlCache[K, V]) drop(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

type credentialsKey struct {
	appID   string
	channel Channel
}

// webhookTarget is where an app's webhooks go and the secret that signs them.
type webhookTarget struct{ url, secret string }

// clone copies the settings so that callers cannot change the cached ones.
func (c ChannelConfig) clone() ChannelConfig {
	if c.Alipay != nil {
		a := *c.Alipay
		c.Alipay = &a
	}
	if c.WechatPay != nil {
		w := *c.WechatPay
		c.WechatPay = &w
	}
	return c
}
