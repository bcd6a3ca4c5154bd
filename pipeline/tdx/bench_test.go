package tdx

import "testing"

func BenchmarkParseQuote(b *testing.B) {
	raw := readFile(b, intelQuoteFile)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseQuote(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyQuote(b *testing.B) {
	raw := readFile(b, intelQuoteFile)
	opts := VerifyOptions{Now: verifyAt()}
	for b.Loop() {
		if err := VerifyQuote(raw, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCCELAndReplay(b *testing.B) {
	data := readFile(b, gceCCELFile)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		events, err := ParseCCEL(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Replay(events); err != nil {
			b.Fatal(err)
		}
	}
}
