package timefmt

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/plugins/examples"
	"github.com/hookpipe/hookpipe/plugins/jsonread"
)

// seedTimes holds every timestamp string in the two providers' documented examples, with the
// expected normalization. TestSeedTimesAreComplete keeps it in step with the examples.
var seedTimes = []struct {
	in   string
	want string
	kind Kind
}{
	// The City's 12-hour clock, already in UTC.
	{"08/08/2012 09:17 PM (UTC)", "2012-08-08T21:17:00Z", KindDateTime},
	{"08/09/2012 06:33 AM (UTC)", "2012-08-09T06:33:00Z", KindDateTime},
	{"08/09/2012 06:29 AM (UTC)", "2012-08-09T06:29:00Z", KindDateTime},
	{"09/27/2012 08:40 PM (UTC)", "2012-09-27T20:40:00Z", KindDateTime},
	{"09/27/2012 05:30 PM (UTC)", "2012-09-27T17:30:00Z", KindDateTime},
	{"09/27/2012 04:00 PM (UTC)", "2012-09-27T16:00:00Z", KindDateTime},
	{"09/27/2012 08:41 PM (UTC)", "2012-09-27T20:41:00Z", KindDateTime},
	{"04/16/2013 10:42 PM (UTC)", "2013-04-16T22:42:00Z", KindDateTime},
	{"04/16/2013 10:27 PM (UTC)", "2013-04-16T22:27:00Z", KindDateTime},
	{"04/17/2013 08:04 PM (UTC)", "2013-04-17T20:04:00Z", KindDateTime},
	{"03/22/2013 07:55 PM (UTC)", "2013-03-22T19:55:00Z", KindDateTime},
	{"04/17/2013 08:08 PM (UTC)", "2013-04-17T20:08:00Z", KindDateTime},
	{"09/25/2012 12:01 PM (UTC)", "2012-09-25T12:01:00Z", KindDateTime},
	{"09/27/2012 07:09 PM (UTC)", "2012-09-27T19:09:00Z", KindDateTime},
	{"01/30/2014 07:57 PM (UTC)", "2014-01-30T19:57:00Z", KindDateTime},
	{"01/17/2014 12:09 AM (UTC)", "2014-01-17T00:09:00Z", KindDateTime},
	{"08/09/2012 06:25 AM (UTC)", "2012-08-09T06:25:00Z", KindDateTime},
	{"08/08/2012 11:25 PM (UTC)", "2012-08-08T23:25:00Z", KindDateTime},
	{"08/08/2012 11:27 PM (UTC)", "2012-08-08T23:27:00Z", KindDateTime},
	{"08/09/2012 06:20 AM (UTC)", "2012-08-09T06:20:00Z", KindDateTime},
	{"08/09/2012 06:27 AM (UTC)", "2012-08-09T06:27:00Z", KindDateTime},
	// RFC 3339 with an offset (The City's changed/created_at, every ControlShift time).
	{"2012-09-27T13:41:16-07:00", "2012-09-27T20:41:16Z", KindDateTime},
	{"2012-08-08T23:35:05-07:00", "2012-08-09T06:35:05Z", KindDateTime},
	{"2015-08-03T12:38:46-04:00", "2015-08-03T16:38:46Z", KindDateTime},
	{"2015-08-05T13:17:46-04:00", "2015-08-05T17:17:46Z", KindDateTime},
	{"2015-08-03T13:11:02-04:00", "2015-08-03T17:11:02Z", KindDateTime},
	{"2015-08-03T13:12:15-04:00", "2015-08-03T17:12:15Z", KindDateTime},
	{"2015-08-03T13:30:01-04:00", "2015-08-03T17:30:01Z", KindDateTime},
	{"2015-08-03T13:38:49-04:00", "2015-08-03T17:38:49Z", KindDateTime},
	// RFC 1123 with a numeric zone (The City's webhook_event_occurred_at).
	{"Tue, 16 Apr 2013 22:42:38 +0000", "2013-04-16T22:42:38Z", KindDateTime},
	{"Wed, 17 Apr 2013 20:08:58 +0000", "2013-04-17T20:08:58Z", KindDateTime},
	{"Wed, 17 Apr 2013 20:46:53 +0000", "2013-04-17T20:46:53Z", KindDateTime},
	{"Thu, 30 Jan 2014 19:57:46 +0000", "2014-01-30T19:57:46Z", KindDateTime},
	{"Thu, 30 Jan 2014 19:02:59 +0000", "2014-01-30T19:02:59Z", KindDateTime},
	{"Thu, 30 Jan 2014 19:56:15 +0000", "2014-01-30T19:56:15Z", KindDateTime},
	// Dates.
	{"03/21/2013", "2013-03-21", KindDate},
	{"04/17/2013", "2013-04-17", KindDate},
	{"04/01/2000", "2000-04-01", KindDate},
	{"08/08/2012", "2012-08-08", KindDate},
	{"1974-11-09", "1974-11-09", KindDate},
	{"1977-10-13", "1977-10-13", KindDate},
}

// seedEpochs holds every webhook_timestamp in The City's examples; each sits beside a
// webhook_event_occurred_at naming the same second.
var seedEpochs = map[int64]string{
	1391111866: "2014-01-30T19:57:46Z",
	1391108579: "2014-01-30T19:02:59Z",
	1391111775: "2014-01-30T19:56:15Z",
}

func TestSeedTimes(t *testing.T) {
	for _, tc := range seedTimes {
		got, ok := Normalize(tc.in)
		if !ok || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
		tm, kind, ok := Parse(tc.in)
		if !ok || kind != tc.kind || tm.Location() != time.UTC {
			t.Errorf("Parse(%q) = %v, %v, %v", tc.in, tm, kind, ok)
		}
		if want, _ := time.Parse(time.RFC3339, tc.want+map[Kind]string{KindDate: "T00:00:00Z"}[tc.kind]); !tm.Equal(want) {
			t.Errorf("Parse(%q) = %v, want %v", tc.in, tm, want)
		}
	}
	for sec, want := range seedEpochs {
		if got := FromEpoch(sec); got != want {
			t.Errorf("FromEpoch(%d) = %q, want %q", sec, got, want)
		}
	}
}

// TestSeedTimesAreComplete walks every documented example: each string Parse accepts must be
// in seedTimes, each seedTimes entry must occur, and every field whose name says it holds a
// time must parse.
func TestSeedTimesAreComplete(t *testing.T) {
	table := map[string]bool{}
	for _, tc := range seedTimes {
		table[tc.in] = true
	}
	found := map[string]bool{}
	epochs := map[int64]bool{}
	timeField := func(key string) bool {
		return strings.HasSuffix(key, "_at") || key == "birthdate" || key == "member_since" ||
			key == "last_engaged" || key == "last_logged_in"
	}
	var walk func(name, key string, v any)
	walk = func(name, key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(name, k, c)
			}
		case []any:
			for _, c := range x {
				walk(name, key, c)
			}
		case string:
			if _, _, ok := Parse(x); ok {
				found[x] = true
				if !table[x] {
					t.Errorf("%s: %s = %q parses but is not in seedTimes", name, key, x)
				}
			} else if timeField(key) {
				t.Errorf("%s: %s = %q does not parse", name, key, x)
			}
		case json.Number:
			if key == "webhook_timestamp" {
				tm, ok := ParseEpoch(x)
				n, _ := x.Int64()
				if !ok || seedEpochs[n] != tm.Format(time.RFC3339) {
					t.Errorf("%s: webhook_timestamp %s gives %v, %v", name, x, tm, ok)
				}
				epochs[n] = true
			}
		}
	}
	for _, ex := range examples.All() {
		body, err := jsonread.Normalize(ex.Body)
		if err != nil {
			t.Fatalf("%s: %v", ex.Name, err)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", ex.Name, err)
		}
		walk(ex.Provider+"/"+ex.Name, "", v)
	}
	for s := range table {
		if !found[s] {
			t.Errorf("seedTimes has %q, which no example contains", s)
		}
	}
	if len(epochs) != len(seedEpochs) {
		t.Errorf("found webhook_timestamps %v, want %v", epochs, seedEpochs)
	}
}

func TestParseFormats(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2015-08-03T12:38:46Z", "2015-08-03T12:38:46Z"},
		{"2015-08-03T12:38:46+05:30", "2015-08-03T07:08:46Z"},
		{"2015-08-03T12:38:46-00:00", "2015-08-03T12:38:46Z"},
		{"2015-08-03T12:38:46.5Z", "2015-08-03T12:38:46.5Z"},
		{"2015-08-03T12:38:46.500-04:00", "2015-08-03T16:38:46.500Z"},
		{"2015-08-03T12:38:46.000000001Z", "2015-08-03T12:38:46.000000001Z"},
		{"2015-08-03T23:59:59.123456789-01:00", "2015-08-04T00:59:59.123456789Z"},
		{"2015-12-31T23:30:00-01:00", "2016-01-01T00:30:00Z"},
		{"Sun, 01 Mar 2015 00:10:00 +0100", "2015-02-28T23:10:00Z"},
		{"Mon, 16 Apr 2013 22:42:38 -0930", "2013-04-17T08:12:38Z"}, // weekday not checked against the date
		{"12/31/1999 12:00 AM (UTC)", "1999-12-31T00:00:00Z"},
		{"12/31/1999 12:59 PM (UTC)", "1999-12-31T12:59:00Z"},
		{"12/31/1999 11:59 PM (UTC)", "1999-12-31T23:59:00Z"},
		{"12/31/1999 01:00 AM (UTC)", "1999-12-31T01:00:00Z"},
		{"02/29/2012", "2012-02-29"},
		{"02/29/2000", "2000-02-29"},
		{"2012-02-29", "2012-02-29"},
		{"0000-01-01", "0000-01-01"},
		{"9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"},
		{"0000-01-01T00:30:00-01:00", "0000-01-01T01:30:00Z"},
	} {
		if got, ok := Normalize(tc.in); !ok || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		// Documented values that are not times.
		"106", "first, last", "4F02523945", "313C04B71D1", "4254151988", "1391111866", "",
		"Invited by individual | Pastor Sam Shepherd (946060874) to Ballard (823956377) on 2012-08-08 at 22:33",
		"https://api.onthecity.org/users/1068169466",
		// Out of range.
		"13/01/2012", "00/01/2012", "02/30/2012", "02/29/2013", "02/29/1900", "04/31/2013", "01/00/2013",
		"2012-13-01", "2012-00-10", "2012-01-00", "2013-02-29", "2012-01-32",
		"08/08/2012 13:17 PM (UTC)", "08/08/2012 00:17 AM (UTC)", "08/08/2012 09:60 PM (UTC)", "02/30/2012 09:17 PM (UTC)",
		"2015-08-03T25:00:00Z", "2015-08-03T24:00:00Z", "2015-08-03T12:60:00Z", "2015-08-03T12:00:60Z",
		"2015-08-03T12:38:46+24:00", "2015-08-03T12:38:46-04:60", "2015-02-30T12:38:46Z",
		"Tue, 31 Apr 2013 22:42:38 +0000", "Tue, 16 Apr 2013 24:42:38 +0000", "Tue, 16 Apr 2013 22:42:38 +2400",
		"9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+01:00",
		// Near misses of the layouts.
		"08/08/2012 09:17 XM (UTC)", "08/08/2012 09:17 pm (UTC)", "08/08/2012 09:17 PM (PST)", "08/08/2012 09:17 PM",
		"08/08/2012 09:17 PM (UTC) ", "08-08-2012 09:17 PM (UTC)", "08/08/2012T09:17 PM (UTC)", "8/8/2012", "08/08/12",
		"2015-08-03T12:38:46", "2015-08-03 12:38:46Z", "2015-08-03t12:38:46Z", "2015-08-03T12:38:46z",
		"2015-08-03T12:38:46-0400", "2015-08-03T12:38:46-04", "2015-08-03T12:38:46.Z", "2015-08-03T12:38:46,5Z",
		"2015-08-03T12:38:46.1234567890Z", "2015-08-03T12:38:46Z ", " 2015-08-03", "2015-08-03 ", "2015/08/03",
		"2015-8-03T12:38:46Z", "2O15-08-03", "-015-08-03", "+2015-08-03", "2015-08-03T12:38:46 -04:00",
		"Tue, 16 Apr 2013 22:42:38 GMT", "Tue, 16 Apr 2013 22:42:38 +00:00", "Tue, 6 Apr 2013 22:42:38 +0000",
		"Tux, 16 Apr 2013 22:42:38 +0000", "Tue, 16 Apx 2013 22:42:38 +0000", "tue, 16 apr 2013 22:42:38 +0000",
		"Tue, 16 Apr 2013 22:42:38 *0000", "Tue,16 Apr 2013 22:42:38  +0000", "Tue, 16 Apr 2013 22-42-38 +0000",
		"\x00\x00/\x00\x00\x00\x00\x00\x00\x00",
	} {
		if tm, k, ok := Parse(in); ok || k != KindNone || !tm.IsZero() {
			t.Errorf("Parse(%q) = %v, %v, %v; want rejection", in, tm, k, ok)
		}
		if got, ok := Normalize(in); ok || got != "" {
			t.Errorf("Normalize(%q) = %q, %v", in, got, ok)
		}
	}
}

func TestParseEpoch(t *testing.T) {
	const want = "2014-01-30T19:57:46Z"
	for _, v := range []any{
		float64(1391111866), int64(1391111866), int(1391111866), int32(1391111866), uint64(1391111866),
		uint(1391111866), uint32(1391111866), json.Number("1391111866"), "1391111866",
		json.Number("1.391111866e9"), "1391111866.0",
	} {
		tm, ok := ParseEpoch(v)
		if !ok || tm.Format(time.RFC3339Nano) != want || tm.Location() != time.UTC {
			t.Errorf("ParseEpoch(%T %v) = %v, %v", v, v, tm, ok)
		}
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{float64(1391111866.25), "2014-01-30T19:57:46.25Z"},
		{"1391111866.5", "2014-01-30T19:57:46.5Z"},
		{0, "1970-01-01T00:00:00Z"},
		{"0", "1970-01-01T00:00:00Z"},
		{float64(253402300799), "9999-12-31T23:59:59Z"},
		{json.Number("253402300799"), "9999-12-31T23:59:59Z"},
		{float64(253402300799.5), "9999-12-31T23:59:59.5Z"},
	} {
		tm, ok := ParseEpoch(tc.v)
		if !ok || tm.Format(time.RFC3339Nano) != tc.want {
			t.Errorf("ParseEpoch(%T %v) = %v, %v; want %s", tc.v, tc.v, tm.Format(time.RFC3339Nano), ok, tc.want)
		}
	}
	for _, v := range []any{
		-1, int64(-1), float64(-0.5), math.NaN(), math.Inf(1), math.Inf(-1), float64(253402300800),
		int64(253402300800), uint64(math.MaxUint64), int64(math.MaxInt64), float64(1e300),
		"", "abc", "-5", " 1391111866", "1391111866 ", "0x10", "1_000", "1e400", "Inf", "NaN", "01", "1.", ".5",
		"1e", json.Number("-1"), json.Number("99999999999999999999"), nil, true, []byte("1391111866"),
		"2014-01-30T19:57:46Z",
	} {
		if tm, ok := ParseEpoch(v); ok {
			t.Errorf("ParseEpoch(%T %v) = %v, want rejection", v, v, tm)
		}
	}
}

func TestFromEpoch(t *testing.T) {
	for sec, want := range map[int64]string{
		0:             "1970-01-01T00:00:00Z",
		-1:            "1969-12-31T23:59:59Z",
		951782400:     "2000-02-29T00:00:00Z",
		253402300799:  "9999-12-31T23:59:59Z",
		253402300800:  "10000-01-01T00:00:00Z",
		-62167219200:  "0000-01-01T00:00:00Z",
		-62167219201:  time.Unix(-62167219201, 0).UTC().Format(time.RFC3339),
		1391111866000: time.Unix(1391111866000, 0).UTC().Format(time.RFC3339),
	} {
		if got := FromEpoch(sec); got != want {
			t.Errorf("FromEpoch(%d) = %q, want %q", sec, got, want)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindNone: "none", KindDateTime: "datetime", KindDate: "date", Kind(9): "none"} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q", int(k), k.String())
		}
	}
	var zero Kind
	if zero != KindNone {
		t.Error("the zero Kind is not KindNone")
	}
}

func TestNoAllocations(t *testing.T) {
	for _, tc := range seedTimes {
		s := tc.in
		if n := testing.AllocsPerRun(50, func() { Parse(s) }); n != 0 {
			t.Errorf("Parse(%q) allocates %v times", s, n)
		}
		if n := testing.AllocsPerRun(50, func() { Normalize(s) }); n > 1 {
			t.Errorf("Normalize(%q) allocates %v times, want at most the result", s, n)
		}
	}
}

// referenceLayouts parse what each format means with the standard library, as an oracle.
var referenceLayouts = map[Kind][]string{
	KindDateTime: {"01/02/2006 03:04 PM (UTC)", time.RFC3339, time.RFC1123Z},
	KindDate:     {"01/02/2006", "2006-01-02"},
}

func FuzzParse(f *testing.F) {
	for _, tc := range seedTimes {
		f.Add(tc.in)
	}
	for _, s := range []string{"", "106", "02/30/2012", "2015-08-03T12:38:46.5+05:30", "Tue, 16 Apr 2013 22:42:38 +0000", "12/31/1999 12:00 AM (UTC)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, kind, ok := Parse(s)
		norm, nok := Normalize(s)
		if ok != nok {
			t.Fatalf("Parse ok %v, Normalize ok %v", ok, nok)
		}
		if !ok {
			if kind != KindNone || !tm.IsZero() || norm != "" {
				t.Fatalf("rejection returned %v, %v, %q", tm, kind, norm)
			}
			// The standard library must not accept a date we refuse.
			if len(s) == 10 {
				for _, layout := range referenceLayouts[KindDate] {
					if _, err := time.Parse(layout, s); err == nil {
						t.Fatalf("time.Parse(%q) accepts %q", layout, s)
					}
				}
			}
			return
		}
		if tm.Location() != time.UTC || (kind != KindDateTime && kind != KindDate) {
			t.Fatalf("Parse(%q) = %v, %v", s, tm, kind)
		}
		if y := tm.Year(); y < 0 || y > 9999 {
			t.Fatalf("Parse(%q) year %d", s, y)
		}
		// The standard library reads the same instant with one of the format's layouts.
		if !slices.ContainsFunc(referenceLayouts[kind], func(layout string) bool {
			ref, err := time.Parse(layout, s)
			return err == nil && ref.Equal(tm)
		}) {
			t.Fatalf("Parse(%q) = %v, which no reference layout agrees with", s, tm)
		}
		back, bkind, bok := Parse(norm)
		if !bok || bkind != kind || !back.Equal(tm) {
			t.Fatalf("Normalize(%q) = %q re-parses to %v, %v, %v; want %v", s, norm, back, bkind, bok, tm)
		}
		if again, _ := Normalize(norm); again != norm {
			t.Fatalf("Normalize is not idempotent: %q -> %q", norm, again)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, in := range []string{"08/08/2012 09:17 PM (UTC)", "2015-08-03T12:38:46-04:00", "Tue, 16 Apr 2013 22:42:38 +0000", "1977-10-13", "first, last"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Parse(in)
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Normalize("08/08/2012 09:17 PM (UTC)")
	}
}

// BenchmarkTimeParseLayouts is the reference: trying time.Parse with each layout in turn, as
// a mapping would without this package.
func BenchmarkTimeParseLayouts(b *testing.B) {
	layouts := []string{time.RFC3339, time.RFC1123Z, "2006-01-02", "01/02/2006", "01/02/2006 03:04 PM (UTC)"}
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range layouts {
			if _, err := time.Parse(l, "08/08/2012 09:17 PM (UTC)"); err == nil {
				break
			}
		}
	}
}

func BenchmarkParseEpoch(b *testing.B) {
	var v any = float64(1391111866)
	b.ReportAllocs()
	for b.Loop() {
		ParseEpoch(v)
	}
}
