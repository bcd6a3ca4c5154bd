package gcp

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
)

// FuzzQuoteFromAttributes: guest attributes come from the VM (untrusted); decoding them never
// panics, and an accepted quote is the base64 decoding of what was published.
func FuzzQuoteFromAttributes(f *testing.F) {
	f.Add("aGVsbG8=", "", "", "")
	f.Add("", "2", "aGVs", "bG8=")
	f.Add("", "65", "", "")
	f.Add("%%", "", "", "")
	f.Fuzz(func(t *testing.T, whole, parts, p0, p1 string) {
		ga := &computepb.GuestAttributes{QueryValue: &computepb.GuestAttributesValue{}}
		add := func(k, v string) {
			if v != "" {
				ga.QueryValue.Items = append(ga.QueryValue.Items, &computepb.GuestAttributesEntry{Namespace: ptr(GuestAttributeNamespace), Key: ptr(k), Value: ptr(v)})
			}
		}
		add(QuoteKey, whole)
		add(QuotePartsKey, parts)
		add(QuoteKey+"-0", p0)
		add(QuoteKey+"-1", p1)
		raw, done, _, err := quoteFromAttributes(ga, QuoteKey)
		if err != nil || !done {
			return
		}
		text := whole
		if whole == "" {
			text = p0 + p1
			if n, _ := strconv.Atoi(parts); n == 1 {
				text = p0
			}
		}
		want, derr := base64.StdEncoding.Strict().DecodeString(text)
		if derr != nil || !bytes.Equal(raw, want) || len(raw) == 0 {
			t.Fatalf("attributes %q %q %q %q gave %x", whole, parts, p0, p1, raw)
		}
	})
}
