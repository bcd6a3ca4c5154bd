package measure_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

func (f *kmsFixture) inputs() []measure.KMSInput {
	var in []measure.KMSInput
	for _, prof := range release.Profiles() {
		in = append(in, measure.KMSInput{Profile: prof, Image: f.images[prof], Compose: f.composes[prof]})
	}
	return in
}

func kmsOpts() measure.KMSOptions {
	return measure.KMSOptions{Version: "1.2.0", OSImage: dstackOS(), Now: clock, Dstack: measure.DstackBoot{KeyProviderID: []byte{0xbe, 0xef}}}
}

func TestMeasureKMS(t *testing.T) {
	f := newKMSFixture(t)
	pub, err := measure.MeasureKMS(context.Background(), f.inputs(), kmsOpts())
	if err != nil {
		t.Fatal(err)
	}
	if pub.Family != release.KMS || pub.Version != "1.2.0" || len(pub.Profiles) != 3 {
		t.Fatalf("published %+v", pub)
	}
	osImg := dstackOS()
	seen := map[string]release.Profile{}
	for _, prof := range release.Profiles() {
		r := pub.Profiles[prof]
		yml, _ := os.ReadFile(f.composes[prof])
		canonical, err := measure.CanonicalJSON("c", yml)
		if err != nil {
			t.Fatal(err)
		}
		ch := sha256.Sum256(canonical)
		if r.Source != "image-inspection" || r.ImageDigest != f.digests[prof] || r.ComposeHash != hex.EncodeToString(ch[:]) ||
			r.Image != kmsRepo+"@"+f.digests[prof] || r.MeasuredAt != "2026-11-25T10:00:00Z" || r.QuoteSHA256 != "" {
			t.Fatalf("%s: record %+v", prof, r)
		}
		// MRTD and RTMR0–2 are the pinned OS file's, and say so; RTMR3 is dstack's events
		// replayed from zero, computed from the compose.
		if r.MRTD != osImg.MRTD || r.RTMR0 != osImg.RTMR0 || r.RTMR1 != osImg.RTMR1 || r.RTMR2 != osImg.RTMR2 {
			t.Fatalf("%s: boot registers differ from the pinned dstack OS file's", prof)
		}
		rs := r.RegisterSources
		for reg, src := range map[string]string{"mrtd": rs.MRTD, "rtmr0": rs.RTMR0, "rtmr1": rs.RTMR1, "rtmr2": rs.RTMR2} {
			if !strings.HasPrefix(src, measure.RegisterSourcePinnedOS+": ") || !strings.Contains(src, osImg.DstackVersion) {
				t.Errorf("%s: register_sources.%s = %q, want the pinned dstack OS file", prof, reg, src)
			}
		}
		if src := rs.RTMR3; !strings.HasPrefix(src, measure.RegisterSourceComposeReplay+": ") || !strings.Contains(src, r.ComposeHash) {
			t.Errorf("%s: register_sources.rtmr3 = %q, want computed from the compose", prof, src)
		}
		evs, _ := measure.DstackBoot{KeyProviderID: []byte{0xbe, 0xef}}.Events(ch)
		var rtmr3 [48]byte
		for _, e := range evs {
			rtmr3 = tdx.Extend(rtmr3, e.Digest)
		}
		if r.RTMR3 != hex.EncodeToString(rtmr3[:]) {
			t.Fatalf("%s: rtmr3 %s, want %x", prof, r.RTMR3, rtmr3)
		}
		for _, v := range []string{r.ImageDigest, r.ComposeHash, r.RTMR3} {
			if other, dup := seen[v]; dup {
				t.Fatalf("%s and %s share %s", other, prof, v)
			}
			seen[v] = prof
		}
	}
	if err := measure.CheckDistinct(pub); err != nil {
		t.Fatal(err)
	}
}

func TestMeasureKMSIsDeterministic(t *testing.T) {
	f := newKMSFixture(t)
	dir := t.TempDir()
	var files [][]byte
	for i, now := range []time.Time{fixedNow, fixedNow, fixedNow.Add(time.Hour)} {
		opts := kmsOpts()
		opts.Now = func() time.Time { return now }
		pub, err := measure.MeasureKMS(context.Background(), f.inputs(), opts)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "published-mrtds-"+string(rune('a'+i))+".json")
		if err := pub.Write(p); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(p)
		files = append(files, data)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Fatalf("same inputs, same clock, different files:\n%s\n%s", files[0], files[1])
	}
	// A later run differs only in measured_at.
	if bytes.Equal(files[0], files[2]) {
		t.Fatal("measured_at did not change")
	}
	if !bytes.Equal(files[0], bytes.ReplaceAll(files[2], []byte("2026-11-25T11:00:00Z"), []byte("2026-11-25T10:00:00Z"))) {
		t.Fatalf("runs differ apart from timestamps:\n%s\n%s", files[0], files[2])
	}
	// Rebuilding the same images gives the same digests.
	again := newKMSFixture(t)
	for _, prof := range release.Profiles() {
		if again.digests[prof] != f.digests[prof] {
			t.Fatalf("%s: rebuilding the same image gave another digest", prof)
		}
	}
}

func TestMeasureKMSFailures(t *testing.T) {
	f := newKMSFixture(t)
	swapped := f.inputs()
	swapped[0].Compose = f.composes[release.DebugReadOnly] // debug's compose runs another image
	sameImage := f.inputs()
	sameImage[1] = measure.KMSInput{Profile: release.DebugReadOnly, Image: f.images[release.Debug], Compose: f.composes[release.Debug]}
	tests := []struct {
		name   string
		inputs []measure.KMSInput
		opts   func(*measure.KMSOptions)
		want   string
		code   int
	}{
		{"compose runs another image", swapped, nil, "does not reference image " + f.digests[release.Debug], outcome.VerificationFailed},
		{"two profiles one image", sameImage, nil, "profiles debug and debug-read-only have the same image digest", outcome.VerificationFailed},
		{"no OS image", f.inputs(), func(o *measure.KMSOptions) { o.OSImage = nil }, "no dstack OS image", outcome.Usage},
		{"bad OS image", f.inputs(), func(o *measure.KMSOptions) { o.OSImage = &dstack.OSImage{Name: "x"} }, "schema_version", outcome.Usage},
		{"bad version", f.inputs(), func(o *measure.KMSOptions) { o.Version = "v1.2" }, "version", outcome.Usage},
		{"no inputs", nil, nil, "no profile to measure", outcome.Usage},
		{"duplicate profile", append(f.inputs(), f.inputs()[0]), nil, "profile debug given twice", outcome.Usage},
		{"unknown profile", []measure.KMSInput{{Profile: "prod", Image: f.images[release.Debug], Compose: f.composes[release.Debug]}}, nil, `profile "prod"`, outcome.Usage},
		{"missing image", []measure.KMSInput{{Profile: release.Debug, Image: filepath.Join(f.dir, "nope.tar"), Compose: f.composes[release.Debug]}}, nil, "nope.tar", outcome.Usage},
		{"missing compose", []measure.KMSInput{{Profile: release.Debug, Image: f.images[release.Debug], Compose: filepath.Join(f.dir, "nope.yaml")}}, nil, "nope.yaml", outcome.Usage},
		{"bad app id", f.inputs(), func(o *measure.KMSOptions) { o.Dstack.AppID = []byte{1} }, "app id", outcome.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := kmsOpts()
			if tt.opts != nil {
				tt.opts(&opts)
			}
			_, err := measure.MeasureKMS(context.Background(), tt.inputs, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || outcome.Code(err) != tt.code {
				t.Fatalf("err = %v (code %d), want %q (code %d)", err, outcome.Code(err), tt.want, tt.code)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := measure.MeasureKMS(ctx, f.inputs(), kmsOpts()); err == nil {
		t.Fatal("cancelled context: no error")
	}
}

func TestCheckDistinct(t *testing.T) {
	reg := func(c string) string { return strings.Repeat(c, 96) }
	rec := func(r3 string) measure.Record {
		return measure.Record{MRTD: reg("a"), RTMR0: reg("b"), RTMR1: reg("c"), RTMR2: reg("d"), RTMR3: r3, Source: "tdx-simulator"}
	}
	p := &measure.Published{Profiles: map[release.Profile]measure.Record{release.Debug: rec(reg("1")), release.LockedReadOnly: rec(reg("2"))}}
	if err := measure.CheckDistinct(p); err != nil {
		t.Fatal(err)
	}
	p.Profiles[release.DebugReadOnly] = rec(reg("2"))
	err := measure.CheckDistinct(p)
	if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "debug-read-only and locked-read-only have identical MRTD and RTMR0–3") {
		t.Fatalf("err = %v", err)
	}
}
