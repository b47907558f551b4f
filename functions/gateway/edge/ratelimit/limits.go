package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit allows Rate events per Period on average, and up to Burst at once.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// maxCount bounds Rate and Burst in configuration: more is a typo, and the
// bound keeps the arithmetic far from overflow.
const maxCount = 1_000_000

// valid reports whether l can allow anything; [Limiter.Allow] refuses
// everything under an invalid Limit (such as the zero Limit of a class
// missing from the configuration).
func (l Limit) valid() bool {
	return l.Rate >= 1 && l.Burst >= 1 && l.Period > 0
}

// String writes l in the syntax of [ParseLimits] (the period as a Go
// duration when it is not a second, minute or hour).
func (l Limit) String() string {
	unit := l.Period.String()
	switch l.Period {
	case time.Second:
		unit = "s"
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	if l.Burst == l.Rate {
		return fmt.Sprintf("%d/%s", l.Rate, unit)
	}
	return fmt.Sprintf("%d/%s:%d", l.Rate, unit, l.Burst)
}

// ParseLimits reads limits per route class from configuration such as
//
//	data=200/s:400,management=20/s,auth=10/m:20,anonymous=5/s:10
//
// Each comma-separated entry is class=rate/unit[:burst]: unit is s, m or h,
// the burst defaults to the rate, both are whole numbers from 1 to
// 1000000, and a class (letters, digits, '_', '-' or '.', at most 64)
// appears once. Spaces around entries and around '=' are ignored. An empty
// string is no limits. The error names the first bad entry.
func ParseLimits(s string) (map[string]Limit, error) {
	limits := make(map[string]Limit)
	if strings.TrimSpace(s) == "" {
		return limits, nil
	}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		class, lim, err := parseEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: limit %q: %w", entry, err)
		}
		if _, dup := limits[class]; dup {
			return nil, fmt.Errorf("ratelimit: limit %q: class %q is given twice", entry, class)
		}
		limits[class] = lim
	}
	return limits, nil
}

func parseEntry(entry string) (string, Limit, error) {
	class, value, ok := strings.Cut(entry, "=")
	if !ok {
		return "", Limit{}, errors.New("want class=rate/unit[:burst]")
	}
	class, value = strings.TrimSpace(class), strings.TrimSpace(value)
	if !validClass(class) {
		return "", Limit{}, errors.New("the class must be 1 to 64 letters, digits, '_', '-' or '.'")
	}
	rate, rest, ok := strings.Cut(value, "/")
	if !ok {
		return "", Limit{}, errors.New("want class=rate/unit[:burst]")
	}
	unit, burst, hasBurst := strings.Cut(rest, ":")
	var lim Limit
	var err error
	if lim.Rate, err = count("rate", rate); err != nil {
		return "", Limit{}, err
	}
	switch unit {
	case "s":
		lim.Period = time.Second
	case "m":
		lim.Period = time.Minute
	case "h":
		lim.Period = time.Hour
	default:
		return "", Limit{}, fmt.Errorf("unit %q is not s, m or h", unit)
	}
	lim.Burst = lim.Rate
	if hasBurst {
		if lim.Burst, err = count("burst", burst); err != nil {
			return "", Limit{}, err
		}
	}
	return class, lim, nil
}

// count reads a whole number from 1 to maxCount, digits only (strconv.Atoi
// would take signs).
func count(what, s string) (int, error) {
	if s == "" || len(s) > 7 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%s %q is not a whole number from 1 to %d", what, s, maxCount)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > maxCount {
		return 0, fmt.Errorf("%s %q is not a whole number from 1 to %d", what, s, maxCount)
	}
	return n, nil
}

// validClass keeps class names fit for Redis keys and metric labels.
func validClass(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for _, r := range c {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
