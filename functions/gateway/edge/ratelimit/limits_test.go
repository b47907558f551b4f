package ratelimit_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/functions/gateway/edge/ratelimit"
)

func TestParseLimits(t *testing.T) {
	type L = ratelimit.Limit
	good := []struct {
		in   string
		want map[string]L
	}{
		{"data=200/s:400,management=20/s,auth=10/m:20,anonymous=5/s:10", map[string]L{
			"data":       {Rate: 200, Burst: 400, Period: time.Second},
			"management": {Rate: 20, Burst: 20, Period: time.Second},
			"auth":       {Rate: 10, Burst: 20, Period: time.Minute},
			"anonymous":  {Rate: 5, Burst: 10, Period: time.Second},
		}},
		{"", map[string]L{}},
		{"  ", map[string]L{}},
		{" export = 3/h , bulk_v2.x-y=1/s:1000000 ", map[string]L{
			"export":      {Rate: 3, Burst: 3, Period: time.Hour},
			"bulk_v2.x-y": {Rate: 1, Burst: 1000000, Period: time.Second},
		}},
		{"slow=100/s:1", map[string]L{"slow": {Rate: 100, Burst: 1, Period: time.Second}}},
	}
	for _, tc := range good {
		got, err := ratelimit.ParseLimits(tc.in)
		if err != nil {
			t.Errorf("ParseLimits(%q): %v", tc.in, err)
			continue
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("ParseLimits(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}

	bad := []struct{ in, wantErr string }{
		{"data", `limit "data": want class=rate/unit[:burst]`},
		{"data=200", `limit "data=200": want class=rate/unit[:burst]`},
		{"=200/s", `limit "=200/s": the class must be`},
		{"da:ta=200/s", `limit "da:ta=200/s": the class must be`},
		{strings.Repeat("c", 65) + "=1/s", "the class must be"},
		{"data=0/s", `rate "0" is not a whole number from 1 to 1000000`},
		{"data=-5/s", `rate "-5" is not a whole number`},
		{"data=+5/s", `rate "+5" is not a whole number`},
		{"data=1000001/s", `rate "1000001" is not a whole number`},
		{"data=99999999999999999999/s", `rate "99999999999999999999" is not a whole number`},
		{"data=1.5/s", `rate "1.5" is not a whole number`},
		{"data=/s", `rate "" is not a whole number`},
		{"data=5/x", `limit "data=5/x": unit "x" is not s, m or h`},
		{"data=5/sec", `unit "sec" is not s, m or h`},
		{"data=5/", `unit "" is not s, m or h`},
		{"data=5/s:", `burst "" is not a whole number`},
		{"data=5/s:0", `burst "0" is not a whole number`},
		{"data=5/s:1:2", `burst "1:2" is not a whole number`},
		{"data=5/s,", `limit "": want class=rate/unit[:burst]`},
		{"data=5/s,,auth=1/m", `limit "": want class=rate/unit[:burst]`},
		{"data=5/s,auth=1/m,data=6/s", `limit "data=6/s": class "data" is given twice`},
	}
	for _, tc := range bad {
		got, err := ratelimit.ParseLimits(tc.in)
		if err == nil {
			t.Errorf("ParseLimits(%q) = %v, want an error", tc.in, got)
			continue
		}
		if !strings.HasPrefix(err.Error(), "ratelimit: ") || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseLimits(%q): error %q, want one containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestLimitString(t *testing.T) {
	for lim, want := range map[ratelimit.Limit]string{
		{Rate: 200, Burst: 400, Period: time.Second}:        "200/s:400",
		{Rate: 20, Burst: 20, Period: time.Minute}:          "20/m",
		{Rate: 1, Burst: 2, Period: time.Hour}:              "1/h:2",
		{Rate: 3, Burst: 3, Period: 300 * time.Millisecond}: "3/300ms",
	} {
		if got := lim.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", lim, got, want)
		}
	}
}

// FuzzParseLimits checks that ParseLimits never panics and that what it
// accepts is valid and reads back the same from its String.
func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{
		"data=200/s:400,management=20/s,auth=10/m:20,anonymous=5/s:10",
		"", "a=1/h", "a=1/s:", "a=/s", "=", ",", "a=1/s,a=1/s", " a = 9/m : 3 ", "a=1000000/s:1000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		limits, err := ratelimit.ParseLimits(s)
		if err != nil {
			if limits != nil {
				t.Errorf("ParseLimits(%q) returned limits with error %v", s, err)
			}
			return
		}
		var entries []string
		for class, lim := range limits {
			if lim.Rate < 1 || lim.Burst < 1 || lim.Rate > 1_000_000 || lim.Burst > 1_000_000 ||
				(lim.Period != time.Second && lim.Period != time.Minute && lim.Period != time.Hour) {
				t.Fatalf("ParseLimits(%q): class %q has invalid limit %+v", s, class, lim)
			}
			entries = append(entries, class+"="+lim.String())
		}
		again, err := ratelimit.ParseLimits(strings.Join(entries, ","))
		if err != nil || !maps.Equal(again, limits) {
			t.Fatalf("ParseLimits(%q) = %v, which reads back as %v, %v", s, limits, again, err)
		}
	})
}
