package packer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// fakePacker writes a stand-in for packer: it records its arguments and, on `build`, writes the
// manifest Packer's manifest post-processor would, from the -var values it was given (the
// profiles of the template, the version and the base image). script is appended to change that.
func fakePacker(t *testing.T, script string) (bin, argsLog string) {
	t.Helper()
	dir := t.TempDir()
	argsLog = filepath.Join(dir, "args.log")
	bin = filepath.Join(dir, "packer")
	body := `#!/bin/sh
echo "$*" >> ` + argsLog + `
` + script + `
[ "$1" = build ] || exit 0
for a in "$@"; do
  case $a in
    version=*) version=${a#version=} ;;
    source_image=*) base=${a#source_image=} ;;
    source_image_family=*) family=${a#source_image_family=} ;;
    source_image_project=*) project=${a#source_image_project=} ;;
  esac
done
v=$(echo "$version" | tr . -)
{
  echo '{"builds": ['
  sep=
  for p in debug debug-read-only locked-read-only; do
    printf '%s{"name": "%s", "builder_type": "googlecompute", "artifact_id": "mero-tee-%s-%s", "packer_run_uuid": "run-2",' "$sep" "$p" "$v" "$p"
    printf ' "custom_data": {"profile": "%s", "source_image": "%s", "source_image_family": "%s", "source_image_project": "%s",' "$p" "$base" "$family" "$project"
    printf ' "packages_file": "os-packages-%s.tsv", "identity_file": "image-identity-%s.env"}}\n' "$p" "$p"
    printf 'base-files\t13ubuntu10.1\tamd64\tbase-files\nlibc6:amd64\t2.39-0ubuntu8.3\tamd64\tglibc\n' > "os-packages-$p.tsv"
    printf 'os_id=ubuntu\nos_version_id=24.04\nkernel_release=6.8.0-1015-gcp\nkernel_sha256=%064d\n' 0 > "image-identity-$p.env"
    sep=,
  done
  echo '], "last_run_uuid": "run-2"}'
} > packer-manifest.json
echo "==> Builds finished."
`
	if err := os.WriteFile(bin, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argsLog
}

// agentBinary writes a stand-in for the mero-tee-agent executable (an ELF header is all Run
// checks).
func agentBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent")
	if err := os.WriteFile(p, []byte("\x7fELF stand-in"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func template(t *testing.T) string {
	t.Helper()
	return filepath.Join("..", "..", "examples", "node-image", "packer")
}

func TestRun(t *testing.T) {
	bin, argsLog := fakePacker(t, "")
	dir := filepath.Join(t.TempDir(), "build")
	var out strings.Builder
	manifest, builds, err := Run(context.Background(), Options{Template: template(t), Dir: dir, Version: "1.3.0-rc.1",
		Project: "mero-prod", Zone: "us-central1-a", ImageFamily: "mero-tee", Packer: bin, Output: &out, AgentBinary: agentBinary(t)})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if manifest != filepath.Join(dir, ManifestName) {
		t.Errorf("manifest at %s", manifest)
	}
	images, err := Images(builds)
	if err != nil {
		t.Fatal(err)
	}
	if images[release.LockedReadOnly] != "mero-tee-1-3-0-rc-1-locked-read-only" || len(images) != 3 {
		t.Errorf("images %v", images)
	}
	if base, _ := Base(builds); base != DefaultBaseImage() {
		t.Errorf("base %+v", base)
	}
	// packer ran init, then build with the pinned base image, in the copy of the template
	data, err := os.ReadFile(argsLog)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(calls) != 2 || calls[0] != "init ." || !strings.HasPrefix(calls[1], "build -color=false") {
		t.Fatalf("packer calls %q", calls)
	}
	for _, want := range []string{"-var version=1.3.0-rc.1", "-var project_id=mero-prod", "-var source_image=ubuntu-2404-tdx-v20250101",
		"-var source_image_project=confidential-vm-images", "-var zone=us-central1-a", "-var image_family=mero-tee"} {
		if !strings.Contains(calls[1], want) {
			t.Errorf("packer build lacks %q: %s", want, calls[1])
		}
	}
	for _, b := range builds {
		rec, ok, err := ReadRecord(dir, b)
		if err != nil || !ok || len(rec.Packages) != 2 || rec.Packages[1] != (OSPackage{Name: "libc6", Version: "2.39-0ubuntu8.3", Architecture: "amd64", Source: "glibc"}) {
			t.Errorf("build %s: record %+v, %v, %v", b.Name, rec, ok, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, AgentName)); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("the agent was not installed beside the template: %v", err)
	}
	for _, f := range []string{"mero-tee.pkr.hcl", "provision.sh", "mero-tee-agent.service"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the template's %s was not copied: %v", f, err)
		}
	}
	if !strings.Contains(out.String(), "Builds finished") {
		t.Errorf("packer's output was not passed on: %q", out.String())
	}
}

func TestRunFailures(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "agent.sh")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := Options{Template: template(t), Version: "1.3.0", Project: "p", AgentBinary: agentBinary(t)}
	cases := map[string]struct {
		script string
		mutate func(*Options)
		code   int
		want   string
	}{
		"packer fails": {script: `[ "$1" = build ] && { echo "Error: googlecompute: quota exceeded" >&2; exit 1; }`,
			code: outcome.General, want: "quota exceeded"},
		"no manifest": {script: `[ "$1" = build ] && exit 0`, code: outcome.Usage, want: "wrote no packer-manifest.json"},
		"a profile missing": {script: `[ "$1" = build ] && { echo '{"builds": [{"name": "debug", "builder_type": "googlecompute", "artifact_id": "x", "custom_data": {"source_image": "ubuntu-2404-tdx-v20250101", "source_image_family": "ubuntu-2404-tdx", "source_image_project": "confidential-vm-images"}}]}' > packer-manifest.json; exit 0; }`,
			code: outcome.Usage, want: "no image for profile debug-read-only"},
		"another base image": {script: `[ "$1" = build ] && { printf '{"builds": [{"name": "debug", "builder_type": "g", "artifact_id": "a", "custom_data": {"source_image": "ubuntu-2404-tdx-v20990101"}}, {"name": "debug-read-only", "builder_type": "g", "artifact_id": "b", "custom_data": {"source_image": "ubuntu-2404-tdx-v20990101"}}, {"name": "locked-read-only", "builder_type": "g", "artifact_id": "c", "custom_data": {"source_image": "ubuntu-2404-tdx-v20990101"}}]}' > packer-manifest.json; exit 0; }`,
			code: outcome.VerificationFailed, want: "not the pinned"},
		"no agent":             {mutate: func(o *Options) { o.AgentBinary = "" }, code: outcome.Usage, want: "no mero-tee-agent to install"},
		"agent not executable": {mutate: func(o *Options) { o.AgentBinary = notELF }, code: outcome.Usage, want: "not an ELF executable"},
		"no package record": {script: `[ "$1" = build ] && { printf '{"builds": [{"name": "debug", "builder_type": "g", "artifact_id": "a", "custom_data": {"source_image": "ubuntu-2404-tdx-v20250101", "source_image_family": "ubuntu-2404-tdx", "source_image_project": "confidential-vm-images"}}, {"name": "debug-read-only", "builder_type": "g", "artifact_id": "b", "custom_data": {"source_image": "ubuntu-2404-tdx-v20250101", "source_image_family": "ubuntu-2404-tdx", "source_image_project": "confidential-vm-images"}}, {"name": "locked-read-only", "builder_type": "g", "artifact_id": "c", "custom_data": {"source_image": "ubuntu-2404-tdx-v20250101", "source_image_family": "ubuntu-2404-tdx", "source_image_project": "confidential-vm-images"}}]}' > packer-manifest.json; exit 0; }`,
			code: outcome.Usage, want: "names no packages_file"},
		"no project":  {mutate: func(o *Options) { o.Project = "" }, code: outcome.Usage, want: "GCP project"},
		"bad version": {mutate: func(o *Options) { o.Version = "1.3" }, code: outcome.Usage, want: "version"},
		"no template": {mutate: func(o *Options) { o.Template = t.TempDir() }, code: outcome.Usage, want: "no *.pkr.hcl"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bin, _ := fakePacker(t, tc.script)
			o := base
			o.Dir, o.Packer = filepath.Join(t.TempDir(), "build"), bin
			if tc.mutate != nil {
				tc.mutate(&o)
			}
			_, _, err := Run(context.Background(), o)
			if err == nil || outcome.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v (exit %d), want exit %d mentioning %q", err, outcome.Code(err), tc.code, tc.want)
			}
		})
	}
}

func TestImagesAndBase(t *testing.T) {
	builds, err := ReadManifest(strings.NewReader(packerManifest), "m.json")
	if err != nil {
		t.Fatal(err)
	}
	// the test manifest's last run built two profiles only
	if _, err := Images(builds); err == nil || !strings.Contains(err.Error(), "no image for profile debug-read-only") {
		t.Errorf("Images of a partial run: %v", err)
	}
	dup := []Build{{Name: "a", ArtifactID: "x", CustomData: map[string]string{"profile": "debug"}}, {Name: "debug", ArtifactID: "y"}}
	if _, err := Images(dup); err == nil || !strings.Contains(err.Error(), "two images for profile debug") {
		t.Errorf("Images of duplicates: %v", err)
	}
	if _, err := Images([]Build{{Name: "prod", ArtifactID: "x"}}); outcome.Code(err) != outcome.Usage {
		t.Errorf("Images of an unknown profile: %v", err)
	}
	if _, err := Base([]Build{{Name: "debug"}}); err == nil || !strings.Contains(err.Error(), "must be pinned") {
		t.Errorf("Base without source_image: %v", err)
	}
}
