package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

func TestLoadForKMS(t *testing.T) {
	data, err := mustGenerate(t, "1.2.0", release.LockedReadOnly, node("1.2.0", release.Profiles()...)).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	for _, pin := range []string{"", hexSum, strings.ToUpper(hexSum)} {
		lp, err := LoadForKMS(data, "src.json", pin, "1.2.0", "locked-read-only")
		if err != nil {
			t.Fatalf("pin %q: %v", pin, err)
		}
		if lp.SHA256 != hexSum || lp.Source != "src.json" || lp.Policy.KMSVersion != "1.2.0" || lp.Policy.Profile != release.LockedReadOnly {
			t.Errorf("pin %q: %+v", pin, lp)
		}
	}
	notReady, err := mustGenerate(t, "1.2.0", release.Debug).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if lp, err := LoadForKMS(notReady, "nr.json", "", "1.2.0", "debug"); err != nil || !lp.Policy.NotReady() {
		t.Errorf("a policy_not_ready policy loads (the KMS starts and warns): %+v, %v", lp, err)
	}
	for _, tt := range []struct {
		name, data, pin, version, profile string
		want                              string
	}{
		{"pin mismatch", string(data), strings.Repeat("0", 64), "1.2.0", "locked-read-only",
			"attestation policy src.json: SHA-256 is " + hexSum + " but MERO_KMS_POLICY_SHA256 pins " + strings.Repeat("0", 64) + ": refusing to start"},
		{"pin upper case", string(data), strings.Repeat("A", 64), "1.2.0", "locked-read-only", "pins " + strings.Repeat("a", 64)},
		{"wrong version", string(data), "", "1.3.0", "locked-read-only",
			`attestation policy src.json: kms_version is "1.2.0" but MERO_KMS_VERSION is "1.3.0": refusing to start`},
		{"wrong profile", string(data), "", "1.2.0", "debug",
			`attestation policy src.json: profile is "locked-read-only" but MERO_KMS_PROFILE is "debug": refusing to start`},
		{"malformed", `{"schema_version":"1"`, "", "1.2.0", "debug", "attestation policy src.json: "},
		{"invalid", `{"schema_version":"1"}`, "", "1.2.0", "debug", "attestation policy src.json: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadForKMS([]byte(tt.data), "src.json", tt.pin, tt.version, tt.profile)
			if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (exit %d), want exit 10 with %q", err, outcome.Code(err), tt.want)
			}
		})
	}
}

func TestKMSVariables(t *testing.T) {
	if EnvKMSVersion != release.KMS.VersionVariable() {
		t.Errorf("EnvKMSVersion %q, release.KMS.VersionVariable() %q", EnvKMSVersion, release.KMS.VersionVariable())
	}
	for _, v := range []string{EnvKMSVersion, EnvKMSProfile, EnvPolicyURL, EnvPolicySHA256} {
		if !strings.HasPrefix(v, "MERO_KMS_") {
			t.Errorf("%s is not a MERO_KMS_* variable (SPEC §8)", v)
		}
	}
}

func TestDataURL(t *testing.T) {
	data := []byte(`{"schema_version":"1","x":"ä"}`)
	u := DataURL(data)
	got, ok, err := ParseDataURL(u)
	if err != nil || !ok || string(got) != string(data) {
		t.Fatalf("ParseDataURL(DataURL(x)) = %q, %v, %v", got, ok, err)
	}
	for _, other := range []string{"https://example.invalid/p.json", "file:///tmp/p.json", "", "data:text/plain,x"} {
		if _, ok, err := ParseDataURL(other); ok || err != nil {
			t.Errorf("ParseDataURL(%q): ok %v, err %v; want not a policy data URL", other, ok, err)
		}
	}
	if _, ok, err := ParseDataURL(dataURLPrefix + "!!!"); !ok || outcome.Code(err) != outcome.Usage {
		t.Errorf("bad base64: ok %v, err %v; want a usage error", ok, err)
	}
}
