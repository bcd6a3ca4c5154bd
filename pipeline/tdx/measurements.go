// Package tdx turns Intel TDX quotes into measurements: it parses TDX v4 quotes and verifies
// their signature chain with github.com/google/go-tdx-guest, compares MRTD and RTMR0–3 with
// expected values, and replays RTMR event logs (RTMR = SHA384(RTMR ‖ digest), SPEC §11).
//
// It is a leaf package: it knows nothing of releases, policies or stages. Package tdxsim
// beside it is a TDX simulator that produces real, verifiable quotes for local runs.
package tdx

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// RegisterSize is the size in bytes of MRTD and of each RTMR (SHA-384).
const RegisterSize = 48

// NumRTMRs is the number of runtime measurement registers of a TD.
const NumRTMRs = 4

// Measurements are the five registers a release publishes for a TD: the build-time
// measurement MRTD and the runtime registers RTMR0–3.
type Measurements struct {
	MRTD [RegisterSize]byte
	RTMR [NumRTMRs][RegisterSize]byte
}

// HexMeasurements are Measurements as 96-character lower-case hex strings, with the field
// names and JSON keys of measure.Record and of the attestation policies.
type HexMeasurements struct {
	MRTD  string `json:"mrtd"`
	RTMR0 string `json:"rtmr0"`
	RTMR1 string `json:"rtmr1"`
	RTMR2 string `json:"rtmr2"`
	RTMR3 string `json:"rtmr3"`
}

// RegisterNames returns the register names in order: mrtd, rtmr0, rtmr1, rtmr2, rtmr3.
func RegisterNames() []string { return []string{"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"} }

// RTMRName returns the name of RTMR i ("rtmr0" … "rtmr3").
func RTMRName(i int) string { return fmt.Sprintf("rtmr%d", i) }

// registers returns the five registers in RegisterNames order.
func (m Measurements) registers() [5][RegisterSize]byte {
	return [5][RegisterSize]byte{m.MRTD, m.RTMR[0], m.RTMR[1], m.RTMR[2], m.RTMR[3]}
}

// MRTDHex returns MRTD as 96 lower-case hex characters.
func (m Measurements) MRTDHex() string { return hex.EncodeToString(m.MRTD[:]) }

// RTMRHex returns RTMR i as 96 lower-case hex characters; it panics if i is not 0–3, like an
// out-of-range array index.
func (m Measurements) RTMRHex(i int) string { return hex.EncodeToString(m.RTMR[i][:]) }

// Hex returns the five registers as lower-case hex strings.
func (m Measurements) Hex() HexMeasurements {
	return HexMeasurements{MRTD: m.MRTDHex(), RTMR0: m.RTMRHex(0), RTMR1: m.RTMRHex(1), RTMR2: m.RTMRHex(2), RTMR3: m.RTMRHex(3)}
}

// Fields returns the registers by name, in order, as measure.Record.Fields does.
func (h HexMeasurements) Fields() [][2]string {
	return [][2]string{{"mrtd", h.MRTD}, {"rtmr0", h.RTMR0}, {"rtmr1", h.RTMR1}, {"rtmr2", h.RTMR2}, {"rtmr3", h.RTMR3}}
}

// Parse decodes the five registers; each must be exactly 96 lower-case hex characters. The
// error names the first bad field.
func (h HexMeasurements) Parse() (Measurements, error) {
	var m Measurements
	for i, f := range h.Fields() {
		reg, err := ParseRegisterHex(f[1])
		if err != nil {
			return Measurements{}, outcome.VerificationErrorf("%s: %v", f[0], err)
		}
		if i == 0 {
			m.MRTD = reg
		} else {
			m.RTMR[i-1] = reg
		}
	}
	return m, nil
}

// ParseMeasurements decodes the five registers from hex strings (as stored in measure.Record
// and the attestation policies); the error names the first bad field.
func ParseMeasurements(mrtd, rtmr0, rtmr1, rtmr2, rtmr3 string) (Measurements, error) {
	return HexMeasurements{MRTD: mrtd, RTMR0: rtmr0, RTMR1: rtmr1, RTMR2: rtmr2, RTMR3: rtmr3}.Parse()
}

// ParseRegisterHex decodes one register: exactly 96 lower-case hex characters.
func ParseRegisterHex(s string) ([RegisterSize]byte, error) {
	var out [RegisterSize]byte
	if len(s) != 2*RegisterSize {
		return out, fmt.Errorf("%q is %d characters, want %d lower-case hex characters", abbreviate(s), len(s), 2*RegisterSize)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return out, fmt.Errorf("%q: character %d (%q) is not lower-case hex", abbreviate(s), i, c)
		}
	}
	if _, err := hex.Decode(out[:], []byte(s)); err != nil {
		return out, fmt.Errorf("%q: %v", abbreviate(s), err)
	}
	return out, nil
}

// abbreviate shortens long values in error messages.
func abbreviate(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// Equal reports whether all five registers are equal.
func (m Measurements) Equal(other Measurements) bool {
	a, b := m.registers(), other.registers()
	for i := range a {
		if !bytes.Equal(a[i][:], b[i][:]) {
			return false
		}
	}
	return true
}

// Compare returns nil when got equals want, else a verification error (exit 10) naming the
// first differing register (mrtd, then rtmr0 … rtmr3) with both values.
func Compare(got, want Measurements) error {
	g, w := got.registers(), want.registers()
	names := RegisterNames()
	for i := range g {
		if g[i] != w[i] {
			return outcome.VerificationErrorf("%s mismatch: got %s, want %s", names[i], hex.EncodeToString(g[i][:]), hex.EncodeToString(w[i][:]))
		}
	}
	return nil
}

// CheckMeasurements compares the quote's MRTD and RTMR0–3 with want; the error (exit 10)
// names the first differing register.
func CheckMeasurements(q *Quote, want Measurements) error {
	if q == nil {
		return outcome.VerificationErrorf("check measurements: no quote")
	}
	if err := Compare(q.Measurements(), want); err != nil {
		return fmt.Errorf("quote %w", err)
	}
	return nil
}
