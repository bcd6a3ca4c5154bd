package tdx

import (
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

func sampleMeasurements() Measurements {
	var m Measurements
	for i := range m.MRTD {
		m.MRTD[i] = byte(i)
	}
	for r := range m.RTMR {
		for i := range m.RTMR[r] {
			m.RTMR[r][i] = byte(0x10*(r+1) + i)
		}
	}
	return m
}

func TestMeasurementsHexRoundTrip(t *testing.T) {
	m := sampleMeasurements()
	h := m.Hex()
	if h.MRTD != m.MRTDHex() || h.RTMR2 != m.RTMRHex(2) || len(h.RTMR3) != 96 || strings.ToLower(h.RTMR1) != h.RTMR1 {
		t.Fatalf("hex: %+v", h)
	}
	fields := h.Fields()
	names := RegisterNames()
	for i, f := range fields {
		if f[0] != names[i] {
			t.Errorf("field %d named %s, want %s", i, f[0], names[i])
		}
	}
	back, err := ParseMeasurements(h.MRTD, h.RTMR0, h.RTMR1, h.RTMR2, h.RTMR3)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(m) || back != m {
		t.Errorf("round trip changed the measurements")
	}
}

func TestParseMeasurementsErrors(t *testing.T) {
	good := sampleMeasurements().Hex()
	tests := []struct {
		name string
		edit func(h *HexMeasurements)
		want string
	}{
		{"mrtd short", func(h *HexMeasurements) { h.MRTD = "abcd" }, "mrtd: \"abcd\" is 4 characters"},
		{"rtmr0 empty", func(h *HexMeasurements) { h.RTMR0 = "" }, "rtmr0: \"\" is 0 characters"},
		{"rtmr2 upper-case", func(h *HexMeasurements) { h.RTMR2 = strings.ToUpper(h.RTMR2) }, "rtmr2:"},
		{"rtmr3 not hex", func(h *HexMeasurements) { h.RTMR3 = "zz" + h.RTMR3[2:] }, "rtmr3: \"zz"},
		{"rtmr1 too long", func(h *HexMeasurements) { h.RTMR1 += "00" }, "rtmr1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := good
			tc.edit(&h)
			_, err := h.Parse()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Errorf("exit code %d, want 10", outcome.Code(err))
			}
		})
	}
	if _, err := ParseRegisterHex(strings.Repeat("a", 300)); err == nil || !strings.Contains(err.Error(), "…") {
		t.Errorf("long value not abbreviated: %v", err)
	}
}

func TestCompareNamesFirstDifference(t *testing.T) {
	base := sampleMeasurements()
	if err := Compare(base, base); err != nil {
		t.Fatal(err)
	}
	for i, name := range RegisterNames() {
		other := base
		if i == 0 {
			other.MRTD[47] ^= 1
		} else {
			other.RTMR[i-1][0] ^= 1
		}
		err := Compare(other, base)
		if err == nil || !strings.HasPrefix(err.Error(), name+" mismatch: got ") {
			t.Errorf("%s changed: %v", name, err)
		}
		if outcome.Code(err) != outcome.VerificationFailed {
			t.Errorf("exit code %d", outcome.Code(err))
		}
		if other.Equal(base) {
			t.Errorf("%s changed but Equal", name)
		}
	}
	// Two differences: the first in register order is named.
	two := base
	two.RTMR[3][0] ^= 1
	two.RTMR[1][0] ^= 1
	if err := Compare(two, base); err == nil || !strings.HasPrefix(err.Error(), "rtmr1 mismatch") {
		t.Errorf("two differences: %v", err)
	}
}

func TestCheckMeasurements(t *testing.T) {
	q := mustParse(t, readFile(t, intelQuoteFile))
	want := q.Measurements()
	if err := CheckMeasurements(q, want); err != nil {
		t.Fatal(err)
	}
	want.RTMR[2][5] ^= 0xff
	err := CheckMeasurements(q, want)
	if err == nil || !strings.HasPrefix(err.Error(), "quote rtmr2 mismatch: got 8652f0ca") || outcome.Code(err) != outcome.VerificationFailed {
		t.Errorf("error %v", err)
	}
	if err := CheckMeasurements(nil, want); err == nil {
		t.Errorf("nil quote accepted")
	}
}
