package tdx

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

func mustHex48(t testing.TB, s string) [RegisterSize]byte {
	t.Helper()
	r, err := ParseRegisterHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The expected values were computed with Python's hashlib, independently of this package:
// hashlib.sha384(rtmr + digest).
func TestExtendKnownVectors(t *testing.T) {
	var zero [RegisterSize]byte
	if got, want := hex.EncodeToString(func() []byte { r := Extend(zero, zero); return r[:] }()),
		"f57bb7ed82c6ae4a29e6c9879338c592c7d42a39135583e8ccbe3940f2344b0eb6eb8503db0ffd6a39ddd00cd07d8317"; got != want {
		t.Errorf("Extend(0, 0) = %s, want %s", got, want)
	}
	if got, want := Extend(zero, Digest(nil)), mustHex48(t, "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7b964fc500a"); got != want {
		t.Errorf("Extend(0, sha384('')) = %x, want %x", got, want)
	}
	// A dstack-like RTMR3 sequence.
	events := []Event{
		NewEvent(3, "runtime", "system-preparing", []byte("system-preparing")),
		NewEvent(3, "runtime", "app-id", []byte("app-id")),
		NewEvent(3, "runtime", "compose-hash", []byte("compose-hash")),
	}
	if events[2].Digest != mustHex48(t, "296db4eb525973e02dc53223e9f0ff40c9124f881de36872992f438e5bfb5e3429c44c7e6e5f605acf283e95f2b7c11f") {
		t.Errorf("NewEvent digest is not SHA-384 of the data")
	}
	rtmrs, err := Replay(events)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex48(t, "9fbc202d0d0c5972b57a22bbe9f41494c027f34ea12c86a548761f71b57c481c702d11f7cd65e6f34ff1a21ae632d20c")
	if rtmrs[3] != want || rtmrs[0] != zero || rtmrs[1] != zero || rtmrs[2] != zero {
		t.Errorf("Replay = %x, want rtmr3 %x and zeros", rtmrs, want)
	}
	// Order matters.
	swapped, _ := Replay([]Event{events[1], events[0], events[2]})
	if swapped[3] == want {
		t.Errorf("replay is order-independent")
	}
}

func TestReplayRejectsBadIMR(t *testing.T) {
	for _, imr := range []int{-1, 4, 100} {
		_, err := Replay([]Event{NewEvent(0, "a", "b", nil), {IMR: imr}})
		if err == nil || !strings.Contains(err.Error(), "event 1: imr") || outcome.Code(err) != outcome.VerificationFailed {
			t.Errorf("imr %d: error %v", imr, err)
		}
	}
	if r, err := Replay(nil); err != nil || r != [4][48]byte{} {
		t.Errorf("empty log: %x, %v", r, err)
	}
}

func TestEventLogJSONRoundTrip(t *testing.T) {
	events := []Event{
		NewEvent(0, "EV_EFI_HANDOFF_TABLES2", "td-hob", []byte("hob")),
		NewEvent(3, "runtime", "compose-hash \"quoted\" <x>", []byte("c")),
	}
	data, err := MarshalEventLog(events)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"imr": 0`)) || !bytes.Contains(data, []byte(`"digest": "`+hex.EncodeToString(events[0].Digest[:])+`"`)) ||
		!bytes.Contains(data, []byte(`"event_type": "EV_EFI_HANDOFF_TABLES2"`)) || !bytes.HasSuffix(data, []byte("]\n")) {
		t.Errorf("unexpected encoding:\n%s", data)
	}
	back, err := ParseEventLog(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0] != events[0] || back[1] != events[1] {
		t.Errorf("round trip: %+v", back)
	}
	empty, err := MarshalEventLog(nil)
	if err != nil || string(empty) != "[]\n" {
		t.Errorf("empty log: %q, %v", empty, err)
	}
	if got, err := ParseEventLog(empty); err != nil || len(got) != 0 {
		t.Errorf("parse empty log: %v, %v", got, err)
	}
}

func TestParseEventLogErrors(t *testing.T) {
	d := strings.Repeat("ab", 48)
	tests := []struct {
		name, data, want string
	}{
		{"not JSON", "{", "event log:"},
		{"object", `{"imr":0}`, "event log:"},
		{"null", `null`, "got null"},
		{"trailing", `[] []`, "trailing data"},
		{"missing imr", `[{"digest":"` + d + `"}]`, "event 0: imr: missing"},
		{"imr 4", `[{"imr":0,"digest":"` + d + `"},{"imr":4,"digest":"` + d + `"}]`, "event 1: imr: 4 is not an RTMR index"},
		{"imr negative", `[{"imr":-1,"digest":"` + d + `"}]`, "imr: -1"},
		{"imr string", `[{"imr":"0","digest":"` + d + `"}]`, "event 0:"},
		{"short digest", `[{"imr":0,"digest":"abcd"}]`, "event 0: digest: \"abcd\" is 4 characters"},
		{"upper-case digest", `[{"imr":0,"digest":"` + strings.ToUpper(d) + `"}]`, "is not lower-case hex"},
		{"unknown field", `[{"imr":0,"digest":"` + d + `","pcr":1}]`, `unknown field "pcr"`},
		{"event not object", `[1]`, "event 0:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEventLog([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Errorf("exit code %d, want 10", outcome.Code(err))
			}
		})
	}
}

func TestReplayAndCheckGCE(t *testing.T) {
	q := mustParse(t, readFile(t, gceQuoteFile))
	events, err := ParseCCEL(readFile(t, gceCCELFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := ReplayAndCheck(events, q); err != nil {
		t.Fatalf("real GCE event log does not replay to its quote: %v", err)
	}
	// A JSON round trip keeps the log replayable.
	data, err := MarshalEventLog(events)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseEventLog(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := ReplayAndCheck(back, q); err != nil {
		t.Fatal(err)
	}
	// Tampering with, dropping or adding an event names the RTMR it lands in.
	for i, e := range events {
		if e.IMR != 1 {
			continue
		}
		bad := append([]Event(nil), events...)
		bad[i].Digest[0] ^= 1
		if err := ReplayAndCheck(bad, q); err == nil || !strings.HasPrefix(err.Error(), "rtmr1 mismatch: event log replays to") {
			t.Errorf("tampered rtmr1 event: %v", err)
		}
		dropped := append(append([]Event(nil), events[:i]...), events[i+1:]...)
		if err := ReplayAndCheck(dropped, q); err == nil || !strings.Contains(err.Error(), "rtmr1 mismatch") {
			t.Errorf("dropped rtmr1 event: %v", err)
		}
		break
	}
	extra := append(append([]Event(nil), events...), NewEvent(3, "runtime", "late", []byte("x")))
	if err := ReplayAndCheck(extra, q); err == nil || !strings.Contains(err.Error(), "rtmr3 mismatch") || outcome.Code(err) != outcome.VerificationFailed {
		t.Errorf("extra rtmr3 event: %v", err)
	}
	if err := ReplayAndCheck(events, nil); err == nil {
		t.Errorf("nil quote accepted")
	}
	if err := ReplayAndCheck([]Event{{IMR: 9}}, q); err == nil || !strings.Contains(err.Error(), "imr 9") {
		t.Errorf("bad imr: %v", err)
	}
}

func TestParseCCEL(t *testing.T) {
	data := readFile(t, gceCCELFile)
	events, err := ParseCCEL(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 43 {
		t.Errorf("%d events, want 43", len(events))
	}
	want := []Event{
		{IMR: 0, EventType: "EV_EFI_HANDOFF_TABLES2", Event: "TdxTable"},
		{IMR: 0, EventType: "EV_EFI_PLATFORM_FIRMWARE_BLOB2", Event: "Fv(48DB5E17-707C-472D-91CD-1613E7EF51B0)"},
		{IMR: 0, EventType: "EV_EFI_VARIABLE_DRIVER_CONFIG", Event: "variable SecureBoot"},
	}
	for i, w := range want {
		if events[i].IMR != w.IMR || events[i].EventType != w.EventType || events[i].Event != w.Event {
			t.Errorf("event %d = %+v, want %+v", i, events[i], w)
		}
	}
	last := events[len(events)-1]
	if last.IMR != 1 || last.Event != "Exit Boot Services Returned with Success" {
		t.Errorf("last event %+v", last)
	}
	// The CCEL area is larger than the log; the rest is 0xFF (as in the original 256 KiB file) or zeros.
	for _, fill := range []byte{0xFF, 0x00} {
		padded := append(append([]byte(nil), data...), bytes.Repeat([]byte{fill}, 4096)...)
		got, err := ParseCCEL(padded)
		if err != nil || len(got) != len(events) {
			t.Errorf("fill 0x%02x: %d events, %v", fill, len(got), err)
		}
	}
}

func TestParseCCELErrors(t *testing.T) {
	data := readFile(t, gceCCELFile)
	specEnd := 32 + int(binary.LittleEndian.Uint32(data[28:32])) // end of the header event
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "header.mr_index: needs 4 bytes"},
		{"not EV_NO_ACTION", patched(data, func(b []byte) { b[4] = 1 }), "first event type is 0x1"},
		{"no spec id", patched(data, func(b []byte) { b[32] = 'X' }), "Spec ID Event03"},
		{"header size overruns", patched(data, func(b []byte) { binary.LittleEndian.PutUint32(b[28:], 0xFFFFFFF0) }), "header.event: needs"},
		{"no SHA-384", patched(data, func(b []byte) { b[32+24+4] = 0x0B }), "no SHA-384"},
		{"zero algorithms", patched(data, func(b []byte) { binary.LittleEndian.PutUint32(b[32+24:], 0) }), "number_of_algorithms is 0"},
		{"MRTD index", patched(data, func(b []byte) { binary.LittleEndian.PutUint32(b[specEnd:], 0) }), "event 1 at offset " + strconv.Itoa(specEnd) + ": mr_index 0 is not an RTMR"},
		{"index 5", patched(data, func(b []byte) { binary.LittleEndian.PutUint32(b[specEnd:], 5) }), "mr_index 5"},
		{"too many digests", patched(data, func(b []byte) { binary.LittleEndian.PutUint32(b[specEnd+8:], 2) }), "digests.count is 2"},
		{"undeclared algorithm", patched(data, func(b []byte) { binary.LittleEndian.PutUint16(b[specEnd+12:], 0x0B) }), "algorithm 0x000b is not declared"},
		{"truncated event", data[:specEnd+30], "digests[0]: needs 48 bytes"},
		{"event size overruns", patched(data, func(b []byte) { binary.LittleEndian.PutUint32(b[specEnd+14+48:], 0x7FFFFFFF) }), "event: needs 2147483647 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCCEL(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Errorf("exit code %d, want 10", outcome.Code(err))
			}
		})
	}
}

func TestTCGEventTypeName(t *testing.T) {
	for typ, want := range map[uint32]string{0x4: "EV_SEPARATOR", 0xD: "EV_IPL", 0x80000003: "EV_EFI_BOOT_SERVICES_APPLICATION", 0x800000E0: "EV_EFI_VARIABLE_AUTHORITY", 0x1234: "0x00001234"} {
		if got := TCGEventTypeName(typ); got != want {
			t.Errorf("TCGEventTypeName(0x%x) = %s, want %s", typ, got, want)
		}
	}
}

func TestDescribeEventData(t *testing.T) {
	utf16 := []byte{'a', 0, 'b', 0, 0, 0}
	tests := []struct {
		data []byte
		want string
	}{
		{[]byte("grub_cmd: x\x00"), "grub_cmd: x"},
		{utf16, "ab"},
		{[]byte{0, 0, 0, 0}, "hex:00000000"},
		{bytes.Repeat([]byte{1}, 40), "hex:" + strings.Repeat("01", 32) + "… (40 bytes)"},
	}
	for _, tc := range tests {
		if got := describeEventData(tc.data); got != tc.want {
			t.Errorf("describeEventData(%x) = %q, want %q", tc.data, got, tc.want)
		}
	}
}
