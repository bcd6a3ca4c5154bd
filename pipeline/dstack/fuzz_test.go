package dstack

import (
	"testing"
)

// FuzzParseOSImage: any bytes give an image that validates, or an error; never a panic.
func FuzzParseOSImage(f *testing.F) {
	f.Add(pinnedOSImage)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema_version":"1","vm_shape":{"vcpus":-1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := ParseOSImage(data, "fuzz.json")
		if err != nil {
			return
		}
		if _, err := img.Measurements(); err != nil {
			t.Fatalf("a parsed image does not give its measurements: %v", err)
		}
	})
}

// FuzzGuestEvents: any event log the agent sends decodes to events or an error.
func FuzzGuestEvents(f *testing.F) {
	f.Add("abc", 3, uint32(RuntimeEventType), "compose-hash", "00")
	f.Fuzz(func(t *testing.T, digest string, imr int, typ uint32, event, payload string) {
		q := &GuestQuote{EventLog: []GuestEvent{{IMR: imr, EventType: typ, Digest: digest, Event: event, EventPayload: payload}}}
		evs, err := q.Events()
		if err == nil && len(evs) != 1 {
			t.Fatalf("%d events from one", len(evs))
		}
	})
}
