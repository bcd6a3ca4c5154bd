package tdx

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	upstream "github.com/google/go-tdx-guest/testing/testdata"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// The sample quotes are copies of go-tdx-guest's test data (Apache-2.0; see testdata/README.md).
const (
	intelQuoteFile = "testdata/intel-spr-e4-quote.dat" // testing/testdata/tdx_prod_quote_SPR_E4.dat
	gceQuoteFile   = "testdata/gce-cos-113-quote.dat"  // testing/testdata/ccel/cos-113-tdx-quote.dat
	gceCCELFile    = "testdata/gce-cos-113-ccel.dat"   // testing/testdata/ccel/ccel_data.dat, 0xFF fill trimmed
	intelQuoteSHA  = "6dde5548bec99147fef832643301f113df99931547be26df8ac376c4eaa5b5a7"
	gceQuoteSHA    = "54334c81b4e03634ab3a269ad397c9cea3b5c9ee96c57505b684470b964fd15e"
	gceCCELSHA     = "2c5c2dc208ec351f9ba9fe02bd77c974993c4bb37dfec6de72572004db0acfa6"
	zero48Hex      = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	intelMRTDHex   = "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb"
	gceMRTDHex     = "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustParse(t testing.TB, raw []byte) *Quote {
	t.Helper()
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatalf("ParseQuote: %v", err)
	}
	return q
}

func TestSampleFilesAreUpstreamCopies(t *testing.T) {
	for file, want := range map[string]string{intelQuoteFile: intelQuoteSHA, gceQuoteFile: gceQuoteSHA, gceCCELFile: gceCCELSHA} {
		if got := sha256Hex(readFile(t, file)); got != want {
			t.Errorf("%s: sha256 %s, want %s", file, got, want)
		}
	}
	// The Intel quote is the one go-tdx-guest embeds for its own tests.
	if !bytes.Equal(readFile(t, intelQuoteFile), upstream.RawQuote) {
		t.Errorf("%s differs from go-tdx-guest's testdata.RawQuote", intelQuoteFile)
	}
}

// TestParseIntelSampleQuote asserts the values go-tdx-guest's validate_test.go states for its
// production sample quote (tdx_prod_quote_SPR_E4.dat, "deep check" case).
func TestParseIntelSampleQuote(t *testing.T) {
	q := mustParse(t, readFile(t, intelQuoteFile))
	s := q.Summary()
	want := map[string][2]string{
		"qe_vendor_id":  {s.QEVendorID, "939a7233f79c4ca9940a0db3957f0607"},
		"tee_tcb_svn":   {s.TEETCBSVN, "03000400000000000000000000000000"},
		"mr_seam":       {s.MRSeam, "2fd279c16164a93dd5bf373d834328d46008c2b693af9ebb865b08b2ced320c9a89b4869a9fab60fbe9d0c5a5363c656"},
		"td_attributes": {s.TDAttributes, "0000004000000000"},
		"xfam":          {s.XFAM, "e71a060000000000"},
		"mrtd":          {s.MRTD, intelMRTDHex},
		"mr_config_id":  {s.MRConfigID, zero48Hex},
		"mr_owner":      {s.MROwner, zero48Hex},
		"mr_owner_cfg":  {s.MROwnerConfig, zero48Hex},
		"rtmr0":         {s.RTMR0, "2927da70461cd63266f43230cc1849c03ef25ebe490062a801d8fcc80af42976823adf08f833c1e50b51779c6593f32a"},
		"rtmr1":         {s.RTMR1, "2c700b8ba9b85783f8be9fb9443647bdc0bb3c50747f06297cc6538c25a5f589c4b56d035c59107c6bc5800db2cacb61"},
		"rtmr2":         {s.RTMR2, "8652f0caaba7e215ea442dc36a4499d8fec3362f3a0b2ca151cbe4b3e6466fe59c7368b3c2287fc7c3bf5c924eb4424e"},
		"rtmr3":         {s.RTMR3, zero48Hex},
		"report_data":   {s.ReportData, "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113"},
		"quote_sha256":  {s.QuoteSHA256, intelQuoteSHA},
	}
	for name, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %s, want %s", name, v[0], v[1])
		}
	}
	if s.Version != 4 || s.TEEType != "tdx" || s.AttestationKeyType != 2 || s.Size != 4974 || s.Debug {
		t.Errorf("header/size: %+v", s)
	}
	if q.Measurements().MRTDHex() != intelMRTDHex || q.SHA256() != intelQuoteSHA {
		t.Errorf("Measurements/SHA256 disagree with Summary")
	}
	if !bytes.Equal(q.Raw(), readFile(t, intelQuoteFile)) {
		t.Errorf("Raw() is not the input")
	}
	if !bytes.HasPrefix(q.PCKCertChain, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("PCK chain does not start with a PEM certificate")
	}
	if q.Proto().GetTdQuoteBody() == nil {
		t.Errorf("Proto() has no TD quote body")
	}
}

// TestParseGCESampleQuote asserts what go-tdx-guest's rtmr/ccel_test.go establishes for the
// GCE quote: its report data is nonce.dat (64 zero bytes) and its RTMRs are those the
// accompanying CCEL replays to (recomputed here by ParseCCEL + Replay, independently of the
// quote parser).
func TestParseGCESampleQuote(t *testing.T) {
	q := mustParse(t, readFile(t, gceQuoteFile))
	if q.ReportData != [64]byte{} {
		t.Errorf("report data = %x, want 64 zero bytes (nonce.dat)", q.ReportData)
	}
	if got := q.Measurements().MRTDHex(); got != gceMRTDHex {
		t.Errorf("mrtd = %s, want %s", got, gceMRTDHex)
	}
	events, err := ParseCCEL(readFile(t, gceCCELFile))
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := Replay(events)
	if err != nil {
		t.Fatal(err)
	}
	if replayed != q.RTMRs {
		t.Errorf("quote RTMRs %x\nCCEL replay  %x", q.RTMRs, replayed)
	}
	wantHex := []string{
		"3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
		"f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
		"4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1",
		zero48Hex,
	}
	for i, w := range wantHex {
		if got := q.Measurements().RTMRHex(i); got != w {
			t.Errorf("rtmr%d = %s, want %s", i, got, w)
		}
	}
	s := q.Summary()
	if s.TDAttributes != "0000001000000000" || s.Debug || s.TEETCBSVN != "04010700000000000000000000000000" {
		t.Errorf("td attributes / tcb svn: %+v", s)
	}
}

func TestTDAttributesDebug(t *testing.T) {
	q := mustParse(t, readFile(t, intelQuoteFile))
	q.TDAttributes[0] |= 1
	if !q.Debug() || !q.Summary().Debug {
		t.Errorf("DEBUG bit set but Debug() false")
	}
}

// put16/put32 patch little-endian fields of a copy of the quote.
func patched(raw []byte, fn func(b []byte)) []byte {
	b := append([]byte(nil), raw...)
	fn(b)
	return b
}

func TestParseQuoteMalformed(t *testing.T) {
	raw := readFile(t, intelQuoteFile)
	sdSize := int(binary.LittleEndian.Uint32(raw[offSignedDataSize:]))
	cd := offSignedData + SignatureSize + AttestationKeySize // certification data
	qe := cd + 6                                             // QE report certification data
	auth := qe + QEReportSize + SignatureSize                // QE auth data
	authSize := int(binary.LittleEndian.Uint16(raw[auth:]))
	chain := auth + 2 + authSize // PCK chain header
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"empty", nil, "quote is 0 bytes"},
		{"short", raw[:100], "quote is 100 bytes"},
		{"just under minimum", raw[:0x3FB], "at least 1020"},
		{"version 3", patched(raw, func(b []byte) { binary.LittleEndian.PutUint16(b[0:], 3) }), "header.version (offset 0x0) is 3"},
		{"attestation key type", patched(raw, func(b []byte) { binary.LittleEndian.PutUint16(b[2:], 3) }), "header.attestation_key_type"},
		{"SGX tee type", patched(raw, func(b []byte) { binary.LittleEndian.PutUint32(b[4:], 0) }), "header.tee_type (offset 0x4) is 0x0"},
		{"signed data larger than quote", patched(raw, func(b []byte) { binary.LittleEndian.PutUint32(b[offSignedDataSize:], uint32(len(raw))) }), "signed_data_size"},
		{"signed data tiny", patched(raw, func(b []byte) { binary.LittleEndian.PutUint32(b[offSignedDataSize:], 10) }), "signed data is 10 bytes"},
		{"signed data huge", patched(raw, func(b []byte) { binary.LittleEndian.PutUint32(b[offSignedDataSize:], 0xFFFFFFFF) }), "signed_data_size"},
		{"certification data type", patched(raw, func(b []byte) { binary.LittleEndian.PutUint16(b[cd:], 5) }), "certification_data.type is 5"},
		{"certification data size", patched(raw, func(b []byte) { binary.LittleEndian.PutUint32(b[cd+2:], 7) }), "certification_data.size is 7"},
		{"signed data one byte short", patched(raw, func(b []byte) { binary.LittleEndian.PutUint32(b[offSignedDataSize:], uint32(sdSize-1)) }), "certification_data.size"},
		{"auth data size overruns", patched(raw, func(b []byte) { binary.LittleEndian.PutUint16(b[auth:], 0xFFFF) }), "qe_auth_data.size is 65535"},
		{"pck chain type", patched(raw, func(b []byte) { binary.LittleEndian.PutUint16(b[chain:], 1) }), "pck_cert_chain.type is 1"},
		{"pck chain size", patched(raw, func(b []byte) { binary.LittleEndian.PutUint32(b[chain+2:], 12) }), "pck_cert_chain.size is 12"},
		{"truncated chain", raw[:offSignedData+sdSize-10], "signed_data_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQuote(tc.raw)
			if err == nil {
				t.Fatalf("ParseQuote succeeded: %+v", q.Summary())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Errorf("exit code %d, want %d", outcome.Code(err), outcome.VerificationFailed)
			}
		})
	}
}

// TestParseQuoteEveryTruncation parses every prefix of both sample quotes that cuts into the
// signed data: each is an error, none panics. (Bytes after the signed data are allowed.)
func TestParseQuoteEveryTruncation(t *testing.T) {
	for _, file := range []string{intelQuoteFile, gceQuoteFile} {
		raw := readFile(t, file)
		end := offSignedData + int(binary.LittleEndian.Uint32(raw[offSignedDataSize:]))
		if _, err := ParseQuote(raw[:end]); err != nil {
			t.Fatalf("%s without its trailing bytes: %v", file, err)
		}
		for n := range end {
			if _, err := ParseQuote(raw[:n]); err == nil {
				t.Fatalf("%s: prefix of %d bytes parsed", file, n)
			}
		}
	}
}

func TestParseQuoteKeepsExtraBytes(t *testing.T) {
	raw := append(readFile(t, intelQuoteFile), 0xAA, 0xBB)
	q := mustParse(t, raw)
	if len(q.Raw()) != len(raw) || q.Summary().Size != len(raw) {
		t.Errorf("extra bytes after the signed data were dropped")
	}
}

func TestParseQuoteErrorIsTyped(t *testing.T) {
	_, err := ParseQuote([]byte("not a quote"))
	var oe *outcome.Error
	if !errors.As(err, &oe) || oe.Kind != outcome.KindVerification {
		t.Fatalf("error %v is not an outcome verification error", err)
	}
}
