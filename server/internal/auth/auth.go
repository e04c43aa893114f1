// Package auth authenticates callers by their bearer key and carries who they are through the
// request context. Domains decide what a caller may do; auth only says who the caller is.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/paycenter/paycenter/server/internal/errs"
	"github.com/paycenter/paycenter/server/internal/ids"
)

// Kind is the kind of credential a caller presented.
type Kind int

const (
	// KindAdmin is an operator key from configuration: merchant management, ledger writes.
	KindAdmin Kind = iota + 1
	// KindApp is an app's API key: payments, refunds, reads of its own merchant.
	KindApp
	// KindDevice is a collector phone's key.
	KindDevice
)

// Key prefixes tell the kinds apart without a database lookup.
const (
	AppKeyPrefix    = "pk_"
	DeviceKeyPrefix = "dk_"
)

// Principal is an authenticated caller.
type Principal struct {
	Kind       Kind
	MerchantID string // empty for admins
	AppID      string // for app keys
	DeviceID   string // for device keys
	// MerchantFrozen is the merchant's state when the key was checked.
	MerchantFrozen bool
}

// IsAdmin reports whether p is an operator.
func (p Principal) IsAdmin() bool { return p.Kind == KindAdmin }

// CanSeeMerchant reports whether p may read merchantID's data.
func (p Principal) CanSeeMerchant(merchantID string) bool {
	return p.Kind == KindAdmin || (p.MerchantID != "" && p.MerchantID == merchantID)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller, if the request was authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Caller returns the authenticated caller or ErrUnauthenticated.
func Caller(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, &errs.Error{Kind: errs.ErrUnauthenticated, Message: "missing API key"}
	}
	return p, nil
}

// RequireAdmin returns the caller if it is an operator.
func RequireAdmin(ctx context.Context) (Principal, error) {
	p, err := Caller(ctx)
	if err != nil {
		return p, err
	}
	if !p.IsAdmin() {
		return p, errs.PermissionDenied("this call needs an admin key")
	}
	return p, nil
}

// RequireApp returns the caller if it is an app.
func RequireApp(ctx context.Context) (Principal, error) {
	p, err := Caller(ctx)
	if err != nil {
		return p, err
	}
	if p.Kind != KindApp {
		return p, errs.PermissionDenied("this call needs an app key")
	}
	return p, nil
}

// HashKey is how app and device keys are stored: keys are 238 random bits, so SHA-256 is
// enough and keeps the per-request lookup cheap.
func HashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// NewAppKey returns a fresh app key and its display prefix.
func NewAppKey() (key, prefix string) {
	key = AppKeyPrefix + ids.Secret(40)
	return key, key[:len(AppKeyPrefix)+6]
}

// NewDeviceKey returns a fresh device key.
func NewDeviceKey() string { return DeviceKeyPrefix + ids.Secret(40) }

// Resolver finds the caller a key belongs to.
type Resolver interface {
	// ResolveAppKey returns the app's principal, or errs.ErrNotFound.
	ResolveAppKey(ctx context.Context, hash []byte) (Principal, error)
}

// DeviceResolver finds the phone a device key belongs to.
type DeviceResolver interface {
	// ResolveDeviceKey returns the device's principal, or errs.ErrNotFound.
	ResolveDeviceKey(ctx context.Context, hash []byte) (Principal, error)
}

// Authenticator checks bearer keys.
type Authenticator struct {
	adminKeys [][]byte
	apps      Resolver
	devices   DeviceResolver
}

// NewAuthenticator checks admin keys against adminKeys and other keys through the resolvers
// (devices may be nil until phones are supported).
func NewAuthenticator(adminKeys []string, apps Resolver, devices DeviceResolver) *Authenticator {
	a := &Authenticator{apps: apps, devices: devices}
	for _, k := range adminKeys {
		a.adminKeys = append(a.adminKeys, []byte(k))
	}
	return a
}

var errBadKey = &errs.Error{Kind: errs.ErrUnauthenticated, Message: "invalid API key"}

// Authenticate returns the principal for an Authorization header value.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (Principal, error) {
	scheme, key, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return Principal{}, &errs.Error{Kind: errs.ErrUnauthenticated, Message: `missing API key: send "Authorization: Bearer <key>"`}
	}
	switch {
	case strings.HasPrefix(key, AppKeyPrefix):
		p, err := a.apps.ResolveAppKey(ctx, HashKey(key))
		return p, notFoundIsBadKey(err)
	case strings.HasPrefix(key, DeviceKeyPrefix) && a.devices != nil:
		p, err := a.devices.ResolveDeviceKey(ctx, HashKey(key))
		return p, notFoundIsBadKey(err)
	}
	for _, admin := range a.adminKeys {
		if subtle.ConstantTimeCompare(admin, []byte(key)) == 1 {
			return Principal{Kind: KindAdmin}, nil
		}
	}
	return Principal{}, errBadKey
}

func notFoundIsBadKey(err error) error {
	if err != nil && errorsIs(err, errs.ErrNotFound) {
		return errBadKey
	}
	return err
}
