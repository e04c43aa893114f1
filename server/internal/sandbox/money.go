package sandbox

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxYuanFen is Alipay's upper bound for one amount: 100,000,000.00 yuan.
const maxYuanFen = 100_000_000_00

var errBadAmount = errors.New("amount must be a yuan decimal with at most two decimals, between 0.01 and 100000000")

// parseYuan converts Alipay's decimal yuan string ("12.34") into fen without
// going through floating point.
func parseYuan(s string) (int64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 9 || !allDigits(whole) || (len(whole) > 1 && whole[0] == '0') {
		return 0, errBadAmount
	}
	if hasDot && (len(frac) == 0 || len(frac) > 2 || !allDigits(frac)) {
		return 0, errBadAmount
	}
	for len(frac) < 2 {
		frac += "0"
	}
	yuan, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, errBadAmount
	}
	cents, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, errBadAmount
	}
	fen := yuan*100 + cents
	if fen < 1 || fen > maxYuanFen {
		return 0, errBadAmount
	}
	return fen, nil
}

// formatYuan renders fen the way Alipay does: always two decimals.
func formatYuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
