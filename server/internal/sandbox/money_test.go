package sandbox

import (
	"testing"
	"time"
)

func TestParseYuan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "12.34", want: 1234},
		{in: "12.3", want: 1230},
		{in: "12", want: 1200},
		{in: "0.01", want: 1},
		{in: "100000000", want: maxYuanFen},
		{in: "100000000.01", wantErr: true},
		{in: "0", wantErr: true},
		{in: "0.00", wantErr: true},
		{in: "012.00", wantErr: true},
		{in: "1.234", wantErr: true},
		{in: "1.", wantErr: true},
		{in: ".5", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "1e3", wantErr: true},
		{in: " 1", wantErr: true},
		{in: "", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseYuan(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseYuan(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatYuan(t *testing.T) {
	t.Parallel()
	for fen, want := range map[int64]string{0: "0.00", 1: "0.01", 1234: "12.34", 100: "1.00", -250: "-2.50"} {
		if got := formatYuan(fen); got != want {
			t.Errorf("formatYuan(%d) = %q, want %q", fen, got, want)
		}
	}
}

func TestAlipayExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, beijing)
	tests := []struct {
		name            string
		express, expire string
		want            time.Time
		wantErr         bool
	}{
		{name: "none", want: time.Time{}},
		{name: "minutes", express: "90m", want: now.Add(90 * time.Minute)},
		{name: "hours", express: "2h", want: now.Add(2 * time.Hour)},
		{name: "days", express: "15d", want: now.Add(15 * 24 * time.Hour)},
		{name: "today", express: "1c", want: time.Date(2024, 5, 2, 0, 0, 0, 0, beijing)},
		{name: "absolute wins", express: "1m", expire: "2024-05-01 12:30:00", want: time.Date(2024, 5, 1, 12, 30, 0, 0, beijing)},
		{name: "absolute without seconds", expire: "2024-05-01 12:30", want: time.Date(2024, 5, 1, 12, 30, 0, 0, beijing)},
		{name: "too long", express: "16d", wantErr: true},
		{name: "fraction", express: "1.5h", wantErr: true},
		{name: "no unit", express: "90", wantErr: true},
		{name: "unit only", express: "m", wantErr: true},
		{name: "bad absolute", expire: "tomorrow", wantErr: true},
	}
	for _, tt := range tests {
		got, err := alipayExpiry(now, tt.express, tt.expire)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("%s: got %v, %v; want %v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}
