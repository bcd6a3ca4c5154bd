package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// The environment variables of the sample KMS (SPEC §8; examples/kms/README.md).
const (
	EnvVersion        = policy.EnvKMSVersion
	EnvProfile        = policy.EnvKMSProfile
	EnvPolicyURL      = policy.EnvPolicyURL
	EnvPolicySHA256   = policy.EnvPolicySHA256
	EnvListen         = "MERO_KMS_LISTEN"
	EnvRootSecretFile = "MERO_KMS_ROOT_SECRET_FILE"
	EnvQuoteSource    = "MERO_KMS_QUOTE_SOURCE"
	EnvTrustedRoot    = "MERO_KMS_TRUSTED_ROOT"
	EnvComposeHash    = "MERO_KMS_COMPOSE_HASH"
	// EnvCollateralDir names a local Intel PCS collateral directory (tdx.CollateralDir) node
	// quotes' TCB status is evaluated from; unset, Intel-rooted quotes are evaluated with
	// collateral fetched from Intel PCS, simulator quotes with SimulatorTCBInfo.
	EnvCollateralDir = "MERO_KMS_COLLATERAL_DIR"
	// EnvDstackEndpoint is the dstack guest agent (a unix socket path or http:// URL) of the
	// dstack quote source; unset, the sockets of dstack.GuestSockets are tried in order.
	EnvDstackEndpoint = "MERO_KMS_DSTACK_ENDPOINT"
	EnvChallengeTTL   = "MERO_KMS_CHALLENGE_TTL"
	EnvMaxChallenges  = "MERO_KMS_MAX_CHALLENGES"
	// EnvMaxChallengesPerPeer and EnvMaxChallengesPerSource bound one peerId's and one source
	// address's outstanding challenges.
	EnvMaxChallengesPerPeer   = "MERO_KMS_MAX_CHALLENGES_PER_PEER"
	EnvMaxChallengesPerSource = "MERO_KMS_MAX_CHALLENGES_PER_SOURCE"
	DefaultListen             = "127.0.0.1:8080"
	DefaultChallengeTTL       = 60 * time.Second
	// DefaultMaxChallenges is the default cap on outstanding challenges (≈ 200 bytes each).
	DefaultMaxChallenges = 4096
	// DefaultMaxChallengesPerPeer is the default share of one peerId: a node needs one
	// challenge per key request, a few when it retries.
	DefaultMaxChallengesPerPeer = 16
	// DefaultMaxChallengesPerSource is the default share of one source address (many peers
	// behind one gateway or NAT).
	DefaultMaxChallengesPerSource = 256
	// DevRootSecret seeds the key derivation when no root secret file is configured: keys are
	// then predictable by anyone who reads this source, which is fine for local runs only.
	DevRootSecret = "mero-kms development root secret: NOT FOR PRODUCTION"
	// QuoteSourceSimulator and QuoteSourceConfigFS are the values of MERO_KMS_QUOTE_SOURCE.
	QuoteSourceSimulator = "simulator"
	QuoteSourceConfigFS  = "configfs"
	// QuoteSourceDstack takes quotes from the dstack guest agent of a Phala/dstack CVM.
	QuoteSourceDstack = "dstack"
)

// maxPolicyBytes bounds a fetched policy.
const maxPolicyBytes = 1 << 20

// Config is the sample KMS's configuration, from the environment or flags.
type Config struct {
	// Version must equal the policy's kms_version.
	Version string
	// Profile must equal the policy's profile.
	Profile string
	// PolicyURL is http://, https:// or file:// (a plain path is taken as a file).
	PolicyURL string
	// PolicySHA256 optionally pins the SHA-256 (hex) of the policy bytes.
	PolicySHA256 string
	// Listen is host:port; default DefaultListen.
	Listen string
	// RootSecretFile holds the key-derivation root secret (at least 32 bytes); empty means
	// DevRootSecret with a warning.
	RootSecretFile string
	// QuoteSource is QuoteSourceSimulator (default) or QuoteSourceConfigFS.
	QuoteSource string
	// TrustedRoot is a PEM file of the roots node quotes must chain to; empty means the TDX
	// simulator's root with the simulator quote source and Intel's SGX root otherwise.
	TrustedRoot string
	// ComposeHash is the hex SHA-256 of the app-compose the simulated dstack VM extends into
	// RTMR3; empty means the hash of the embedded docker-compose.yaml (see kms.ComposeHash).
	ComposeHash string
	// CollateralDir is EnvCollateralDir.
	CollateralDir string
	// DstackEndpoint is EnvDstackEndpoint.
	DstackEndpoint string
	// ChallengeTTL and MaxChallenges tune the challenge store (defaults DefaultChallengeTTL,
	// DefaultMaxChallenges).
	ChallengeTTL  time.Duration
	MaxChallenges int
	// MaxChallengesPerPeer and MaxChallengesPerSource bound one peerId's and one source
	// address's share (defaults DefaultMaxChallengesPerPeer, DefaultMaxChallengesPerSource).
	MaxChallengesPerPeer   int
	MaxChallengesPerSource int
}

// ConfigFromEnv reads the MERO_KMS_* variables. Malformed durations and numbers are usage
// errors naming the variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Version:        getenv(EnvVersion),
		Profile:        getenv(EnvProfile),
		PolicyURL:      getenv(EnvPolicyURL),
		PolicySHA256:   getenv(EnvPolicySHA256),
		Listen:         getenv(EnvListen),
		RootSecretFile: getenv(EnvRootSecretFile),
		QuoteSource:    getenv(EnvQuoteSource),
		TrustedRoot:    getenv(EnvTrustedRoot),
		ComposeHash:    getenv(EnvComposeHash),
		CollateralDir:  getenv(EnvCollateralDir),
		DstackEndpoint: getenv(EnvDstackEndpoint),
	}
	if v := getenv(EnvChallengeTTL); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, outcome.UsageErrorf("%s: %v", EnvChallengeTTL, err)
		}
		c.ChallengeTTL = d
	}
	for _, v := range []struct {
		name string
		dst  *int
	}{{EnvMaxChallenges, &c.MaxChallenges}, {EnvMaxChallengesPerPeer, &c.MaxChallengesPerPeer}, {EnvMaxChallengesPerSource, &c.MaxChallengesPerSource}} {
		s := getenv(v.name)
		if s == "" {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s {
			return c, outcome.UsageErrorf("%s: %q is not an integer", v.name, s)
		}
		*v.dst = n
	}
	return c, nil
}

// withDefaults fills the defaults and checks the shape of every field.
func (c Config) withDefaults() (Config, error) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.QuoteSource == "" {
		c.QuoteSource = QuoteSourceSimulator
	}
	if c.ChallengeTTL == 0 {
		c.ChallengeTTL = DefaultChallengeTTL
	}
	if c.MaxChallenges == 0 {
		c.MaxChallenges = DefaultMaxChallenges
	}
	switch {
	case c.Version == "":
		return c, outcome.UsageErrorf("%s: required (the KMS release version, e.g. 1.2.0)", EnvVersion)
	case c.Profile == "":
		return c, outcome.UsageErrorf("%s: required (one of %s)", EnvProfile, strings.Join(release.ProfileNames(), ", "))
	case c.PolicyURL == "":
		return c, outcome.UsageErrorf("%s: required (http(s):// or file:// URL of attestation-policy-%s.json)", EnvPolicyURL, c.Profile)
	case c.QuoteSource != QuoteSourceSimulator && c.QuoteSource != QuoteSourceConfigFS && c.QuoteSource != QuoteSourceDstack:
		return c, outcome.UsageErrorf("%s: %q, want %s, %s or %s", EnvQuoteSource, c.QuoteSource, QuoteSourceSimulator, QuoteSourceDstack, QuoteSourceConfigFS)
	case c.ChallengeTTL < 0:
		return c, outcome.UsageErrorf("%s: %s is negative", EnvChallengeTTL, c.ChallengeTTL)
	case c.MaxChallenges < 0:
		return c, outcome.UsageErrorf("%s: %d is negative", EnvMaxChallenges, c.MaxChallenges)
	case c.MaxChallengesPerPeer < 0:
		return c, outcome.UsageErrorf("%s: %d is negative", EnvMaxChallengesPerPeer, c.MaxChallengesPerPeer)
	case c.MaxChallengesPerSource < 0:
		return c, outcome.UsageErrorf("%s: %d is negative", EnvMaxChallengesPerSource, c.MaxChallengesPerSource)
	}
	if _, err := release.ParseVersion(c.Version); err != nil {
		return c, outcome.UsageErrorf("%s: %v", EnvVersion, err)
	}
	if _, err := release.ParseProfile(c.Profile); err != nil {
		return c, outcome.UsageErrorf("%s: %v", EnvProfile, err)
	}
	if c.PolicySHA256 != "" {
		c.PolicySHA256 = strings.ToLower(c.PolicySHA256)
		if b, err := hex.DecodeString(c.PolicySHA256); err != nil || len(b) != sha256.Size {
			return c, outcome.UsageErrorf("%s: %q is not 64 hex characters", EnvPolicySHA256, c.PolicySHA256)
		}
	}
	return c, nil
}

// LoadedPolicy is a policy fetched at start-up with its raw bytes' digest and source.
type LoadedPolicy = policy.Loaded

// FetchPolicy fetches the policy at rawURL (http://, https:// or file://; a URL without a
// scheme is a file path), checks the optional SHA-256 pin over the fetched bytes, loads it with
// policy.Load and checks that its kms_version and profile are the configured ones. Every
// refusal is an error: the KMS must not start with it. A pin mismatch or a wrong policy is a
// verification error (exit 10); an unreachable URL is a general error.
func FetchPolicy(ctx context.Context, client *http.Client, rawURL, wantSHA256, version, profile string) (*LoadedPolicy, error) {
	data, err := fetch(ctx, client, rawURL)
	if err != nil {
		return nil, err
	}
	return LoadPolicyBytes(data, rawURL, wantSHA256, version, profile)
}

// LoadPolicyBytes is FetchPolicy on bytes already fetched from source (named in errors): the
// start-up rule of policy.LoadForKMS.
func LoadPolicyBytes(data []byte, source, wantSHA256, version, profile string) (*LoadedPolicy, error) {
	return policy.LoadForKMS(data, source, wantSHA256, version, profile)
}

func fetch(ctx context.Context, client *http.Client, rawURL string) ([]byte, error) {
	if data, ok, err := policy.ParseDataURL(rawURL); ok {
		if err != nil {
			return nil, err
		}
		return readLimited(bytes.NewReader(data), "(data: URL)")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, outcome.UsageErrorf("%s: %v", EnvPolicyURL, err)
	}
	switch u.Scheme {
	case "", "file":
		path := rawURL
		if u.Scheme == "file" {
			if u.Host != "" && u.Host != "localhost" {
				return nil, outcome.UsageErrorf("%s: %q: a file URL must not name a host", EnvPolicyURL, rawURL)
			}
			path = u.Path
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("fetch attestation policy: %w", err)
		}
		defer f.Close()
		return readLimited(f, rawURL)
	case "http", "https":
		if client == nil {
			client = &http.Client{Timeout: 30 * time.Second}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, outcome.UsageErrorf("%s: %v", EnvPolicyURL, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch attestation policy: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch attestation policy %s: HTTP %s", rawURL, resp.Status)
		}
		return readLimited(resp.Body, rawURL)
	}
	return nil, outcome.UsageErrorf("%s: scheme %q: want http, https, file or data", EnvPolicyURL, u.Scheme)
}

func readLimited(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch attestation policy %s: %w", name, err)
	}
	if len(data) > maxPolicyBytes {
		return nil, outcome.VerificationErrorf("attestation policy %s: larger than %d bytes", name, maxPolicyBytes)
	}
	return data, nil
}

// ReadRootSecret reads the key-derivation root secret from path (at least 32 bytes, surrounding
// whitespace trimmed). An empty path returns DevRootSecret and dev = true.
func ReadRootSecret(path string) (secret []byte, dev bool, err error) {
	if path == "" {
		return []byte(DevRootSecret), true, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", EnvRootSecretFile, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 32 {
		return nil, false, outcome.UsageErrorf("%s: %s holds %d bytes, want at least 32", EnvRootSecretFile, path, len(b))
	}
	return b, false, nil
}
