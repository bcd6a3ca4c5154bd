package guestapi

import (
	"errors"
	"strings"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	r := Request{ID: "a1b2-c3"}
	r.ReportData[0], r.ReportData[63] = 0xab, 0x01
	s, err := FormatRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRequest(s)
	if err != nil || got != r {
		t.Fatalf("ParseRequest(%q) = %+v, %v", s, got, err)
	}
	if _, err := FormatRequest(Request{ID: "Bad ID"}); err == nil {
		t.Error("FormatRequest accepted a bad id")
	}
}

func TestParseRequestRefuses(t *testing.T) {
	hex := strings.Repeat("00", 64)
	for name, in := range map[string]string{
		"no colon":       "abc",
		"empty id":       ":" + hex,
		"upper-case id":  "ABC:" + hex,
		"id too long":    strings.Repeat("a", 33) + ":" + hex,
		"short data":     "abc:" + hex[:126],
		"upper-case hex": "abc:" + strings.Repeat("AB", 64),
		"not hex":        "abc:" + strings.Repeat("zz", 64),
		"too long":       "abc:" + strings.Repeat("0", MaxRequestSize),
		"path in id":     "../x:" + hex,
	} {
		if _, err := ParseRequest(in); err == nil {
			t.Errorf("%s: ParseRequest(%q) accepted it", name, in)
		}
	}
}

func TestSplitJoin(t *testing.T) {
	text := strings.Repeat("QUJD", 2500) // 10000 characters
	attrs, err := Split("quote-x", text, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if attrs[PartsKey("quote-x")] != "3" || len(attrs) != 4 {
		t.Fatalf("attrs %v", keys(attrs))
	}
	got, done, _, err := Join(attrs, "quote-x")
	if err != nil || !done || got != text {
		t.Fatalf("Join: done %v, err %v, equal %v", done, err, got == text)
	}
	delete(attrs, PartKey("quote-x", 1))
	if _, done, why, err := Join(attrs, "quote-x"); done || err != nil || !strings.Contains(why, "part 1 of 3") {
		t.Errorf("a missing part: done %v, why %q, err %v", done, why, err)
	}
	if _, err := Split("k", strings.Repeat("a", MaxParts*10+1), 10); err == nil {
		t.Error("Split accepted more than MaxParts parts")
	}
	if a, _ := Split("k", "short", 0); a["k"] != "short" || len(a) != 1 {
		t.Errorf("short value %v", a)
	}
	_, _, _, err = Join(map[string]string{ErrorKey("k"): "no TSM"}, "k")
	var ae *AgentError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "mero-tee/k-error: no TSM") {
		t.Errorf("agent error %v", err)
	}
	for _, n := range []string{"0", "65", "x"} {
		if _, _, _, err := Join(map[string]string{PartsKey("k"): n}, "k"); err == nil {
			t.Errorf("part count %q accepted", n)
		}
	}
	if len(Truncate(strings.Repeat("e", 5000))) != MaxErrorSize {
		t.Error("Truncate")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func FuzzParseRequest(f *testing.F) {
	f.Add("abc:" + strings.Repeat("00", 64))
	f.Add("x:y")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseRequest(in)
		if err != nil {
			return
		}
		s, err := FormatRequest(r)
		if err != nil || s != in {
			t.Fatalf("accepted %q but formats it as %q (%v)", in, s, err)
		}
	})
}
