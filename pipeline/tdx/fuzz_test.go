package tdx

import (
	"bytes"
	"testing"
)

func addQuoteSeeds(f *testing.F) {
	for _, file := range []string{intelQuoteFile, gceQuoteFile} {
		raw := readFile(f, file)
		f.Add(raw)
		f.Add(raw[:SignedRegionSize+4])
	}
	f.Add([]byte{4, 0, 2, 0, 0x81, 0, 0, 0})
}

// FuzzParseQuote checks that no input panics the parser and that a parsed quote reports
// exactly the bytes it was given.
func FuzzParseQuote(f *testing.F) {
	addQuoteSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := ParseQuote(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(q.Raw(), raw) || q.Version != QuoteVersion || q.TEEType != TEETypeTDX {
			t.Fatalf("parsed quote disagrees with its input")
		}
		if s := q.Summary(); s.Size != len(raw) || s.MRTD != q.Measurements().MRTDHex() {
			t.Fatalf("summary disagrees with the quote")
		}
	})
}

// FuzzVerifyQuote checks that no parsable input panics the verifier, and that only the two
// untouched sample quotes verify. Slower than FuzzParseQuote: every parsable input runs the
// certificate chain and signature checks.
func FuzzVerifyQuote(f *testing.F) {
	addQuoteSeeds(f)
	samples := [][]byte{readFile(f, intelQuoteFile), readFile(f, gceQuoteFile)}
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := ParseQuote(raw)
		if err != nil {
			return
		}
		if err := q.Verify(VerifyOptions{Now: verifyAt()}); err == nil {
			signed := func(b []byte) []byte { return b[:SignedRegionSize] }
			if !bytes.Equal(signed(raw), signed(samples[0])) && !bytes.Equal(signed(raw), signed(samples[1])) {
				t.Fatalf("a quote with a changed header or body verified")
			}
		}
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
