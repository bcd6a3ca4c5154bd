package tdx

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Byte layout of a TDX v4 quote (Intel TDX DCAP Quote Generation Library, "Quote Format"),
// the layout go-tdx-guest's abi package reads and writes.
const (
	// QuoteVersion is the only supported quote format version.
	QuoteVersion = 4
	// TEETypeTDX is the TEE type of a TDX quote.
	TEETypeTDX = 0x81
	// AttestationKeyTypeECDSAP256 is the attestation key type of a TDX quote (ECDSA-256 with P-256).
	AttestationKeyTypeECDSAP256 = 2
	// CertificationDataQEReport is the certification data type that carries a QE report.
	CertificationDataQEReport = 6
	// CertificationDataPCKChain is the certification data type of a PEM PCK certificate chain.
	CertificationDataPCKChain = 5

	// HeaderSize is the size of the quote header.
	HeaderSize = 0x30
	// BodySize is the size of the TD quote body (the TD report fields).
	BodySize = 0x248
	// SignedRegionSize is the size of header and body, the bytes the attestation key signs.
	SignedRegionSize = HeaderSize + BodySize
	// QEReportSize is the size of the QE (SGX enclave) report.
	QEReportSize = 0x180
	// SignatureSize is the size of a raw ECDSA P-256 signature (r ‖ s).
	SignatureSize = 0x40
	// AttestationKeySize is the size of a raw P-256 public key (X ‖ Y).
	AttestationKeySize = 0x40

	// Offsets inside the body (relative to HeaderSize).
	offTEETCBSVN      = 0x00
	offMRSeam         = 0x10
	offMRSignerSeam   = 0x40
	offSeamAttributes = 0x70
	offTDAttributes   = 0x78
	offXFAM           = 0x80
	offMRTD           = 0x88
	offMRConfigID     = 0xB8
	offMROwner        = 0xE8
	offMROwnerConfig  = 0x118
	offRTMR0          = 0x148
	offReportData     = 0x208

	offSignedDataSize = SignedRegionSize
	offSignedData     = SignedRegionSize + 4
)

// Quote is a parsed TDX v4 quote: the header and TD report fields, in their raw byte form.
// The fields are copies: Verify, Raw, SHA256 and Proto always use the bytes that were parsed,
// whatever is later written to the fields.
type Quote struct {
	// Header.
	Version            uint16
	AttestationKeyType uint16
	TEEType            uint32
	QESVN              uint16
	PCESVN             uint16
	QEVendorID         [16]byte
	UserData           [20]byte

	// TD report (quote body).
	TEETCBSVN      [16]byte
	MRSeam         [RegisterSize]byte
	MRSignerSeam   [RegisterSize]byte
	SeamAttributes [8]byte
	TDAttributes   [8]byte
	XFAM           [8]byte
	MRTD           [RegisterSize]byte
	MRConfigID     [RegisterSize]byte
	MROwner        [RegisterSize]byte
	MROwnerConfig  [RegisterSize]byte
	RTMRs          [NumRTMRs][RegisterSize]byte
	ReportData     [64]byte

	// PCKCertChain is the PEM PCK certificate chain carried in the quote (leaf, intermediate, root).
	PCKCertChain []byte

	raw   []byte
	proto *pb.QuoteV4
}

// ParseQuote parses a TDX v4 quote. Malformed input is a verification error (exit 10) whose
// message names the field and offset at fault; it never panics. ParseQuote checks the
// structure only: VerifyQuote (or Quote.Verify) checks the signatures.
func ParseQuote(raw []byte) (*Quote, error) {
	if err := checkLayout(raw); err != nil {
		return nil, outcome.VerificationErrorf("parse TDX quote: %v", err)
	}
	p, err := quoteToProto(raw)
	if err != nil {
		return nil, outcome.VerificationErrorf("parse TDX quote: %v", err)
	}
	q := &Quote{raw: append([]byte(nil), raw...), proto: p}
	h := raw[:HeaderSize]
	q.Version = binary.LittleEndian.Uint16(h[0:2])
	q.AttestationKeyType = binary.LittleEndian.Uint16(h[2:4])
	q.TEEType = binary.LittleEndian.Uint32(h[4:8])
	q.PCESVN = binary.LittleEndian.Uint16(h[8:10])
	q.QESVN = binary.LittleEndian.Uint16(h[10:12])
	copy(q.QEVendorID[:], h[12:28])
	copy(q.UserData[:], h[28:48])

	b := raw[HeaderSize:SignedRegionSize]
	copy(q.TEETCBSVN[:], b[offTEETCBSVN:])
	copy(q.MRSeam[:], b[offMRSeam:])
	copy(q.MRSignerSeam[:], b[offMRSignerSeam:])
	copy(q.SeamAttributes[:], b[offSeamAttributes:])
	copy(q.TDAttributes[:], b[offTDAttributes:])
	copy(q.XFAM[:], b[offXFAM:])
	copy(q.MRTD[:], b[offMRTD:])
	copy(q.MRConfigID[:], b[offMRConfigID:])
	copy(q.MROwner[:], b[offMROwner:])
	copy(q.MROwnerConfig[:], b[offMROwnerConfig:])
	for i := range q.RTMRs {
		copy(q.RTMRs[i][:], b[offRTMR0+i*RegisterSize:])
	}
	copy(q.ReportData[:], b[offReportData:])
	q.PCKCertChain = append([]byte(nil), p.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain()...)
	return q, nil
}

// quoteToProto runs go-tdx-guest's parser; checkLayout has already bounded every length it
// reads, and a panic is still turned into an error rather than crashing the caller.
func quoteToProto(raw []byte) (p *pb.QuoteV4, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("malformed quote: %v", r)
		}
	}()
	v, err := abi.QuoteToProto(raw)
	if err != nil {
		return nil, err
	}
	q, ok := v.(*pb.QuoteV4)
	if !ok {
		return nil, fmt.Errorf("unsupported quote type %T", v)
	}
	return q, nil
}

// checkLayout walks the variable-length parts of a v4 quote and checks every length field
// against the bytes present, naming the field at fault.
func checkLayout(raw []byte) error {
	if len(raw) < abi.QuoteMinSize {
		return fmt.Errorf("quote is %d bytes, a TDX v4 quote has at least %d", len(raw), abi.QuoteMinSize)
	}
	if v := binary.LittleEndian.Uint16(raw[0:2]); v != QuoteVersion {
		return fmt.Errorf("header.version (offset 0x0) is %d, only version %d is supported", v, QuoteVersion)
	}
	if k := binary.LittleEndian.Uint16(raw[2:4]); k != AttestationKeyTypeECDSAP256 {
		return fmt.Errorf("header.attestation_key_type (offset 0x2) is %d, want %d (ECDSA P-256)", k, AttestationKeyTypeECDSAP256)
	}
	if t := binary.LittleEndian.Uint32(raw[4:8]); t != TEETypeTDX {
		return fmt.Errorf("header.tee_type (offset 0x4) is 0x%x, want 0x%x (TDX)", t, TEETypeTDX)
	}
	size := uint64(binary.LittleEndian.Uint32(raw[offSignedDataSize:]))
	avail := uint64(len(raw) - offSignedData)
	if size > avail {
		return fmt.Errorf("signed_data_size (offset 0x%x) is %d, only %d bytes follow", offSignedDataSize, size, avail)
	}
	sd := raw[offSignedData : offSignedData+int(size)]
	const certHeader = 2 + 4
	if len(sd) < SignatureSize+AttestationKeySize+certHeader {
		return fmt.Errorf("signed data is %d bytes, want at least %d (signature, attestation key, certification data header)", len(sd), SignatureSize+AttestationKeySize+certHeader)
	}
	cd := sd[SignatureSize+AttestationKeySize:]
	if t := binary.LittleEndian.Uint16(cd[0:2]); t != CertificationDataQEReport {
		return fmt.Errorf("certification_data.type is %d, want %d (QE report certification data)", t, CertificationDataQEReport)
	}
	if s := uint64(binary.LittleEndian.Uint32(cd[2:6])); s != uint64(len(cd)-certHeader) {
		return fmt.Errorf("certification_data.size is %d, the signed data leaves %d bytes for it", s, len(cd)-certHeader)
	}
	qe := cd[certHeader:]
	const authHeader = 2
	if len(qe) < QEReportSize+SignatureSize+authHeader {
		return fmt.Errorf("QE report certification data is %d bytes, want at least %d (QE report, its signature, auth data size)", len(qe), QEReportSize+SignatureSize+authHeader)
	}
	auth := qe[QEReportSize+SignatureSize:]
	authSize := int(binary.LittleEndian.Uint16(auth[0:2]))
	if authHeader+authSize+certHeader > len(auth) {
		return fmt.Errorf("qe_auth_data.size is %d, only %d bytes follow for it and the PCK chain header", authSize, len(auth)-authHeader)
	}
	chain := auth[authHeader+authSize:]
	if t := binary.LittleEndian.Uint16(chain[0:2]); t != CertificationDataPCKChain {
		return fmt.Errorf("pck_cert_chain.type is %d, want %d (PEM PCK certificate chain)", t, CertificationDataPCKChain)
	}
	if s := uint64(binary.LittleEndian.Uint32(chain[2:6])); s != uint64(len(chain)-certHeader) {
		return fmt.Errorf("pck_cert_chain.size is %d, the certification data leaves %d bytes for it", s, len(chain)-certHeader)
	}
	return nil
}

// Raw returns a copy of the quote bytes.
func (q *Quote) Raw() []byte { return append([]byte(nil), q.raw...) }

// Proto returns go-tdx-guest's representation of the quote, for its validate and verify
// packages. Callers must not modify it.
func (q *Quote) Proto() *pb.QuoteV4 { return q.proto }

// SHA256 returns the SHA-256 of the quote bytes as lower-case hex (measure.Record.QuoteSHA256).
func (q *Quote) SHA256() string {
	sum := sha256.Sum256(q.raw)
	return hex.EncodeToString(sum[:])
}

// Measurements returns the quote's MRTD and RTMR0–3.
func (q *Quote) Measurements() Measurements { return Measurements{MRTD: q.MRTD, RTMR: q.RTMRs} }

// Debug reports whether the TD runs in debug mode (TD_ATTRIBUTES bit 0, TUD.DEBUG): a debug TD's
// memory and registers are visible to the host, so its measurements prove nothing.
func (q *Quote) Debug() bool { return q.TDAttributes[0]&1 != 0 }

// Summary is the human- and machine-readable view of a quote: every register and identity
// field as lower-case hex.
type Summary struct {
	Version            int    `json:"version"`
	TEEType            string `json:"tee_type"`
	AttestationKeyType int    `json:"attestation_key_type"`
	QESVN              int    `json:"qe_svn"`
	PCESVN             int    `json:"pce_svn"`
	QEVendorID         string `json:"qe_vendor_id"`
	TEETCBSVN          string `json:"tee_tcb_svn"`
	MRSeam             string `json:"mr_seam"`
	MRSignerSeam       string `json:"mr_signer_seam"`
	SeamAttributes     string `json:"seam_attributes"`
	TDAttributes       string `json:"td_attributes"`
	Debug              bool   `json:"debug"`
	XFAM               string `json:"xfam"`
	MRConfigID         string `json:"mr_config_id"`
	MROwner            string `json:"mr_owner"`
	MROwnerConfig      string `json:"mr_owner_config"`
	HexMeasurements
	ReportData  string `json:"report_data"`
	QuoteSHA256 string `json:"quote_sha256"`
	Size        int    `json:"size"`
}

// Summary returns the quote's fields as hex.
func (q *Quote) Summary() Summary {
	h := hex.EncodeToString
	tee := fmt.Sprintf("0x%x", q.TEEType)
	if q.TEEType == TEETypeTDX {
		tee = "tdx"
	}
	return Summary{
		Version:            int(q.Version),
		TEEType:            tee,
		AttestationKeyType: int(q.AttestationKeyType),
		QESVN:              int(q.QESVN),
		PCESVN:             int(q.PCESVN),
		QEVendorID:         h(q.QEVendorID[:]),
		TEETCBSVN:          h(q.TEETCBSVN[:]),
		MRSeam:             h(q.MRSeam[:]),
		MRSignerSeam:       h(q.MRSignerSeam[:]),
		SeamAttributes:     h(q.SeamAttributes[:]),
		TDAttributes:       h(q.TDAttributes[:]),
		Debug:              q.Debug(),
		XFAM:               h(q.XFAM[:]),
		MRConfigID:         h(q.MRConfigID[:]),
		MROwner:            h(q.MROwner[:]),
		MROwnerConfig:      h(q.MROwnerConfig[:]),
		HexMeasurements:    q.Measurements().Hex(),
		ReportData:         h(q.ReportData[:]),
		QuoteSHA256:        q.SHA256(),
		Size:               len(q.raw),
	}
}
