package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/paycenter/paycenter/server/internal/errs"
)

// Limits of a request, documented in the contract.
const (
	// MaxTransfersPerRequest bounds CreateTransfers and Post.
	MaxTransfersPerRequest = 1000
	maxReferenceLen        = 128
	maxMetadataEntries     = 32
	maxMetadataKeyLen      = 64
	maxMetadataValueLen    = 1024
	maxDescriptionLen      = 256
	maxReconcileRecords    = 100000
	// settlementPrefix starts the ids of settlement transfers; callers may not use it.
	settlementPrefix = "settle:"
)

// validID reports whether s is 1 to 64 of [0-9A-Za-z_.:-], the shape of every id the
// ledger stores (transfer ids are the caller's; account ids are "acc_..."). It runs several
// times per transfer, so it is a loop rather than a regular expression.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func validCurrencyCode(s string) bool {
	return len(s) == 3 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z' && 'A' <= s[2] && s[2] <= 'Z'
}

func validCurrency(field, s string) error {
	if !validCurrencyCode(s) {
		return errs.Invalid(field, "must be an ISO 4217 code like CNY")
	}
	return nil
}

func validAccountID(field, s string) error {
	if s == "" {
		return errs.Invalid(field, "is required")
	}
	if !validID(s) {
		return errs.Invalid(field, "is not an account id")
	}
	return nil
}

// storable reports whether PostgreSQL can store every string of t (text cannot hold NUL).
// A transfer that is not storable or has a malformed id is refused without being recorded.
func storable(t Transfer) error {
	if !validID(t.ID) {
		return errs.Invalid("transfer_id", "must be 1 to 64 of [0-9A-Za-z_.:-]")
	}
	fields := []struct{ name, value string }{
		{"debit_account_id", t.DebitAccountID}, {"credit_account_id", t.CreditAccountID},
		{"currency", t.Currency}, {"code", string(t.Code)}, {"reference", t.Reference},
		{"pending_transfer_id", t.PendingTransferID},
	}
	for k, v := range t.Metadata {
		fields = append(fields, struct{ name, value string }{"metadata", k + v})
	}
	for _, f := range fields {
		if strings.IndexByte(f.value, 0) >= 0 || !utf8.ValidString(f.value) {
			return errs.Invalid(f.name, "must be valid UTF-8 without NUL characters")
		}
	}
	return nil
}

// validateTransfer checks the shape of a transfer (not its accounts). The error is an
// *errs.FieldError naming the field.
func validateTransfer(t Transfer) error {
	kinds := 0
	for _, b := range []bool{t.Pending, t.PostPending, t.VoidPending} {
		if b {
			kinds++
		}
	}
	if kinds > 1 {
		return errs.Invalid("pending", "at most one of pending, post_pending and void_pending may be set")
	}
	if t.PostPending || t.VoidPending {
		switch {
		case t.PendingTransferID == "":
			return errs.Invalid("pending_transfer_id", "is required to post or void a pending transfer")
		case !validID(t.PendingTransferID):
			return errs.Invalid("pending_transfer_id", "must be 1 to 64 of [0-9A-Za-z_.:-]")
		case t.PendingTransferID == t.ID:
			return errs.Invalid("pending_transfer_id", "must name another transfer")
		case t.Amount < 0:
			return errs.Invalid("amount", "must not be negative")
		case t.DebitAccountID != "" && !validID(t.DebitAccountID):
			return errs.Invalid("debit_account_id", "is not an account id")
		case t.CreditAccountID != "" && !validID(t.CreditAccountID):
			return errs.Invalid("credit_account_id", "is not an account id")
		case t.DebitAccountID != "" && t.DebitAccountID == t.CreditAccountID:
			return errs.Invalid("credit_account_id", "must differ from debit_account_id")
		case t.Currency != "" && !validCurrencyCode(t.Currency):
			return errs.Invalid("currency", "must be an ISO 4217 code like CNY")
		case t.Code != "" && !t.Code.valid():
			return errs.Invalid("code", "must be one of PAYMENT, REFUND, FEE, RECHARGE, SETTLEMENT, ADJUSTMENT, REVERSAL")
		}
	} else {
		if t.PendingTransferID != "" {
			return errs.Invalid("pending_transfer_id", "is only for post_pending and void_pending transfers")
		}
		if t.Amount <= 0 {
			return errs.Invalid("amount", "must be more than zero")
		}
		if err := validAccountID("debit_account_id", t.DebitAccountID); err != nil {
			return err
		}
		if err := validAccountID("credit_account_id", t.CreditAccountID); err != nil {
			return err
		}
		if t.DebitAccountID == t.CreditAccountID {
			return errs.Invalid("credit_account_id", "must differ from debit_account_id")
		}
		if err := validCurrency("currency", t.Currency); err != nil {
			return err
		}
		if !t.Code.valid() {
			return errs.Invalid("code", "must be one of PAYMENT, REFUND, FEE, RECHARGE, SETTLEMENT, ADJUSTMENT, REVERSAL")
		}
	}
	if t.TimeoutSeconds < 0 {
		return errs.Invalid("timeout_seconds", "must not be negative")
	}
	if t.TimeoutSeconds > 0 && !t.Pending {
		return errs.Invalid("timeout_seconds", "is only for pending transfers")
	}
	if n := utf8.RuneCountInString(t.Reference); n > maxReferenceLen || hasControl(t.Reference) {
		return errs.Invalid("reference", "must be at most %d printable characters", maxReferenceLen)
	}
	if len(t.Metadata) > maxMetadataEntries {
		return errs.Invalid("metadata", "must have at most %d entries", maxMetadataEntries)
	}
	for k, v := range t.Metadata {
		if n := utf8.RuneCountInString(k); n < 1 || n > maxMetadataKeyLen || hasControl(k) {
			return errs.Invalid("metadata", "keys must be 1 to %d printable characters", maxMetadataKeyLen)
		}
		if utf8.RuneCountInString(v) > maxMetadataValueLen {
			return errs.Invalid("metadata", "value of %q must be at most %d characters", k, maxMetadataValueLen)
		}
	}
	return nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// fingerprint is the SHA-256 of a transfer's content as requested: the same id with another
// fingerprint is refused. Linked is not content (it describes the request, not the transfer).
func fingerprint(t Transfer) []byte {
	h := sha256.New()
	var n [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	num := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	flag := func(b bool) {
		if b {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
	str(t.ID)
	str(t.DebitAccountID)
	str(t.CreditAccountID)
	num(t.Amount)
	str(t.Currency)
	str(string(t.Code))
	str(t.Reference)
	keys := make([]string, 0, len(t.Metadata))
	for k := range t.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	num(int64(len(keys)))
	for _, k := range keys {
		str(k)
		str(t.Metadata[k])
	}
	flag(t.Pending)
	flag(t.PostPending)
	flag(t.VoidPending)
	str(t.PendingTransferID)
	num(int64(t.TimeoutSeconds))
	return h.Sum(nil)
}
