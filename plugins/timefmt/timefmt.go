// Package timefmt parses the timestamp formats the supported providers put in their webhook
// payloads and normalizes them to RFC 3339 in UTC.
//
// Recognized, each matched against the whole string and in these exact widths:
//
//	08/08/2012 09:17 PM (UTC)        The City: MM/DD/YYYY hh:mm AM|PM (UTC)
//	2015-08-03T12:38:46-04:00        RFC 3339, with Z or a numeric offset, optional fraction
//	Tue, 16 Apr 2013 22:42:38 +0000  RFC 1123 with a numeric zone
//	04/17/2013, 1977-10-13           dates: MM/DD/YYYY and YYYY-MM-DD
//
// Epoch seconds (The City's webhook_timestamp) arrive as JSON numbers and have their own
// functions, ParseEpoch and FromEpoch: a string of bare digits is never taken for a time by
// Parse, because payloads are full of digit strings (callboard and phone numbers) that are not.
//
// Parsing is hand-rolled over the fixed layouts rather than trying time.Parse with each
// layout in turn: it picks the layout from the length and a separator, checks every field's
// range (month 13, 25:00 and 30 February are rejected), and does not allocate.
package timefmt

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hookpipe/hookpipe/plugins/jsonread"
)

// Kind says what a parsed string denotes.
type Kind int

const (
	// KindNone is the zero Kind: the string is not a recognized time.
	KindNone Kind = iota
	// KindDateTime is an instant: a date with a time of day.
	KindDateTime
	// KindDate is a calendar date without a time of day, reported as midnight UTC.
	KindDate
)

func (k Kind) String() string {
	switch k {
	case KindDateTime:
		return "datetime"
	case KindDate:
		return "date"
	}
	return "none"
}

// Parse reads s in one of the recognized formats and returns the time in UTC with its Kind.
// Dates are returned as midnight UTC. ok is false when s matches no format exactly, when a
// field is out of range, or when the instant falls outside the years 0000 to 9999 in UTC.
func Parse(s string) (t time.Time, k Kind, ok bool) {
	t, k, _, ok = parse(s)
	return t, k, ok
}

// Normalize rewrites a recognized timestamp as RFC 3339 in UTC with a Z, seconds precision
// and the input's fractional digits, if it had any ("2012-08-08T21:17:00Z"), and a date as
// YYYY-MM-DD. ok is false when Parse would reject s.
func Normalize(s string) (string, bool) {
	t, k, frac, ok := parse(s)
	if !ok {
		return "", false
	}
	var buf [32]byte
	if k == KindDate {
		return string(appendDate(buf[:0], t)), true
	}
	return string(appendDateTime(buf[:0], t, frac)), true
}

// maxEpoch is 9999-12-31T23:59:59Z, the last second RFC 3339 can write with four year digits.
const maxEpoch = 253402300799

// FromEpoch formats seconds since the Unix epoch as RFC 3339 in UTC.
func FromEpoch(sec int64) string {
	t := time.Unix(sec, 0).UTC()
	if sec < -62167219200 || sec > maxEpoch { // outside years 0000 to 9999
		return t.Format(time.RFC3339)
	}
	var buf [32]byte
	return string(appendDateTime(buf[:0], t, 0))
}

// ParseEpoch reads seconds since the Unix epoch from a decoded JSON value: a float64 (what
// encoding/json produces), a json.Number, any Go integer type, or a string holding a JSON
// number. Fractional seconds are kept. Negative values, NaN, infinities and instants after
// the year 9999 are rejected, as is anything else.
func ParseEpoch(v any) (time.Time, bool) {
	switch x := v.(type) {
	case float64:
		return epochFloat(x)
	case float32:
		return epochFloat(float64(x))
	case json.Number:
		return epochString(string(x))
	case string:
		return epochString(x)
	case int:
		return epochInt(int64(x))
	case int64:
		return epochInt(x)
	case int32:
		return epochInt(int64(x))
	case uint:
		return epochUint(uint64(x))
	case uint64:
		return epochUint(x)
	case uint32:
		return epochInt(int64(x))
	}
	return time.Time{}, false
}

func epochInt(sec int64) (time.Time, bool) {
	if sec < 0 || sec > maxEpoch {
		return time.Time{}, false
	}
	return time.Unix(sec, 0).UTC(), true
}

func epochUint(sec uint64) (time.Time, bool) {
	if sec > maxEpoch {
		return time.Time{}, false
	}
	return time.Unix(int64(sec), 0).UTC(), true
}

func epochFloat(f float64) (time.Time, bool) {
	if !(f >= 0 && f < maxEpoch+1) { // also false for NaN
		return time.Time{}, false
	}
	sec := math.Floor(f)
	ns := math.Round((f - sec) * 1e9)
	if ns >= 1e9 {
		sec, ns = sec+1, 0
	}
	if sec > maxEpoch {
		return time.Time{}, false
	}
	return time.Unix(int64(sec), int64(ns)).UTC(), true
}

// epochString accepts a non-negative JSON number: no sign, spaces, hex or underscores.
func epochString(s string) (time.Time, bool) {
	if s == "" || s[0] == '-' || !jsonread.IsNumber(s) {
		return time.Time{}, false
	}
	integer := !strings.ContainsAny(s, ".eE")
	if integer {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return epochInt(n)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, false
	}
	return epochFloat(f)
}

// parse also reports how many fractional-second digits s carried, for Normalize to keep.
func parse(s string) (t time.Time, k Kind, frac int, ok bool) {
	switch {
	case len(s) == 10 && s[2] == '/':
		t, ok = parseUSDate(s)
		k = KindDate
	case len(s) == 10 && s[4] == '-':
		t, ok = parseISODate(s)
		k = KindDate
	case len(s) == 25 && s[2] == '/':
		t, ok = parseCity(s)
		k = KindDateTime
	case len(s) == 31 && s[3] == ',':
		t, ok = parseRFC1123Z(s)
		k = KindDateTime
	case len(s) >= 20 && s[4] == '-':
		t, frac, ok = parseRFC3339(s)
		k = KindDateTime
	}
	if !ok {
		return time.Time{}, KindNone, 0, false
	}
	return t, k, frac, true
}

// parseUSDate reads MM/DD/YYYY.
func parseUSDate(s string) (time.Time, bool) {
	mo, ok1 := num2(s, 0)
	d, ok2 := num2(s, 3)
	y, ok3 := num4(s, 6)
	if !ok1 || !ok2 || !ok3 || s[2] != '/' || s[5] != '/' {
		return time.Time{}, false
	}
	return civil(y, mo, d, 0, 0, 0, 0, 0)
}

// parseISODate reads YYYY-MM-DD.
func parseISODate(s string) (time.Time, bool) {
	y, ok1 := num4(s, 0)
	mo, ok2 := num2(s, 5)
	d, ok3 := num2(s, 8)
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	return civil(y, mo, d, 0, 0, 0, 0, 0)
}

// parseCity reads MM/DD/YYYY hh:mm AM (UTC), a 12-hour clock in UTC.
func parseCity(s string) (time.Time, bool) {
	if s[10] != ' ' || s[13] != ':' || s[16] != ' ' || s[19:] != " (UTC)" {
		return time.Time{}, false
	}
	h, ok1 := num2(s, 11)
	mi, ok2 := num2(s, 14)
	if !ok1 || !ok2 || h < 1 || h > 12 {
		return time.Time{}, false
	}
	switch s[17:19] {
	case "AM":
		if h == 12 {
			h = 0
		}
	case "PM":
		if h != 12 {
			h += 12
		}
	default:
		return time.Time{}, false
	}
	date, ok := parseUSDate(s[:10])
	if !ok {
		return time.Time{}, false
	}
	y, mo, d := date.Date()
	return civil(y, int(mo), d, h, mi, 0, 0, 0)
}

var (
	weekdays = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	months   = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// parseRFC1123Z reads "Tue, 16 Apr 2013 22:42:38 +0000". The weekday name must be spelled
// right but, as with time.Parse, is not checked against the date: it adds nothing the date
// does not say.
func parseRFC1123Z(s string) (time.Time, bool) {
	if s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ' {
		return time.Time{}, false
	}
	known := false
	for _, w := range weekdays {
		if s[:3] == w {
			known = true
			break
		}
	}
	mo := 0
	for i, m := range months {
		if s[8:11] == m {
			mo = i + 1
			break
		}
	}
	d, ok1 := num2(s, 5)
	y, ok2 := num4(s, 12)
	h, ok3 := num2(s, 17)
	mi, ok4 := num2(s, 20)
	sec, ok5 := num2(s, 23)
	zh, ok6 := num2(s, 27)
	zm, ok7 := num2(s, 29)
	if !known || mo == 0 || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 {
		return time.Time{}, false
	}
	off, ok := offset(s[26], zh, zm)
	if !ok {
		return time.Time{}, false
	}
	return civil(y, mo, d, h, mi, sec, 0, off)
}

// parseRFC3339 reads YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm) with up to nine
// fractional digits.
func parseRFC3339(s string) (time.Time, int, bool) {
	y, ok1 := num4(s, 0)
	mo, ok2 := num2(s, 5)
	d, ok3 := num2(s, 8)
	h, ok4 := num2(s, 11)
	mi, ok5 := num2(s, 14)
	sec, ok6 := num2(s, 17)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, 0, false
	}
	i, ns, frac := 19, 0, 0
	if s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			if frac == 9 {
				return time.Time{}, 0, false
			}
			ns = ns*10 + int(s[i]-'0')
			frac++
			i++
		}
		if frac == 0 {
			return time.Time{}, 0, false
		}
		for range 9 - frac {
			ns *= 10
		}
	}
	off := 0
	switch rest := s[i:]; {
	case rest == "Z":
	case len(rest) == 6 && rest[3] == ':':
		zh, okh := num2(rest, 1)
		zm, okm := num2(rest, 4)
		var ok bool
		if off, ok = offset(rest[0], zh, zm); !okh || !okm || !ok {
			return time.Time{}, 0, false
		}
	default:
		return time.Time{}, 0, false
	}
	t, ok := civil(y, mo, d, h, mi, sec, ns, off)
	return t, frac, ok
}

// offset turns a sign and hh, mm into seconds east of UTC.
func offset(sign byte, hh, mm int) (int, bool) {
	if hh > 23 || mm > 59 {
		return 0, false
	}
	switch sign {
	case '+':
		return hh*3600 + mm*60, true
	case '-':
		return -(hh*3600 + mm*60), true
	}
	return 0, false
}

// civil checks every field's range and returns the instant in UTC for a wall time at off
// seconds east of UTC. Leap seconds (ss = 60) are refused, as time.Time cannot hold them.
func civil(y, mo, d, h, mi, sec, ns, off int) (time.Time, bool) {
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
	if off != 0 {
		t = t.Add(-time.Duration(off) * time.Second)
		if uy := t.Year(); uy < 0 || uy > 9999 {
			return time.Time{}, false
		}
	}
	return t, true
}

func daysIn(y, mo int) int {
	switch mo {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func num2(s string, i int) (int, bool) {
	a, b := s[i], s[i+1]
	if !isDigit(a) || !isDigit(b) {
		return 0, false
	}
	return int(a-'0')*10 + int(b-'0'), true
}

func num4(s string, i int) (int, bool) {
	hi, ok1 := num2(s, i)
	lo, ok2 := num2(s, i+2)
	return hi*100 + lo, ok1 && ok2
}

func appendDate(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	b = appendInt(b, y, 4)
	b = append(b, '-')
	b = appendInt(b, int(mo), 2)
	b = append(b, '-')
	return appendInt(b, d, 2)
}

func appendDateTime(b []byte, t time.Time, frac int) []byte {
	b = appendDate(b, t)
	h, mi, sec := t.Clock()
	b = append(b, 'T')
	b = appendInt(b, h, 2)
	b = append(b, ':')
	b = appendInt(b, mi, 2)
	b = append(b, ':')
	b = appendInt(b, sec, 2)
	if frac > 0 {
		ns := t.Nanosecond()
		for range 9 - frac {
			ns /= 10
		}
		b = append(b, '.')
		b = appendInt(b, ns, frac)
	}
	return append(b, 'Z')
}

// appendInt writes a non-negative n zero-padded to width digits.
func appendInt(b []byte, n, width int) []byte {
	var d [9]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}
