package ids

import (
	"math/big"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestTokensSortByTimeAndAreUnique(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var tokens []string
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tok := Token(start.Add(time.Duration(i) * time.Millisecond))
		if !regexp.MustCompile(`^[0-9A-Za-z]{22}$`).MatchString(tok) {
			t.Fatalf("token %q is not 22 of [0-9A-Za-z]", tok)
		}
		if seen[tok] {
			t.Fatalf("duplicate token %q", tok)
		}
		seen[tok] = true
		tokens = append(tokens, tok)
	}
	if !sort.StringsAreSorted(tokens) {
		t.Fatal("tokens made later do not sort later")
	}
}

func TestSecretAlphabetAndLength(t *testing.T) {
	s := Secret(40)
	if !regexp.MustCompile(`^[0-9A-Za-z]{40}$`).MatchString(s) {
		t.Fatalf("secret %q", s)
	}
	if Secret(40) == s {
		t.Fatal("two secrets are equal")
	}
}

// A token is the 128-bit number (milliseconds << 80 | random) in base 62: decoding it gives
// back the time.
func TestTokenEncodesItsTime(t *testing.T) {
	for _, at := range []time.Time{time.UnixMilli(0), time.Date(2026, 11, 23, 18, 0, 0, 123e6, time.UTC), time.UnixMilli(1<<48 - 1)} {
		tok := Token(at)
		n := new(big.Int)
		for _, c := range tok {
			n.Mul(n, big.NewInt(62))
			n.Add(n, big.NewInt(int64(strings.IndexRune(alphabet, c))))
		}
		if got := n.Rsh(n, 80).Int64(); got != at.UnixMilli() {
			t.Fatalf("token %q of %v decodes to %d ms, want %d", tok, at, got, at.UnixMilli())
		}
	}
}
