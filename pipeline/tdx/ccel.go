package tdx

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// TCG event types a CCEL holds (TCG PC Client Platform Firmware Profile, §10.4.1).
const (
	evNoAction = 0x3
	algSHA384  = 0x000C
)

// ParseCCEL reads a TDX Confidential Computing Event Log (the ACPI CCEL area a TD's firmware
// fills, in the TCG crypto-agile format) and returns its measured events as RTMR events: CC
// measurement register index 1–4 becomes RTMR 0–3, the SHA-384 digest is kept, EV_NO_ACTION
// entries (which extend nothing) are skipped. The log ends at the first all-ones header or at
// the end of the data. Malformed input is a verification error (exit 10) naming the event and
// byte offset.
func ParseCCEL(data []byte) ([]Event, error) {
	r := &ccelReader{data: data}
	sizes, err := r.specID()
	if err != nil {
		return nil, outcome.VerificationErrorf("CCEL: %v", err)
	}
	var events []Event
	for n := 1; ; n++ {
		if r.done() {
			return events, nil
		}
		start := r.off
		e, measured, err := r.event2(sizes)
		if err != nil {
			return nil, outcome.VerificationErrorf("CCEL: event %d at offset %d: %v", n, start, err)
		}
		if measured {
			events = append(events, e)
		}
	}
}

// ccelReader reads little-endian fields with bounds checks.
type ccelReader struct {
	data []byte
	off  int
}

func (r *ccelReader) take(n int, what string) ([]byte, error) {
	if n < 0 || n > len(r.data)-r.off {
		return nil, fmt.Errorf("%s: needs %d bytes at offset %d, only %d left", what, n, r.off, len(r.data)-r.off)
	}
	b := r.data[r.off : r.off+n]
	r.off += n
	return b, nil
}

func (r *ccelReader) u32(what string) (uint32, error) {
	b, err := r.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *ccelReader) u16(what string) (uint16, error) {
	b, err := r.take(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

// done reports whether no further event follows: end of data, fewer bytes than a header, or
// the unused (all-ones or all-zero) remainder of the CCEL area.
func (r *ccelReader) done() bool {
	rest := r.data[r.off:]
	if len(rest) < 8 {
		return len(bytes.Trim(rest, "\xff\x00")) == 0
	}
	idx := binary.LittleEndian.Uint32(rest[0:4])
	typ := binary.LittleEndian.Uint32(rest[4:8])
	return idx == 0xFFFFFFFF || (idx == 0 && typ == 0 && len(bytes.Trim(rest, "\x00")) == 0)
}

// specID reads the SHA-1 format header event and its TCG_EfiSpecIDEvent, returning the digest
// size of each algorithm the log carries.
func (r *ccelReader) specID() (map[uint16]int, error) {
	if _, err := r.u32("header.mr_index"); err != nil {
		return nil, err
	}
	typ, err := r.u32("header.event_type")
	if err != nil {
		return nil, err
	}
	if typ != evNoAction {
		return nil, fmt.Errorf("first event type is 0x%x, want EV_NO_ACTION (0x3) with the Spec ID event", typ)
	}
	if _, err := r.take(20, "header.digest"); err != nil {
		return nil, err
	}
	size, err := r.u32("header.event_size")
	if err != nil {
		return nil, err
	}
	body, err := r.take(int(size), "header.event")
	if err != nil {
		return nil, err
	}
	const sigLen = 16
	if len(body) < sigLen+4+4+4 || !bytes.Equal(body[:sigLen], []byte("Spec ID Event03\x00")) {
		return nil, fmt.Errorf("header event is not a TCG \"Spec ID Event03\" (crypto-agile log)")
	}
	s := &ccelReader{data: body, off: sigLen + 4 + 4}
	n, err := s.u32("spec_id.number_of_algorithms")
	if err != nil {
		return nil, err
	}
	if n == 0 || n > 16 {
		return nil, fmt.Errorf("spec_id.number_of_algorithms is %d, want 1–16", n)
	}
	sizes := make(map[uint16]int, n)
	for i := range int(n) {
		alg, err := s.u16(fmt.Sprintf("spec_id.digest_sizes[%d].algorithm_id", i))
		if err != nil {
			return nil, err
		}
		sz, err := s.u16(fmt.Sprintf("spec_id.digest_sizes[%d].digest_size", i))
		if err != nil {
			return nil, err
		}
		sizes[alg] = int(sz)
	}
	if sizes[algSHA384] != RegisterSize {
		return nil, fmt.Errorf("spec_id: the log carries no SHA-384 digests (algorithm 0x000c, 48 bytes)")
	}
	return sizes, nil
}

// event2 reads one TCG_PCR_EVENT2; measured is false for EV_NO_ACTION.
func (r *ccelReader) event2(sizes map[uint16]int) (Event, bool, error) {
	idx, err := r.u32("mr_index")
	if err != nil {
		return Event{}, false, err
	}
	typ, err := r.u32("event_type")
	if err != nil {
		return Event{}, false, err
	}
	count, err := r.u32("digests.count")
	if err != nil {
		return Event{}, false, err
	}
	if count > uint32(len(sizes)) {
		return Event{}, false, fmt.Errorf("digests.count is %d, the log declares %d algorithms", count, len(sizes))
	}
	var digest []byte
	for i := range int(count) {
		alg, err := r.u16(fmt.Sprintf("digests[%d].algorithm_id", i))
		if err != nil {
			return Event{}, false, err
		}
		sz, ok := sizes[alg]
		if !ok {
			return Event{}, false, fmt.Errorf("digests[%d]: algorithm 0x%04x is not declared in the Spec ID event", i, alg)
		}
		d, err := r.take(sz, fmt.Sprintf("digests[%d]", i))
		if err != nil {
			return Event{}, false, err
		}
		if alg == algSHA384 {
			digest = d
		}
	}
	size, err := r.u32("event_size")
	if err != nil {
		return Event{}, false, err
	}
	data, err := r.take(int(size), "event")
	if err != nil {
		return Event{}, false, err
	}
	if typ == evNoAction {
		return Event{}, false, nil
	}
	if idx < 1 || idx > NumRTMRs {
		return Event{}, false, fmt.Errorf("mr_index %d is not an RTMR (CC MR index 1–4)", idx)
	}
	if digest == nil {
		return Event{}, false, fmt.Errorf("no SHA-384 digest")
	}
	e := Event{IMR: int(idx) - 1, EventType: TCGEventTypeName(typ), Event: describeEvent(typ, data)}
	copy(e.Digest[:], digest)
	return e, true, nil
}

// TCGEventTypeName returns the TCG name of an event type ("EV_EFI_ACTION"), or its hex value.
func TCGEventTypeName(t uint32) string {
	switch t {
	case 0x0:
		return "EV_PREBOOT_CERT"
	case 0x1:
		return "EV_POST_CODE"
	case 0x3:
		return "EV_NO_ACTION"
	case 0x4:
		return "EV_SEPARATOR"
	case 0x5:
		return "EV_ACTION"
	case 0x6:
		return "EV_EVENT_TAG"
	case 0x7:
		return "EV_S_CRTM_CONTENTS"
	case 0x8:
		return "EV_S_CRTM_VERSION"
	case 0x9:
		return "EV_CPU_MICROCODE"
	case 0xA:
		return "EV_PLATFORM_CONFIG_FLAGS"
	case 0xB:
		return "EV_TABLE_OF_DEVICES"
	case 0xC:
		return "EV_COMPACT_HASH"
	case 0xD:
		return "EV_IPL"
	case 0xE:
		return "EV_IPL_PARTITION_DATA"
	case 0xF:
		return "EV_NONHOST_CODE"
	case 0x10:
		return "EV_NONHOST_CONFIG"
	case 0x11:
		return "EV_NONHOST_INFO"
	case 0x12:
		return "EV_OMIT_BOOT_DEVICE_EVENTS"
	case 0x80000001:
		return "EV_EFI_VARIABLE_DRIVER_CONFIG"
	case 0x80000002:
		return "EV_EFI_VARIABLE_BOOT"
	case 0x80000003:
		return "EV_EFI_BOOT_SERVICES_APPLICATION"
	case 0x80000004:
		return "EV_EFI_BOOT_SERVICES_DRIVER"
	case 0x80000005:
		return "EV_EFI_RUNTIME_SERVICES_DRIVER"
	case 0x80000006:
		return "EV_EFI_GPT_EVENT"
	case 0x80000007:
		return "EV_EFI_ACTION"
	case 0x80000008:
		return "EV_EFI_PLATFORM_FIRMWARE_BLOB"
	case 0x80000009:
		return "EV_EFI_HANDOFF_TABLES"
	case 0x8000000A:
		return "EV_EFI_PLATFORM_FIRMWARE_BLOB2"
	case 0x8000000B:
		return "EV_EFI_HANDOFF_TABLES2"
	case 0x8000000C:
		return "EV_EFI_VARIABLE_BOOT2"
	case 0x80000010:
		return "EV_EFI_HCRTM_EVENT"
	case 0x800000E0:
		return "EV_EFI_VARIABLE_AUTHORITY"
	case 0x800000E1:
		return "EV_EFI_SPDM_FIRMWARE_BLOB"
	case 0x800000E2:
		return "EV_EFI_SPDM_FIRMWARE_CONFIG"
	default:
		return fmt.Sprintf("0x%08x", t)
	}
}

// describeEvent renders the event data of the structured UEFI event types by their name
// (a firmware blob's or handoff table's description, a UEFI variable's name) and falls back
// to describeEventData.
func describeEvent(typ uint32, data []byte) string {
	switch typ {
	case 0x8000000A, 0x8000000B: // EV_EFI_PLATFORM_FIRMWARE_BLOB2, EV_EFI_HANDOFF_TABLES2: u8 size ‖ description
		if len(data) > 0 && int(data[0]) <= len(data)-1 {
			if s, ok := printableASCII(data[1 : 1+int(data[0])]); ok {
				return s
			}
		}
	case 0x80000001, 0x80000002, 0x8000000C, 0x800000E0: // UEFI_VARIABLE_DATA: GUID ‖ u64 name length ‖ u64 data length ‖ UTF-16 name ‖ data
		if len(data) >= 32 {
			n := binary.LittleEndian.Uint64(data[16:24])
			if n > 0 && n <= uint64(len(data)-32)/2 {
				if s, ok := printableUTF16(data[32 : 32+2*n]); ok {
					return "variable " + s
				}
			}
		}
	}
	return describeEventData(data)
}

// describeEventData renders event data for people: printable ASCII or UTF-16 text as text,
// anything else as (at most 32 bytes of) hex with its length.
func describeEventData(data []byte) string {
	if s, ok := printableASCII(data); ok {
		return s
	}
	if s, ok := printableUTF16(data); ok {
		return s
	}
	if len(data) <= 32 {
		return "hex:" + hex.EncodeToString(data)
	}
	return fmt.Sprintf("hex:%s… (%d bytes)", hex.EncodeToString(data[:32]), len(data))
}

func printableASCII(data []byte) (string, bool) {
	t := bytes.TrimRight(data, "\x00")
	if len(t) == 0 {
		return "", false
	}
	for _, c := range t {
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c > 0x7e {
			return "", false
		}
	}
	return string(t), true
}

func printableUTF16(data []byte) (string, bool) {
	if len(data) < 2 || len(data)%2 != 0 {
		return "", false
	}
	u := make([]uint16, 0, len(data)/2)
	for i := 0; i+1 < len(data); i += 2 {
		u = append(u, binary.LittleEndian.Uint16(data[i:]))
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	if len(u) == 0 {
		return "", false
	}
	s := string(utf16.Decode(u))
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
		return "", false
	}
	return s, true
}
