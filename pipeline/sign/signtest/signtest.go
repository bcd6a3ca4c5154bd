// Package signtest is an in-process Sigstore for tests, the CLI tests and the cosign
// interoperability check: a Fulcio that certifies keys for OIDC identities (with GitHub
// Actions claims rendered as Fulcio's certificate extensions and an embedded SCT from a
// test CT log), a Rekor v1 log whose entries are signed with sigstore-go's
// ca.VirtualSigstore log key, an RFC 3161 timestamp authority, and an OIDC issuer that
// mints the tokens. The services listen on 127.0.0.1 and speak the real HTTP APIs, so the
// production code paths (sigstore-go's sign.NewFulcio, sign.NewRekor,
// sign.NewTimestampAuthority) are exercised unchanged.
//
// TrustedRootJSON writes the matching trusted_root.json for sigstore-go and cosign.
package signtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/go-openapi/runtime"
	"github.com/go-openapi/strfmt"
	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	fulciocert "github.com/sigstore/fulcio/pkg/certificate"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/rekor/pkg/types"
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"         // register dsse entries (attestations)
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1" // register hashedrekord entries
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// GitHubIssuer is the OIDC issuer of GitHub Actions tokens, which the test tokens claim.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// EmailIssuer is the issuer claimed by the e-mail identity tokens.
const EmailIssuer = "https://oauth2.sigstore.dev/auth"

// certValidity is how long a Fulcio certificate is valid, as in the real Fulcio.
const certValidity = 10 * time.Minute

// Sigstore is the in-process instance. Create it with New and Close it when done.
type Sigstore struct {
	virtual *ca.VirtualSigstore

	fulcioRoot, fulcioInter *x509.Certificate
	fulcioInterKey          *ecdsa.PrivateKey
	ctKey                   *ecdsa.PrivateKey
	tsaRoot, tsaInter       *x509.Certificate
	tsaLeaf                 *x509.Certificate
	tsaLeafKey              *ecdsa.PrivateKey
	oidcKey                 *ecdsa.PrivateKey
	created                 time.Time

	fulcio, rekor, tsa *httptest.Server

	mu       sync.Mutex
	logIndex int64
	entries  map[string]models.LogEntryAnon
}

// New starts Fulcio, Rekor and the TSA on 127.0.0.1.
func New() (*Sigstore, error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, fmt.Errorf("virtual sigstore: %w", err)
	}
	s := &Sigstore{virtual: vs, created: time.Now(), entries: map[string]models.LogEntryAnon{}}
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		return nil, err
	}
	s.fulcioRoot = rootCert
	if s.fulcioInter, s.fulcioInterKey, err = ca.GenerateFulcioIntermediate(rootCert, rootKey); err != nil {
		return nil, err
	}
	s.tsaRoot = rootCert
	tsaInter, tsaInterKey, err := ca.GenerateTSAIntermediate(rootCert, rootKey)
	if err != nil {
		return nil, err
	}
	s.tsaInter = tsaInter
	if s.tsaLeafKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	// GenerateTSALeafCert makes a certificate valid for 10 minutes from the given time.
	if s.tsaLeaf, err = ca.GenerateTSALeafCert(time.Now().Add(-time.Minute), s.tsaLeafKey, tsaInter, tsaInterKey); err != nil {
		return nil, err
	}
	if s.ctKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if s.oidcKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	s.fulcio = httptest.NewServer(http.HandlerFunc(s.serveFulcio))
	s.rekor = httptest.NewServer(http.HandlerFunc(s.serveRekor))
	s.tsa = httptest.NewServer(http.HandlerFunc(s.serveTSA))
	return s, nil
}

// Close stops the servers.
func (s *Sigstore) Close() {
	s.fulcio.Close()
	s.rekor.Close()
	s.tsa.Close()
}

// FulcioURL is the base URL of the Fulcio service.
func (s *Sigstore) FulcioURL() string { return s.fulcio.URL }

// RekorURL is the base URL of the Rekor service.
func (s *Sigstore) RekorURL() string { return s.rekor.URL }

// TSAURL is the full URL of the timestamp endpoint.
func (s *Sigstore) TSAURL() string { return s.tsa.URL + "/api/v1/timestamp" }

// Entries returns how many entries the Rekor log holds.
func (s *Sigstore) Entries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// GitHubClaims describe a GitHub Actions workflow run, as GitHub puts them in its OIDC token.
type GitHubClaims struct {
	// Repository is OWNER/REPO.
	Repository string
	// Workflow is the workflow file path, e.g. .github/workflows/release-kms-phala.yaml.
	Workflow string
	// Ref is the git ref, e.g. refs/tags/mero-kms-v1.2.0.
	Ref string
	// SHA is the commit (default: 40 zeros).
	SHA string
	// Event is the trigger (default "push").
	Event string
}

// WorkflowIdentity is the certificate SAN Fulcio gives such a run:
// https://github.com/OWNER/REPO/WORKFLOW@REF.
func (c GitHubClaims) WorkflowIdentity() string {
	return "https://github.com/" + c.Repository + "/" + c.Workflow + "@" + c.Ref
}

// GitHubToken mints a GitHub Actions OIDC token (audience "sigstore") for the run.
func (s *Sigstore) GitHubToken(c GitHubClaims) (string, error) {
	if c.SHA == "" {
		c.SHA = strings.Repeat("0", 40)
	}
	if c.Event == "" {
		c.Event = "push"
	}
	owner, _, _ := strings.Cut(c.Repository, "/")
	wf := c.Repository + "/" + c.Workflow + "@" + c.Ref
	return s.Token(map[string]any{
		"iss":                   GitHubIssuer,
		"sub":                   "repo:" + c.Repository + ":ref:" + c.Ref,
		"repository":            c.Repository,
		"repository_id":         "1000",
		"repository_owner":      owner,
		"repository_owner_id":   "2000",
		"repository_visibility": "public",
		"ref":                   c.Ref,
		"sha":                   c.SHA,
		"workflow":              c.Workflow,
		"workflow_ref":          wf,
		"workflow_sha":          c.SHA,
		"job_workflow_ref":      wf,
		"job_workflow_sha":      c.SHA,
		"event_name":            c.Event,
		"run_id":                "42",
		"run_attempt":           "1",
		"runner_environment":    "github-hosted",
	})
}

// EmailToken mints an e-mail identity token (issuer EmailIssuer).
func (s *Sigstore) EmailToken(email string) (string, error) {
	return s.Token(map[string]any{"iss": EmailIssuer, "sub": email, "email": email, "email_verified": true})
}

// Token mints an ES256 JWT with the claims, adding aud "sigstore", iat, nbf and exp unless set.
func (s *Sigstore) Token(claims map[string]any) (string, error) {
	now := time.Now()
	c := map[string]any{"aud": "sigstore", "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": "signtest"})
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, s.oidcKey, digest[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return signing + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// verifyToken checks the token's signature, audience and lifetime and returns its claims.
func (s *Sigstore) verifyToken(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("token is not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, errors.New("token signature is malformed")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(&s.oidcKey.PublicKey, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, errors.New("token signature does not verify")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("token payload is malformed")
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errors.New("token payload is not JSON")
	}
	if claims["aud"] != "sigstore" {
		return nil, errors.New("token audience is not sigstore")
	}
	if exp, _ := claims["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
		return nil, errors.New("token expired")
	}
	return claims, nil
}

func str(claims map[string]any, k string) string {
	v, _ := claims[k].(string)
	return v
}

// fulcioRequest is Fulcio's v2 signingCert request.
type fulcioRequest struct {
	PublicKeyRequest struct {
		PublicKey struct {
			Algorithm string `json:"algorithm"`
			Content   string `json:"content"`
		} `json:"publicKey"`
		ProofOfPossession string `json:"proofOfPossession"`
	} `json:"publicKeyRequest"`
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": fmt.Sprintf(format, args...)})
}

// serveFulcio implements POST /api/v2/signingCert.
func (s *Sigstore) serveFulcio(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/signingCert" {
		httpError(w, http.StatusNotFound, "no such endpoint %s %s", r.Method, r.URL.Path)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		httpError(w, http.StatusUnauthorized, "missing bearer token")
		return
	}
	claims, err := s.verifyToken(tok)
	if err != nil {
		httpError(w, http.StatusUnauthorized, "%v", err)
		return
	}
	var req fulcioRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "request is not JSON: %v", err)
		return
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(req.PublicKeyRequest.PublicKey.Content))
	if err != nil {
		httpError(w, http.StatusBadRequest, "public key: %v", err)
		return
	}
	subject := str(claims, "sub")
	if e := str(claims, "email"); e != "" {
		subject = e
	}
	pop, err := base64.StdEncoding.DecodeString(req.PublicKeyRequest.ProofOfPossession)
	if err != nil {
		httpError(w, http.StatusBadRequest, "proof of possession is not base64")
		return
	}
	ecPub, ok := pub.(*ecdsa.PublicKey)
	digest := sha256.Sum256([]byte(subject))
	if !ok || !ecdsa.VerifyASN1(ecPub, digest[:], pop) {
		httpError(w, http.StatusBadRequest, "proof of possession does not verify")
		return
	}
	chain, err := s.issue(claims, pub)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var pems []string
	for _, c := range chain {
		pems = append(pems, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": pems}}})
}

// issue builds the leaf certificate the way Fulcio does: SAN and extensions from the
// claims, a precertificate logged to the CT log, and the SCT embedded in the final certificate.
func (s *Sigstore) issue(claims map[string]any, pub crypto.PublicKey) ([]*x509.Certificate, error) {
	ext := fulciocert.Extensions{Issuer: str(claims, "iss")}
	tmpl := &x509.Certificate{
		NotBefore:   time.Now(),
		NotAfter:    time.Now().Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	switch {
	case str(claims, "iss") == GitHubIssuer:
		gh := "https://github.com/"
		jwr := str(claims, "job_workflow_ref")
		if jwr == "" {
			return nil, errors.New("github token has no job_workflow_ref")
		}
		u, err := url.Parse(gh + jwr)
		if err != nil {
			return nil, err
		}
		tmpl.URIs = []*url.URL{u}
		repo := str(claims, "repository")
		ext.GithubWorkflowTrigger = str(claims, "event_name")
		ext.GithubWorkflowSHA = str(claims, "sha")
		ext.GithubWorkflowName = str(claims, "workflow")
		ext.GithubWorkflowRepository = repo
		ext.GithubWorkflowRef = str(claims, "ref")
		ext.BuildSignerURI = gh + jwr
		ext.BuildSignerDigest = str(claims, "job_workflow_sha")
		ext.RunnerEnvironment = str(claims, "runner_environment")
		ext.SourceRepositoryURI = gh + repo
		ext.SourceRepositoryDigest = str(claims, "sha")
		ext.SourceRepositoryRef = str(claims, "ref")
		ext.SourceRepositoryIdentifier = str(claims, "repository_id")
		ext.SourceRepositoryOwnerURI = gh + str(claims, "repository_owner")
		ext.SourceRepositoryOwnerIdentifier = str(claims, "repository_owner_id")
		ext.BuildConfigURI = gh + str(claims, "workflow_ref")
		ext.BuildConfigDigest = str(claims, "workflow_sha")
		ext.BuildTrigger = str(claims, "event_name")
		ext.RunInvocationURI = gh + repo + "/actions/runs/" + str(claims, "run_id") + "/attempts/" + str(claims, "run_attempt")
		ext.SourceRepositoryVisibilityAtSigning = str(claims, "repository_visibility")
	case str(claims, "email") != "":
		tmpl.EmailAddresses = []string{str(claims, "email")}
	default:
		return nil, fmt.Errorf("unsupported token issuer %q", str(claims, "iss"))
	}
	exts, err := ext.Render()
	if err != nil {
		return nil, err
	}
	// Precertificate: the same certificate with the critical CT poison extension last.
	poison := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}, Critical: true, Value: asn1.NullBytes}
	tmpl.ExtraExtensions = slices.Concat(exts, []pkix.Extension{poison})
	preDER, err := x509.CreateCertificate(rand.Reader, tmpl, s.fulcioInter, pub, s.fulcioInterKey)
	if err != nil {
		return nil, fmt.Errorf("precertificate: %w", err)
	}
	sctExt, err := s.sctExtension(preDER)
	if err != nil {
		return nil, err
	}
	tmpl.ExtraExtensions = slices.Concat(exts, []pkix.Extension{sctExt})
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.fulcioInter, pub, s.fulcioInterKey)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{leaf, s.fulcioInter, s.fulcioRoot}, nil
}

// sctExtension has the CT log sign the precertificate and returns the SCT-list extension.
func (s *Sigstore) sctExtension(preDER []byte) (pkix.Extension, error) {
	pre, err := ctx509.ParseCertificate(preDER)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("parse precertificate: %w", err)
	}
	issuer, err := ctx509.ParseCertificate(s.fulcioInter.Raw)
	if err != nil {
		return pkix.Extension{}, err
	}
	ts := uint64(time.Now().UnixMilli())
	leaf, err := ct.MerkleTreeLeafFromChain([]*ctx509.Certificate{pre, issuer}, ct.PrecertLogEntryType, ts)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("ct leaf: %w", err)
	}
	keyDER, err := x509.MarshalPKIXPublicKey(s.ctKey.Public())
	if err != nil {
		return pkix.Extension{}, err
	}
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: sha256.Sum256(keyDER)}, Timestamp: ts}
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: *leaf})
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("sct input: %w", err)
	}
	digest := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, s.ctKey, digest[:])
	if err != nil {
		return pkix.Extension{}, err
	}
	sct.Signature = ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sig}
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
	if err != nil {
		return pkix.Extension{}, err
	}
	listBytes, err := cttls.Marshal(*list)
	if err != nil {
		return pkix.Extension{}, err
	}
	value, err := asn1.Marshal(listBytes)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}, Value: value}, nil
}

// serveRekor implements POST /api/v1/log/entries (hashedrekord, dsse) and GET of an entry.
func (s *Sigstore) serveRekor(w http.ResponseWriter, r *http.Request) {
	const prefix = "/api/v1/log/entries"
	switch {
	case r.Method == http.MethodPost && r.URL.Path == prefix:
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, prefix+"/"):
		uuid := strings.TrimPrefix(r.URL.Path, prefix+"/")
		s.mu.Lock()
		e, ok := s.entries[uuid]
		s.mu.Unlock()
		if !ok {
			httpError(w, http.StatusNotFound, "entry %s not found", uuid)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(models.LogEntry{uuid: e})
		return
	default:
		httpError(w, http.StatusNotFound, "no such endpoint %s %s", r.Method, r.URL.Path)
		return
	}
	pe, err := models.UnmarshalProposedEntry(io.LimitReader(r.Body, 1<<20), runtime.JSONConsumer())
	if err != nil {
		httpError(w, http.StatusBadRequest, "proposed entry: %v", err)
		return
	}
	ctx := r.Context()
	// UnmarshalEntry validates the entry: for hashedrekord it verifies the signature over
	// the digest with the entry's key or certificate, as the real Rekor does.
	impl, err := types.UnmarshalEntry(pe)
	if err != nil {
		httpError(w, http.StatusBadRequest, "entry: %v", err)
		return
	}
	body, err := types.CanonicalizeEntry(ctx, impl)
	if err != nil {
		httpError(w, http.StatusBadRequest, "canonicalize: %v", err)
		return
	}
	leafHash := sha256.Sum256(append([]byte{0}, body...))
	uuid := hex.EncodeToString(leafHash[:])
	logID, err := s.virtual.RekorLogID()
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.entries[uuid]; dup {
		w.Header().Set("Location", prefix+"/"+uuid)
		httpError(w, http.StatusConflict, "an equivalent entry already exists in the transparency log")
		return
	}
	integrated := time.Now().Unix()
	index := s.logIndex
	bodyB64 := base64.StdEncoding.EncodeToString(body)
	set, err := s.virtual.RekorSignPayload(tlog.RekorPayload{Body: bodyB64, IntegratedTime: integrated, LogIndex: index, LogID: logID})
	if err != nil {
		httpError(w, http.StatusInternalServerError, "sign entry: %v", err)
		return
	}
	proof, err := s.virtual.GetInclusionProof(body)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "inclusion proof: %v", err)
		return
	}
	entry := models.LogEntryAnon{
		Body:           bodyB64,
		IntegratedTime: &integrated,
		LogID:          &logID,
		LogIndex:       &index,
		Verification:   &models.LogEntryAnonVerification{SignedEntryTimestamp: strfmt.Base64(set), InclusionProof: proof},
	}
	s.entries[uuid] = entry
	s.logIndex++
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", uuid)
	w.Header().Set("Location", prefix+"/"+uuid)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(models.LogEntry{uuid: entry})
}

// serveTSA implements an RFC 3161 timestamp endpoint.
func (s *Sigstore) serveTSA(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		httpError(w, http.StatusMethodNotAllowed, "POST a timestamp query")
		return
	}
	reqBytes, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	req, err := timestamp.ParseRequest(reqBytes)
	if err != nil {
		httpError(w, http.StatusBadRequest, "timestamp query: %v", err)
		return
	}
	tsr := timestamp.Timestamp{
		HashAlgorithm:   req.HashAlgorithm,
		HashedMessage:   req.HashedMessage,
		Time:            time.Now(),
		Nonce:           req.Nonce,
		Policy:          asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2},
		ExtraExtensions: req.Extensions,
	}
	resp, err := tsr.CreateResponseWithOpts(s.tsaLeaf, s.tsaLeafKey, crypto.SHA256)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	_, _ = w.Write(resp)
}

// TrustedRoot returns the trusted material of this instance: the Fulcio CA, the Rekor log,
// the CT log and the TSA.
func (s *Sigstore) TrustedRoot() (*root.TrustedRoot, error) {
	start := s.created.Add(-time.Hour)
	fulcio := &root.FulcioCertificateAuthority{
		Root:                s.fulcioRoot,
		Intermediates:       []*x509.Certificate{s.fulcioInter},
		ValidityPeriodStart: start,
		URI:                 s.FulcioURL(),
	}
	tsa := &root.SigstoreTimestampingAuthority{
		Root:                s.tsaRoot,
		Intermediates:       []*x509.Certificate{s.tsaInter},
		Leaf:                s.tsaLeaf,
		ValidityPeriodStart: start,
		URI:                 s.TSAURL(),
	}
	rekorLogs := map[string]*root.TransparencyLog{}
	for id, l := range s.virtual.RekorLogs() {
		// VirtualSigstore keeps the hex log ID as bytes; the trusted root needs the raw
		// key ID, or a reloaded root finds no log for the entries.
		raw, err := hex.DecodeString(string(l.ID))
		if err != nil {
			return nil, fmt.Errorf("rekor log id: %w", err)
		}
		cp := *l
		cp.ID = raw
		cp.ValidityPeriodStart = start
		cp.ValidityPeriodEnd = time.Time{}
		rekorLogs[id] = &cp
	}
	keyDER, err := x509.MarshalPKIXPublicKey(s.ctKey.Public())
	if err != nil {
		return nil, err
	}
	ctID := sha256.Sum256(keyDER)
	ctLogs := map[string]*root.TransparencyLog{hex.EncodeToString(ctID[:]): {
		BaseURL:             "https://ctfe.localhost/test",
		ID:                  ctID[:],
		ValidityPeriodStart: start,
		HashFunc:            crypto.SHA256,
		PublicKey:           s.ctKey.Public(),
		SignatureHashFunc:   crypto.SHA256,
	}}
	return root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{fulcio}, ctLogs,
		[]root.TimestampingAuthority{tsa}, rekorLogs)
}

// TrustedRootJSON is TrustedRoot as a trusted_root.json document.
func (s *Sigstore) TrustedRootJSON() ([]byte, error) {
	tr, err := s.TrustedRoot()
	if err != nil {
		return nil, err
	}
	return tr.MarshalJSON()
}
