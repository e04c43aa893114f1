// Package page implements cursor pagination for List RPCs: a page token is the sort key of the
// previous page's last item, base64url-encoded so that callers treat it as opaque.
package page

import (
	"encoding/base64"

	"github.com/paycenter/paycenter/server/internal/errs"
)

// Request is one List call's page_size and page_token.
type Request struct {
	Size  int32
	Token string
}

// Parse validates the request: size 0 means def, otherwise 1..max. It returns the size and
// the key after which the page starts ("" for the first page).
func (r Request) Parse(def, max int) (size int, after string, err error) {
	switch {
	case r.Size == 0:
		size = def
	case r.Size < 0 || int(r.Size) > max:
		return 0, "", errs.Invalid("page_size", "must be between 0 and %d", max)
	default:
		size = int(r.Size)
	}
	if r.Token == "" {
		return size, "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(r.Token)
	if err != nil || len(b) == 0 || len(b) > 256 {
		return 0, "", errs.Invalid("page_token", "is not a token from a previous page")
	}
	return size, string(b), nil
}

// Cut trims items fetched with one extra row (LIMIT size+1) to size and returns the token of
// the next page, empty when this is the last one.
func Cut[T any](items []T, size int, key func(T) string) ([]T, string) {
	if len(items) <= size {
		return items, ""
	}
	items = items[:size]
	return items, base64.RawURLEncoding.EncodeToString([]byte(key(items[size-1])))
}
