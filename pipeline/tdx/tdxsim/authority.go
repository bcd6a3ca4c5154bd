// Package tdxsim is a TDX simulator, the local backend of the node-image measurement stage:
// it "boots" a node-image description, measures it the way a TD's firmware and boot chain
// extend MRTD and RTMR0–3, and produces real TDX v4 quotes in go-tdx-guest's byte layout,
// signed through a complete simulated attestation chain (root CA → PCK platform CA → PCK
// certificate with Intel's SGX extensions → QE report → attestation key → quote signature).
//
// The quotes verify with tdx.VerifyQuote (go-tdx-guest's verifier) when the Authority's root is
// the trusted root, and with nothing else: the root is a local test CA, never Intel's.
package tdxsim

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	encasn1 "encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// DefaultSeed is the seed of the local simulator authority used by the CLI and the local
// pipeline, so that its root certificate is the same on every run and machine.
const DefaultSeed = "mero-release local TDX simulator"

// The subject common names go-tdx-guest's verifier requires of a PCK chain. The organisation
// of every simulator certificate says it is not Intel's.
const (
	rootCN         = "Intel SGX Root CA"
	platformCAName = "Intel SGX PCK Platform CA"
	pckCN          = "Intel SGX PCK Certificate"
	// Organization is the subject organisation of every simulator certificate.
	Organization = "mero-release TDX simulator (NOT Intel; local testing only)"
)

// The quoting enclave's product id (TD_QE), carried in the QE report.
const qeProdID = 2

// Platform is the platform identity an Authority certifies: what Intel's collateral (TCB info,
// QE identity) is matched against. The default is a simulated Sapphire Rapids platform; a test
// can describe the platform of a recorded Intel collateral instead, so that real TCB info
// evaluates simulator quotes.
type Platform struct {
	// FMSPC is the platform's family-model-stepping-platform-custom-SKU, in the PCK certificate.
	FMSPC [6]byte
	// CPUSVN holds the 16 SGX TCB component SVNs, in the PCK certificate and the QE report.
	CPUSVN [16]byte
	// PCESVN is the provisioning certification enclave's SVN, in the PCK certificate.
	PCESVN int
	// QEMRSigner and QESVN are the quoting enclave's signer and SVN, in the QE report.
	QEMRSigner [32]byte
	QESVN      int
	// TEETCBSVN is the TDX module's TEE TCB SVN the VMs' quotes carry (NewBody's by default).
	TEETCBSVN [16]byte
}

// DefaultPlatform is the simulated platform of NewAuthority.
func DefaultPlatform() Platform {
	p := Platform{
		FMSPC:  [6]byte{0x00, 0x80, 0x6f, 0x05, 0x00, 0x00}, // a Sapphire Rapids FMSPC
		CPUSVN: [16]byte{3, 3, 2, 2, 4, 1, 0, 3},
		PCESVN: 11,
		QESVN:  4,
	}
	p.TEETCBSVN = NewBody(tdx.Measurements{}, [64]byte{}).TEETCBSVN
	copy(p.QEMRSigner[:], derive([]byte("mero-release tdxsim"), "qe-mrsigner", 32))
	return p
}

// Authority is a simulated Intel attestation infrastructure for one platform: a root CA, a
// PCK platform CA, a PCK certificate, a quoting enclave report signed by the PCK key, and the
// attestation key that signs quotes. Everything is derived from the seed, so two Authorities
// with the same seed produce identical certificates and identical quotes. It is safe for
// concurrent use.
type Authority struct {
	root, platformCA, pck *x509.Certificate
	rootPEM               []byte
	chainPEM              []byte
	attestationKey        *ecdsa.PrivateKey
	attestationKeyRaw     []byte
	qeCertData            *pb.QEReportCertificationData
	qeID                  [16]byte
	platform              Platform
}

// NewAuthority derives an Authority of DefaultPlatform from seed (which must not be empty).
func NewAuthority(seed []byte) (*Authority, error) {
	return NewPlatformAuthority(seed, DefaultPlatform())
}

// NewPlatformAuthority derives an Authority from seed that certifies platform p.
func NewPlatformAuthority(seed []byte, p Platform) (*Authority, error) {
	if p.PCESVN < 0 || p.PCESVN > 0xffff || p.QESVN < 0 || p.QESVN > 0xffff {
		return nil, fmt.Errorf("tdxsim: platform PCESVN %d and QE SVN %d must be 16-bit", p.PCESVN, p.QESVN)
	}
	if len(seed) == 0 {
		return nil, errors.New("tdxsim: empty authority seed")
	}
	rootKey, err := deriveKey(seed, "root-ca")
	if err != nil {
		return nil, err
	}
	caKey, err := deriveKey(seed, "pck-platform-ca")
	if err != nil {
		return nil, err
	}
	pckKey, err := deriveKey(seed, "pck")
	if err != nil {
		return nil, err
	}
	ak, err := deriveKey(seed, "attestation-key")
	if err != nil {
		return nil, err
	}
	a := &Authority{attestationKey: ak, platform: p}
	copy(a.qeID[:], derive(seed, "qe-id", 16))

	notBefore := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
	rootTmpl := &x509.Certificate{
		SerialNumber:          serial(seed, "root-ca"),
		Subject:               name(rootCN),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if a.root, err = createCert(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey); err != nil {
		return nil, fmt.Errorf("tdxsim: root certificate: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(seed, "pck-platform-ca"),
		Subject:               name(platformCAName),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if a.platformCA, err = createCert(caTmpl, a.root, &caKey.PublicKey, rootKey); err != nil {
		return nil, fmt.Errorf("tdxsim: PCK platform CA certificate: %w", err)
	}
	sgxExt, err := sgxExtension(derive(seed, "ppid", 16), p)
	if err != nil {
		return nil, fmt.Errorf("tdxsim: SGX extension: %w", err)
	}
	pckPub, err := pckKey.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("tdxsim: PCK key: %w", err)
	}
	skid := sha256.Sum256(pckPub)
	pckTmpl := &x509.Certificate{
		SerialNumber:          serial(seed, "pck"),
		Subject:               name(pckCN),
		NotBefore:             notBefore,
		NotAfter:              time.Date(2039, 12, 31, 23, 59, 59, 0, time.UTC),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		SubjectKeyId:          skid[:20],
		CRLDistributionPoints: []string{"https://tdxsim.invalid/sgx/certification/v4/pckcrl?ca=platform&encoding=der"},
		ExtraExtensions:       []pkix.Extension{{Id: pcs.OidSgxExtension, Value: sgxExt}},
	}
	if a.pck, err = createCert(pckTmpl, a.platformCA, &pckKey.PublicKey, caKey); err != nil {
		return nil, fmt.Errorf("tdxsim: PCK certificate: %w", err)
	}
	a.rootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.root.Raw})
	var chain bytes.Buffer
	for _, c := range []*x509.Certificate{a.pck, a.platformCA, a.root} {
		chain.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	chain.WriteByte(0) // real quotes end the chain with a NUL byte
	a.chainPEM = chain.Bytes()

	a.attestationKeyRaw = make([]byte, 0, tdx.AttestationKeySize)
	pub, err := ak.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, fmt.Errorf("tdxsim: attestation key: %w", err)
	}
	a.attestationKeyRaw = append(a.attestationKeyRaw, pub[1:]...)
	if a.qeCertData, err = a.qeReportCertificationData(seed, pckKey); err != nil {
		return nil, err
	}
	return a, nil
}

// qeReportCertificationData builds the QE report (whose report data binds the attestation key
// and the QE auth data), signs it with the PCK key, and attaches the PCK chain.
func (a *Authority) qeReportCertificationData(seed []byte, pckKey *ecdsa.PrivateKey) (*pb.QEReportCertificationData, error) {
	authData := make([]byte, 32)
	for i := range authData {
		authData[i] = byte(i)
	}
	binding := sha256.Sum256(append(append([]byte(nil), a.attestationKeyRaw...), authData...))
	reportData := make([]byte, abi.ReportDataSize)
	copy(reportData, binding[:])
	attributes := make([]byte, 16)
	attributes[0] = 0x11 // INIT | MODE64BIT
	report := &pb.EnclaveReport{
		CpuSvn:     append([]byte(nil), a.platform.CPUSVN[:]...),
		MiscSelect: 0,
		Reserved1:  make([]byte, 28),
		Attributes: attributes,
		MrEnclave:  derive(seed, "qe-mrenclave", 32),
		Reserved2:  make([]byte, 32),
		MrSigner:   append([]byte(nil), a.platform.QEMRSigner[:]...),
		Reserved3:  make([]byte, 96),
		IsvProdId:  qeProdID,
		IsvSvn:     uint32(a.platform.QESVN),
		Reserved4:  make([]byte, 60),
		ReportData: reportData,
	}
	raw, err := abi.EnclaveReportToAbiBytes(report)
	if err != nil {
		return nil, fmt.Errorf("tdxsim: QE report: %w", err)
	}
	sig, err := signRaw(pckKey, raw)
	if err != nil {
		return nil, fmt.Errorf("tdxsim: sign QE report: %w", err)
	}
	return &pb.QEReportCertificationData{
		QeReport:          report,
		QeReportSignature: sig,
		QeAuthData:        &pb.QeAuthData{ParsedDataSize: uint32(len(authData)), Data: authData},
		PckCertificateChainData: &pb.PCKCertificateChainData{
			CertificateDataType: tdx.CertificationDataPCKChain,
			Size:                uint32(len(a.chainPEM)),
			PckCertChain:        a.chainPEM,
		},
	}, nil
}

// RootPEM returns the authority's root certificate in PEM form: the --trusted-root of its quotes.
func (a *Authority) RootPEM() []byte { return append([]byte(nil), a.rootPEM...) }

// RootPool returns a pool holding only the authority's root certificate.
func (a *Authority) RootPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(a.root)
	return pool
}

// Root returns the authority's root certificate.
func (a *Authority) Root() *x509.Certificate { return a.root }

// PCKCertificate returns the PCK leaf certificate embedded in every quote.
func (a *Authority) PCKCertificate() *x509.Certificate { return a.pck }

// Body is the TD report a quote carries: every field of the TDX v4 quote body.
type Body struct {
	TEETCBSVN      [16]byte
	MRSeam         [tdx.RegisterSize]byte
	MRSignerSeam   [tdx.RegisterSize]byte
	SeamAttributes [8]byte
	TDAttributes   [8]byte
	XFAM           [8]byte
	Measurements   tdx.Measurements
	MRConfigID     [tdx.RegisterSize]byte
	MROwner        [tdx.RegisterSize]byte
	MROwnerConfig  [tdx.RegisterSize]byte
	ReportData     [64]byte
}

// NewBody returns a TD report with the simulated platform's TDX module values (TEE TCB SVN,
// MRSEAM), the TD attributes and XFAM of a GCE Confidential VM (SEPT_VE_DISABLE, no debug),
// and the given measurements and report data.
func NewBody(m tdx.Measurements, reportData [64]byte) Body {
	b := Body{Measurements: m, ReportData: reportData}
	copy(b.TEETCBSVN[:], []byte{3, 1, 2})
	b.MRSeam = sha512.Sum384([]byte("mero-release tdxsim: simulated TDX module"))
	b.TDAttributes = [8]byte{0, 0, 0, 0x10} // SEPT_VE_DISABLE (bit 28)
	b.XFAM = [8]byte{0xe7, 0x00, 0x06}
	return b
}

// SignQuote returns a TDX v4 quote of body, signed by the attestation key, carrying the QE
// report certification data and PCK chain: the bytes a real TD's quote generation returns.
func (a *Authority) SignQuote(body Body) ([]byte, error) {
	rtmrs := make([][]byte, tdx.NumRTMRs)
	for i := range rtmrs {
		rtmrs[i] = append([]byte(nil), body.Measurements.RTMR[i][:]...)
	}
	userData := make([]byte, 20)
	copy(userData, a.qeID[:])
	q := &pb.QuoteV4{
		Header: &pb.Header{
			Version:            tdx.QuoteVersion,
			AttestationKeyType: tdx.AttestationKeyTypeECDSAP256,
			TeeType:            tdx.TEETypeTDX,
			PceSvn:             binary.LittleEndian.AppendUint16(nil, uint16(a.platform.PCESVN)),
			QeSvn:              binary.LittleEndian.AppendUint16(nil, uint16(a.platform.QESVN)),
			QeVendorId:         []byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}, // Intel's QE vendor ID
			UserData:           userData,
		},
		TdQuoteBody: &pb.TDQuoteBody{
			TeeTcbSvn:      body.TEETCBSVN[:],
			MrSeam:         body.MRSeam[:],
			MrSignerSeam:   body.MRSignerSeam[:],
			SeamAttributes: body.SeamAttributes[:],
			TdAttributes:   body.TDAttributes[:],
			Xfam:           body.XFAM[:],
			MrTd:           body.Measurements.MRTD[:],
			MrConfigId:     body.MRConfigID[:],
			MrOwner:        body.MROwner[:],
			MrOwnerConfig:  body.MROwnerConfig[:],
			Rtmrs:          rtmrs,
			ReportData:     body.ReportData[:],
		},
	}
	header, err := abi.HeaderToAbiBytes(q.Header)
	if err != nil {
		return nil, fmt.Errorf("tdxsim: quote header: %w", err)
	}
	tdBody, err := abi.TdQuoteBodyToAbiBytes(q.TdQuoteBody)
	if err != nil {
		return nil, fmt.Errorf("tdxsim: quote body: %w", err)
	}
	sig, err := signRaw(a.attestationKey, append(header, tdBody...))
	if err != nil {
		return nil, fmt.Errorf("tdxsim: sign quote: %w", err)
	}
	qe := a.qeCertData
	qeSize := tdx.QEReportSize + tdx.SignatureSize + 2 + len(qe.QeAuthData.Data) + 6 + len(qe.PckCertificateChainData.PckCertChain)
	q.SignedData = &pb.Ecdsa256BitQuoteV4AuthData{
		Signature:           sig,
		EcdsaAttestationKey: a.attestationKeyRaw,
		CertificationData: &pb.CertificationData{
			CertificateDataType:       tdx.CertificationDataQEReport,
			Size:                      uint32(qeSize),
			QeReportCertificationData: qe,
		},
	}
	q.SignedDataSize = uint32(tdx.SignatureSize + tdx.AttestationKeySize + 6 + qeSize)
	raw, err := abi.QuoteToAbiBytes(q)
	if err != nil {
		return nil, fmt.Errorf("tdxsim: encode quote: %w", err)
	}
	return raw, nil
}

// signRaw signs SHA-256(msg) with key deterministically (RFC 6979) and returns r ‖ s, 32 bytes
// each, as TDX quotes carry ECDSA signatures.
func signRaw(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	der, err := key.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	var r, s big.Int
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) {
		return nil, errors.New("malformed ECDSA signature")
	}
	out := make([]byte, tdx.SignatureSize)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

// deterministicSigner signs with RFC 6979 nonces whatever random source x509 passes, so that
// certificates derived from a seed are byte-identical across runs.
type deterministicSigner struct{ key *ecdsa.PrivateKey }

// Public returns the public key.
func (d deterministicSigner) Public() crypto.PublicKey { return &d.key.PublicKey }

// Sign signs digest with an RFC 6979 nonce, ignoring the random source.
func (d deterministicSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return d.key.Sign(nil, digest, opts)
}

func createCert(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, error) {
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
	der, err := x509.CreateCertificate(nil, tmpl, parent, pub, deterministicSigner{signer})
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func name(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{Organization}, Country: []string{"ZZ"}}
}

// derive returns the first n (at most 32) bytes of HMAC-SHA256(seed, label).
func derive(seed []byte, label string, n int) []byte {
	mac := hmac.New(sha256.New, seed)
	mac.Write([]byte("mero-release tdxsim v1: " + label))
	return mac.Sum(nil)[:n]
}

// serial is a positive certificate serial number derived from the seed.
func serial(seed []byte, label string) *big.Int {
	b := derive(seed, "serial "+label, 16)
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}

// deriveKey derives a P-256 private key from the seed: the first HKDF output that is a valid
// scalar.
func deriveKey(seed []byte, label string) (*ecdsa.PrivateKey, error) {
	for i := range 100 {
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), derive(seed, fmt.Sprintf("key %s %d", label, i), 32))
		if err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("tdxsim: no valid %s key derived", label)
}

// sgxExtension encodes the SGX extension (OID 1.2.840.113741.1.13.1) of a PCK certificate:
// PPID, TCB (16 SGX TCB components, PCESVN, CPUSVN), PCE-ID, FMSPC and SGX type, as Intel's
// PCK certificate profile lays them out and go-tdx-guest's pcs package reads them.
func sgxExtension(ppid []byte, p Platform) ([]byte, error) {
	oid := func(parts ...int) encasn1.ObjectIdentifier {
		return append(encasn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}, parts...)
	}
	cpuSVN, fmspc := p.CPUSVN, p.FMSPC[:]
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(pcs.OidPPID)
			b.AddASN1OctetString(ppid)
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(pcs.OidTCB)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for i := range 16 {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oid(2, i+1))
						b.AddASN1Int64(int64(cpuSVN[i]))
					})
				}
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(pcs.OidPCESvn)
					b.AddASN1Int64(int64(p.PCESVN))
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(pcs.OidCPUSvn)
					b.AddASN1OctetString(cpuSVN[:])
				})
			})
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(pcs.OidPCEID)
			b.AddASN1OctetString([]byte{0, 0})
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(pcs.OidFMSPC)
			b.AddASN1OctetString(fmspc)
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid(5)) // SGX type
			b.AddASN1Enum(1)                  // Scalable
		})
	})
	return b.Bytes()
}
