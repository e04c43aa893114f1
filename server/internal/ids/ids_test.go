package ids

import (
	"regexp"
	"sort"
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
