// Package secret encrypts secrets at rest with AES-256-GCM under master keys from the
// environment. Every ciphertext records the id of its key, so keys can rotate: new data is
// sealed with the current key while older keys still open old data.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Keyring holds master keys by id; the first is current.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ParseKeyring reads "id:base64key,id:base64key,..." (the first is current); every key is 32
// bytes of standard or URL base64.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(spec, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("master key %d: want id:base64key with an id of 1 to 32 of [A-Za-z0-9_-]", i+1)
		}
		raw, err := decodeBase64(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("master key %q: want 32 bytes in base64", id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("master key %q appears twice", id)
		}
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		k.aeads[id] = aead
		if i == 0 {
			k.current = id
		}
	}
	return k, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// NewKeySpec returns a fresh "id:base64key" for development set-ups.
func NewKeySpec(id string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return id + ":" + base64.StdEncoding.EncodeToString(b)
}

// Seal encrypts plaintext under the current key. aad binds the ciphertext to its row (e.g.
// the app id and column), so a ciphertext copied to another row does not open.
func (k *Keyring) Seal(plaintext, aad []byte) (keyID string, ciphertext []byte) {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return k.current, aead.Seal(nonce, nonce, plaintext, aad)
}

// Open decrypts a ciphertext sealed under keyID with the same aad.
func (k *Keyring) Open(keyID string, ciphertext, aad []byte) ([]byte, error) {
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("master key %q is not configured", keyID)
	}
	n := aead.NonceSize()
	if len(ciphertext) < n {
		return nil, errors.New("ciphertext too short")
	}
	pt, err := aead.Open(nil, ciphertext[:n], ciphertext[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("decrypt with master key %q: %w", keyID, err)
	}
	return pt, nil
}
