package sandbox

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// rsaBits is the key size both channels use (WeChat Pay names it in its
// signature scheme, SHA256-RSA2048).
const rsaBits = 2048

// KeyPair is an RSA key pair as PEM text: the private key in PKCS#8
// ("PRIVATE KEY") and the public key in PKIX ("PUBLIC KEY"), the forms both
// SDKs load without conversion.
type KeyPair struct {
	PrivateKeyPEM string
	PublicKeyPEM  string
}

// GenerateKeyPair returns a fresh 2048-bit RSA key pair.
func GenerateKeyPair() (KeyPair, error) {
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate rsa key: %w", err)
	}
	return keyPairOf(key)
}

func keyPairOf(key *rsa.PrivateKey) (KeyPair, error) {
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal private key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal public key: %w", err)
	}
	return KeyPair{
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})),
		PublicKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}, nil
}

// loadOrGenerateKey parses privateKeyPEM, or generates a key when it is
// empty, so a sandbox can keep its identity across restarts when asked to.
func loadOrGenerateKey(privateKeyPEM string) (*rsa.PrivateKey, error) {
	if privateKeyPEM == "" {
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return ParsePrivateKey(privateKeyPEM)
}

// keyDER accepts PEM or the bare base64 body that the Alipay console shows.
func keyDER(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "-----") {
		block, _ := pem.Decode([]byte(text))
		if block == nil {
			return nil, errors.New("invalid PEM")
		}
		return block.Bytes, nil
	}
	der, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, errors.New("neither PEM nor base64")
	}
	return der, nil
}

// ParsePrivateKey parses an RSA private key in PKCS#8 or PKCS#1 form.
func ParsePrivateKey(text string) (*rsa.PrivateKey, error) {
	der, err := keyDER(text)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("parse private key: not an RSA key")
	}
	return key, nil
}

// ParsePublicKey parses an RSA public key in PKIX or PKCS#1 form.
func ParsePublicKey(text string) (*rsa.PublicKey, error) {
	der, err := keyDER(text)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	if key, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	key, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("parse public key: not an RSA key")
	}
	return key, nil
}

// signRSA2 is SHA256withRSA (PKCS#1 v1.5), base64: the scheme Alipay calls
// RSA2 and WeChat Pay calls SHA256-RSA2048.
func signRSA2(key *rsa.PrivateKey, message string) (string, error) {
	sum := sha256.Sum256([]byte(message))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

func verifyRSA2(key *rsa.PublicKey, message, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return errors.New("signature is not base64")
	}
	sum := sha256.Sum256([]byte(message))
	return rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig)
}

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n characters from alphabet, drawn from crypto/rand:
// nonces and keys must not repeat across sandboxes or runs. (The modulo bias
// is irrelevant for nonces.)
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
