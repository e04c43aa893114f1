package alipay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxAmount is Alipay's upper bound for one amount: 100,000,000.00 yuan, in fen.
const MaxAmount = 100_000_000_00

// ErrBadAmount: an amount is not a valid Alipay yuan amount.
var ErrBadAmount = errors.New("invalid alipay amount")

// FormatYuan renders fen as Alipay's yuan decimal with two places ("0.01", "1234.56"),
// with integer arithmetic only. Alipay accepts 0.01 to 100000000.00.
func FormatYuan(fen int64) (string, error) {
	if fen < 1 || fen > MaxAmount {
		return "", fmt.Errorf("%w: %d fen is outside 1..%d", ErrBadAmount, fen, int64(MaxAmount))
	}
	return fmt.Sprintf("%d.%02d", fen/100, fen%100), nil
}

// ParseYuan reads an Alipay yuan decimal ("12.34", "12.3", "12", "0.00") back into fen,
// exactly: at most two decimals, no sign, no exponent, no leading zeros, no floats.
func ParseYuan(s string) (int64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	switch {
	case whole == "" || len(whole) > 12 || !allDigits(whole) || (len(whole) > 1 && whole[0] == '0'):
		return 0, fmt.Errorf("%w: %q", ErrBadAmount, s)
	case hasDot && (frac == "" || len(frac) > 2 || !allDigits(frac)):
		return 0, fmt.Errorf("%w: %q has more than two decimals or none after the point", ErrBadAmount, s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	yuan, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrBadAmount, s)
	}
	cents, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrBadAmount, s)
	}
	return yuan*100 + cents, nil // 12 digits of yuan cannot overflow int64 fen
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
