package merchant

import (
	"sync"
	"time"
)

// credentialsTTL bounds how long a replica uses a channel configuration it decrypted: changes
// made through this replica apply at once (the entry is dropped), changes made through another
// replica within this time.
const credentialsTTL = 5 * time.Second

type credentialsKey struct {
	appID   string
	channel Channel
}

type credentialsEntry struct {
	cfg     ChannelConfig
	expires time.Time
}

// credentialsCache saves a database read, an AES-GCM decryption and a JSON decoding on every
// payment and callback.
type credentialsCache struct {
	mu      sync.Mutex
	entries map[credentialsKey]credentialsEntry
}

func (c *credentialsCache) get(k credentialsKey, now time.Time) (ChannelConfig, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || now.After(e.expires) {
		return ChannelConfig{}, false
	}
	return e.cfg.clone(), true
}

func (c *credentialsCache) put(k credentialsKey, cfg ChannelConfig, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) > 10000 {
		c.entries = map[credentialsKey]credentialsEntry{}
	}
	c.entries[k] = credentialsEntry{cfg: cfg.clone(), expires: now.Add(credentialsTTL)}
}

func (c *credentialsCache) drop(k credentialsKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

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
