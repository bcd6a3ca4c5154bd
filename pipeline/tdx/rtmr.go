package tdx

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Extend returns the register after extending it with digest: SHA384(rtmr ‖ digest), the
// TDG.MR.RTMR.EXTEND rule (SPEC §11).
func Extend(rtmr [RegisterSize]byte, digest [RegisterSize]byte) [RegisterSize]byte {
	h := sha512.New384()
	h.Write(rtmr[:])
	h.Write(digest[:])
	var out [RegisterSize]byte
	h.Sum(out[:0])
	return out
}

// Digest returns SHA-384 of data, the digest an event extends into an RTMR.
func Digest(data []byte) [RegisterSize]byte { return sha512.Sum384(data) }

// Event is one entry of an RTMR event log: the register it was extended into (IMR 0–3 =
// RTMR0–3), the SHA-384 digest extended, and what was measured. Its JSON form is
// {"imr":0,"digest":"<96 hex>","event_type":"…","event":"…"}.
type Event struct {
	IMR       int
	Digest    [RegisterSize]byte
	EventType string
	Event     string
}

// NewEvent returns an event for RTMR imr whose digest is SHA-384 of data.
func NewEvent(imr int, eventType, event string, data []byte) Event {
	return Event{IMR: imr, Digest: Digest(data), EventType: eventType, Event: event}
}

// eventJSON is the wire form of Event.
type eventJSON struct {
	IMR       *int   `json:"imr"`
	Digest    string `json:"digest"`
	EventType string `json:"event_type"`
	Event     string `json:"event"`
}

// MarshalJSON encodes the event with its digest as lower-case hex.
func (e Event) MarshalJSON() ([]byte, error) {
	imr := e.IMR
	return json.Marshal(eventJSON{IMR: &imr, Digest: hex.EncodeToString(e.Digest[:]), EventType: e.EventType, Event: e.Event})
}

// UnmarshalJSON decodes and checks one event: imr present and 0–3, digest 96 lower-case hex,
// no unknown field.
func (e *Event) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w eventJSON
	if err := dec.Decode(&w); err != nil {
		return err
	}
	if w.IMR == nil {
		return fmt.Errorf("imr: missing")
	}
	if *w.IMR < 0 || *w.IMR >= NumRTMRs {
		return fmt.Errorf("imr: %d is not an RTMR index 0–3", *w.IMR)
	}
	d, err := ParseRegisterHex(w.Digest)
	if err != nil {
		return fmt.Errorf("digest: %v", err)
	}
	*e = Event{IMR: *w.IMR, Digest: d, EventType: w.EventType, Event: w.Event}
	return nil
}

// ParseEventLog strictly decodes a JSON event log (an array of events). Malformed input is a
// verification error (exit 10) naming the event index and field.
func ParseEventLog(data []byte) ([]Event, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raws []json.RawMessage
	if err := dec.Decode(&raws); err != nil {
		return nil, outcome.VerificationErrorf("event log: %v", err)
	}
	if dec.More() {
		return nil, outcome.VerificationErrorf("event log: trailing data after the array")
	}
	if raws == nil {
		return nil, outcome.VerificationErrorf("event log: want a JSON array of events, got null")
	}
	events := make([]Event, len(raws))
	for i, r := range raws {
		if err := events[i].UnmarshalJSON(r); err != nil {
			return nil, outcome.VerificationErrorf("event log: event %d: %v", i, err)
		}
	}
	return events, nil
}

// MarshalEventLog encodes events as an indented JSON array with a trailing newline; an empty
// log is "[]".
func MarshalEventLog(events []Event) ([]byte, error) {
	if events == nil {
		events = []Event{}
	}
	out, err := json.MarshalIndent(events, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode event log: %w", err)
	}
	return append(out, '\n'), nil
}

// Replay computes RTMR0–3 from zero by extending each event's digest into its register, in
// log order. An event whose IMR is not 0–3 is a verification error naming its index.
func Replay(events []Event) ([NumRTMRs][RegisterSize]byte, error) {
	var rtmrs [NumRTMRs][RegisterSize]byte
	for i, e := range events {
		if e.IMR < 0 || e.IMR >= NumRTMRs {
			return rtmrs, outcome.VerificationErrorf("event log: event %d: imr %d is not an RTMR index 0–3", i, e.IMR)
		}
		rtmrs[e.IMR] = Extend(rtmrs[e.IMR], e.Digest)
	}
	return rtmrs, nil
}

// ReplayAndCheck replays events and compares the result with the quote's RTMRs; the error
// (exit 10) names the first mismatching RTMR and both values.
func ReplayAndCheck(events []Event, q *Quote) error {
	if q == nil {
		return outcome.VerificationErrorf("replay event log: no quote")
	}
	got, err := Replay(events)
	if err != nil {
		return err
	}
	for i := range got {
		if got[i] != q.RTMRs[i] {
			return outcome.VerificationErrorf("%s mismatch: event log replays to %s, quote has %s",
				RTMRName(i), hex.EncodeToString(got[i][:]), hex.EncodeToString(q.RTMRs[i][:]))
		}
	}
	return nil
}
