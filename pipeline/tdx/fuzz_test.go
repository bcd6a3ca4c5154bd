package tdx

import (
	"bytes"
	"testing"
)

// FuzzParseQuote checks that no input panics the parser or the verifier, and that a parsed
// quote reports exactly the bytes it was given.
func FuzzParseQuote(f *testing.F) {
	for _, file := range []string{intelQuoteFile, gceQuoteFile} {
		raw := readFile(f, file)
		f.Add(raw)
		f.Add(raw[:SignedRegionSize+4])
	}
	f.Add([]byte{4, 0, 2, 0, 0x81, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := ParseQuote(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(q.Raw(), raw) || q.Version != QuoteVersion || q.TEEType != TEETypeTDX {
			t.Fatalf("parsed quote disagrees with its input")
		}
		_ = q.Summary()
		_ = q.Verify(VerifyOptions{Now: verifyAt()})
	})
}

// FuzzParseEventLog checks that no input panics the JSON event log parser and that whatever
// parses re-encodes to a log that parses to the same events and replays.
func FuzzParseEventLog(f *testing.F) {
	log, err := MarshalEventLog([]Event{NewEvent(0, "a", "b", []byte("c")), NewEvent(3, "runtime", "compose-hash", nil)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(log)
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"imr":9}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := ParseEventLog(data)
		if err != nil {
			return
		}
		if _, err := Replay(events); err != nil {
			t.Fatalf("parsed log does not replay: %v", err)
		}
		again, err := MarshalEventLog(events)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseEventLog(again)
		if err != nil || len(back) != len(events) {
			t.Fatalf("re-encoded log: %v", err)
		}
		for i := range back {
			if back[i] != events[i] {
				t.Fatalf("event %d changed in a round trip", i)
			}
		}
	})
}

// FuzzParseCCEL checks that no input panics the CCEL parser and that its events replay.
func FuzzParseCCEL(f *testing.F) {
	data := readFile(f, gceCCELFile)
	f.Add(data)
	f.Add(data[:200])
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := ParseCCEL(data)
		if err != nil {
			return
		}
		if _, err := Replay(events); err != nil {
			t.Fatalf("CCEL events do not replay: %v", err)
		}
	})
}
