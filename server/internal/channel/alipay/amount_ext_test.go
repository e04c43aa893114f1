package alipay_test

import (
	"errors"
	"testing"

	"github.com/paycenter/paycenter/server/internal/channel/alipay"
)

func TestFormatYuan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fen  int64
		want string
	}{
		{1, "0.01"},
		{10, "0.10"},
		{100, "1.00"},
		{1234, "12.34"},
		{123456, "1234.56"},
		{alipay.MaxAmount, "100000000.00"},
	} {
		got, err := alipay.FormatYuan(tc.fen)
		if err != nil || got != tc.want {
			t.Errorf("FormatYuan(%d) = %q, %v; want %q", tc.fen, got, err, tc.want)
		}
		back, err := alipay.ParseYuan(got)
		if err != nil || back != tc.fen {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d", got, back, err, tc.fen)
		}
	}
	for _, fen := range []int64{0, -1, alipay.MaxAmount + 1} {
		if _, err := alipay.FormatYuan(fen); !errors.Is(err, alipay.ErrBadAmount) {
			t.Errorf("FormatYuan(%d): %v", fen, err)
		}
	}
}

func TestParseYuan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0.01", 1},
		{"0.00", 0},
		{"0", 0},
		{"12", 1200},
		{"12.3", 1230},
		{"12.34", 1234},
		{"1234.56", 123456},
		{"100000000.00", 10_000_000_000},
		{"0.29", 29}, // 0.29*100 is 28.999999999999996 in floating point
		{"19.99", 1999},
	} {
		got, err := alipay.ParseYuan(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "1.234", "-1", "+1", "1e3", "1.", ".5", "01.00", "1,00", " 1", "1.2.3", "abc", "12.3a", "9999999999999"} {
		if got, err := alipay.ParseYuan(in); !errors.Is(err, alipay.ErrBadAmount) {
			t.Errorf("ParseYuan(%q) = %d, %v; want ErrBadAmount", in, got, err)
		}
	}
}
