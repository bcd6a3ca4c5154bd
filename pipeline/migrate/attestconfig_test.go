package migrate_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/migrate"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func (w *world) configOptions(p release.Profile) migrate.AttestationConfigOptions {
	return migrate.AttestationConfigOptions{Store: w.Store, KMSRelease: "mero-kms-v1.3.0", Profile: p, KMSURL: "https://kms.example.com:8443/", Trust: w.trust}
}

func TestKMSAttestationConfig(t *testing.T) {
	w := newWorld(t)
	w.publishKMS(t, "1.3.0", w.kmsFiles(t, "1.3.0", w.node), nil)
	log, buf := logger()
	o := w.configOptions(release.LockedReadOnly)
	o.Log = log
	c, err := migrate.KMSAttestationConfig(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	rec := w.KMSRecord(t)
	if c.Record != rec || c.KMSVersion != "1.3.0" || c.Profile != release.LockedReadOnly || !reflect.DeepEqual(c.TCBStatuses, []string{"UpToDate"}) {
		t.Fatalf("config %+v", c)
	}
	if !strings.Contains(buf.String(), "[PASS] mero-kms-v1.3.0/published-mrtds.json: signature verified") {
		t.Fatalf("log:\n%s", buf)
	}
	out, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "merod-kms-attestation.toml")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := readFile(t, golden); string(out) != string(want) {
		t.Fatalf("TOML differs from %s (go test -update):\n%s", golden, out)
	}
	// merod reads it back as TOML with the values of the published record.
	var back struct {
		TEE struct {
			KMS struct {
				Phala struct {
					URL         string `toml:"url"`
					Attestation struct {
						Enabled            bool     `toml:"enabled"`
						AcceptMock         bool     `toml:"accept_mock"`
						AllowedTCBStatuses []string `toml:"allowed_tcb_statuses"`
						AllowedMRTD        []string `toml:"allowed_mrtd"`
						AllowedRTMR3       []string `toml:"allowed_rtmr3"`
						ComposeHash        string   `toml:"compose_hash"`
					} `toml:"attestation"`
				} `toml:"phala"`
			} `toml:"kms"`
		} `toml:"tee"`
	}
	if _, err := toml.Decode(string(out), &back); err != nil {
		t.Fatal(err)
	}
	a := back.TEE.KMS.Phala.Attestation
	if back.TEE.KMS.Phala.URL != o.KMSURL || !a.Enabled || a.AcceptMock || a.AllowedMRTD[0] != rec.MRTD || a.AllowedRTMR3[0] != rec.RTMR3 || a.ComposeHash != rec.ComposeHash {
		t.Fatalf("decoded %+v", back)
	}
}

func TestKMSAttestationConfigRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		edit   func(o *migrate.AttestationConfigOptions)
		mutate func(p *measure.Published)
		tamper func(files map[string][]byte)
		code   int
		want   string
	}{
		{name: "node tag", edit: func(o *migrate.AttestationConfigOptions) { o.KMSRelease = "mero-tee-v1.3.0" }, code: outcome.Usage, want: "not a mero-kms tag"},
		{name: "bad tag", edit: func(o *migrate.AttestationConfigOptions) { o.KMSRelease = "1.3.0" }, code: outcome.Usage, want: "--kms-release"},
		{name: "bad profile", edit: func(o *migrate.AttestationConfigOptions) { o.Profile = "prod" }, code: outcome.Usage, want: "--profile"},
		{name: "no URL", edit: func(o *migrate.AttestationConfigOptions) { o.KMSURL = "" }, code: outcome.Usage, want: "--kms-url"},
		{name: "URL without host", edit: func(o *migrate.AttestationConfigOptions) { o.KMSURL = "https:///x" }, code: outcome.Usage, want: "--kms-url"},
		{name: "file URL", edit: func(o *migrate.AttestationConfigOptions) { o.KMSURL = "file:///kms" }, code: outcome.Usage, want: "--kms-url"},
		{name: "unknown TCB status", edit: func(o *migrate.AttestationConfigOptions) { o.TCBStatus = []string{"Fine"} }, code: outcome.Usage, want: "--tcb-status"},
		{name: "Revoked", edit: func(o *migrate.AttestationConfigOptions) { o.TCBStatus = []string{"UpToDate", "Revoked"} }, code: outcome.Usage, want: "never Revoked"},
		{name: "release missing", edit: func(o *migrate.AttestationConfigOptions) { o.KMSRelease = "mero-kms-v2.0.0" }, code: outcome.MissingAsset, want: "not found"},
		{name: "no record for the profile", mutate: func(p *measure.Published) { delete(p.Profiles, release.LockedReadOnly) }, code: outcome.VerificationFailed, want: "no locked-read-only record"},
		{name: "not a KMS measurement", mutate: func(p *measure.Published) {
			r := p.Profiles[release.LockedReadOnly]
			r.ComposeHash = ""
			p.Profiles[release.LockedReadOnly] = r
		}, code: outcome.VerificationFailed, want: "no compose_hash"},
		{name: "another release's file", mutate: func(p *measure.Published) { p.Version = "1.2.0" }, code: outcome.VerificationFailed, want: "describes mero-kms 1.2.0"},
		{name: "tampered", tamper: func(f map[string][]byte) {
			f[release.PublishedMRTDsFile] = []byte(strings.Replace(string(f[release.PublishedMRTDsFile]), "tdx-simulator", "tdx-simulatoR", 1))
		}, code: outcome.VerificationFailed, want: "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			files := w.kmsFiles(t, "1.3.0", w.node)
			if tc.mutate != nil {
				pub, err := measure.ReadPublished(strings.NewReader(string(files[release.PublishedMRTDsFile])))
				if err != nil {
					t.Fatal(err)
				}
				tc.mutate(pub)
				if files[release.PublishedMRTDsFile], err = pub.Marshal(); err != nil {
					t.Fatal(err)
				}
			}
			w.publishKMS(t, "1.3.0", files, tc.tamper)
			o := w.configOptions(release.LockedReadOnly)
			if tc.edit != nil {
				tc.edit(&o)
			}
			_, err := migrate.KMSAttestationConfig(ctx, o)
			wantCode(t, err, tc.code, tc.want)
		})
	}
}
