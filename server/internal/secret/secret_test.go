package secret

import (
	"bytes"
	"strings"
	"testing"
)

func TestSealOpenAndRotation(t *testing.T) {
	oldSpec := NewKeySpec("k1")
	old, err := ParseKeyring(oldSpec)
	if err != nil {
		t.Fatal(err)
	}
	id, ct := old.Seal([]byte("private key"), []byte("app_1/alipay"))
	if id != "k1" || bytes.Contains(ct, []byte("private key")) {
		t.Fatalf("sealed under %q: %q", id, ct)
	}
	rotated, err := ParseKeyring(NewKeySpec("k2") + "," + oldSpec)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rotated.Open(id, ct, []byte("app_1/alipay"))
	if err != nil || string(pt) != "private key" {
		t.Fatalf("old ciphertext after rotation: %q, %v", pt, err)
	}
	if newID, _ := rotated.Seal([]byte("x"), nil); newID != "k2" {
		t.Fatalf("new data sealed under %q, want k2", newID)
	}
	if _, err := rotated.Open(id, ct, []byte("app_2/alipay")); err == nil {
		t.Fatal("ciphertext opened under another row's associated data")
	}
}

func TestParseKeyringRejects(t *testing.T) {
	for name, spec := range map[string]string{
		"empty":     "",
		"no id":     "c2VjcmV0",
		"short key": "k1:c2VjcmV0",
		"bad id":    "k 1:" + strings.Split(NewKeySpec("x"), ":")[1],
		"duplicate": NewKeySpec("a") + "," + NewKeySpec("a"),
	} {
		if _, err := ParseKeyring(spec); err == nil {
			t.Errorf("%s: ParseKeyring(%q) accepted", name, spec)
		}
	}
}
