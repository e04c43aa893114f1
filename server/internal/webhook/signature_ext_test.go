package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paycenter/paycenter/server/internal/webhook"
)

func TestVerifyAcceptsOnlyFreshSignaturesOfTheBody(t *testing.T) {
	const secret = "whsec_abc"
	body := []byte(`{"id":"evt_1","type":"payment.succeeded","created_at":"2030-01-01T00:00:00Z","data":{"amount":100}}`)
	signedAt := time.Unix(1_900_000_000, 0)
	header := webhook.Sign(secret, signedAt, body)
	other := webhook.Sign("whsec_old", signedAt, body)
	_, v1, _ := strings.Cut(header, ",")

	for name, tc := range map[string]struct {
		secret, header string
		body           []byte
		now            time.Time
		want           error
	}{
		"valid":              {secret, header, body, signedAt.Add(time.Minute), nil},
		"several signatures": {secret, other + "," + v1, body, signedAt, nil},
		"tampered body":      {secret, header, []byte(strings.Replace(string(body), "100", "900", 1)), signedAt, webhook.ErrBadSignature},
		"wrong secret":       {"whsec_other", header, body, signedAt, webhook.ErrBadSignature},
		"stale":              {secret, header, body, signedAt.Add(6 * time.Minute), webhook.ErrStaleSignature},
		"from the future":    {secret, header, body, signedAt.Add(-6 * time.Minute), webhook.ErrStaleSignature},
		"timestamp changed":  {secret, strings.Replace(header, "t=1900000000", "t=1900000060", 1), body, signedAt, webhook.ErrBadSignature},
		"no timestamp":       {secret, v1, body, signedAt, webhook.ErrBadSignature},
		"no signature":       {secret, "t=1900000000", body, signedAt, webhook.ErrBadSignature},
		"garbage":            {secret, "nonsense", body, signedAt, webhook.ErrBadSignature},
		"empty":              {secret, "", body, signedAt, webhook.ErrBadSignature},
	} {
		t.Run(name, func(t *testing.T) {
			err := webhook.Verify(tc.secret, tc.header, tc.body, 5*time.Minute, tc.now)
			if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if !strings.HasPrefix(header, "t=1900000000,v1=") || len(header) != len("t=1900000000,v1=")+64 {
		t.Fatalf("header = %q", header)
	}
}
