package kms

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

func TestRenderCompose(t *testing.T) {
	ref := "ghcr.io/calimero-network/mero-kms@sha256:" + strings.Repeat("ab", 32)
	out, err := RenderCompose(ref)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, ImagePlaceholder) || !strings.Contains(out, "image: "+ref+"\n") {
		t.Errorf("rendered compose:\n%s", out)
	}
	for _, bad := range []string{"", "mero-kms:latest", "mero-kms@sha256:abc", "Mero@sha256:" + strings.Repeat("ab", 32), ref + "\nx: y"} {
		if _, err := RenderCompose(bad); outcome.Code(err) != outcome.Usage {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestComposeFile(t *testing.T) {
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(ComposeTemplate()), &doc); err != nil {
		t.Fatal(err)
	}
	svc, ok := doc.Services["mero-kms"]
	if !ok || len(doc.Services) != 1 || svc.Image != ImagePlaceholder {
		t.Fatalf("services: %+v", doc.Services)
	}
	interp := regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`)
	for k, v := range svc.Environment {
		if strings.HasPrefix(k, "ALLOWED_") {
			t.Errorf("the compose sets %s (SPEC §4: no ALLOWED_* variables)", k)
		}
		for _, m := range interp.FindAllStringSubmatch(v, -1) {
			if !slices.Contains(AllowedEnvs(), m[1]) {
				t.Errorf("%s takes ${%s}, which is not in allowed_envs %v", k, m[1], AllowedEnvs())
			}
		}
	}
	for _, want := range []string{"MERO_KMS_VERSION", "MERO_KMS_PROFILE", "MERO_KMS_POLICY_URL", "MERO_KMS_POLICY_SHA256"} {
		if _, ok := svc.Environment[want]; !ok {
			t.Errorf("the compose does not pass %s", want)
		}
	}
}

func TestAppComposeIsCanonical(t *testing.T) {
	b, err := AppCompose(LocalImage)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	enc := json.NewEncoder(&again)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m)
	if !bytes.Equal(bytes.TrimSuffix(again.Bytes(), []byte("\n")), b) {
		t.Error("re-encoding the app-compose changes it: not canonical")
	}
	if bytes.ContainsAny(b, "\n\t") || m["docker_compose_file"] == ComposeTemplate() || m["no_instance_id"] != true {
		t.Errorf("app-compose %s", b)
	}
	h1, _ := ComposeHash(LocalImage)
	h2, _ := ComposeHash("ghcr.io/x/mero-kms@sha256:" + strings.Repeat("01", 32))
	if h1 == h2 || len(h1) != 64 {
		t.Errorf("compose hashes %s %s", h1, h2)
	}
	golden := filepath.Join("testdata", "local-compose-hash.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		_ = os.MkdirAll("testdata", 0o755)
		_ = os.WriteFile(golden, []byte(h1+"\n"), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != h1 {
		t.Errorf("local compose hash %s, golden %s: the compose or app-compose changed (UPDATE_GOLDEN=1 to accept)", h1, want)
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	for _, want := range []string{
		"ARG BUILDER_IMAGE=golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d",
		"FROM ${BUILDER_IMAGE} AS build",
		"CGO_ENABLED=0",
		"./examples/kms/cmd/mero-kms",
		"FROM scratch AS prebuilt",
		"FROM ${KMS_BINARY_SOURCE} AS binary",
		"ARG MERO_KMS_PROFILE",
		"MERO_KMS_PROFILE=${MERO_KMS_PROFILE}",
		`ENTRYPOINT ["/usr/local/bin/mero-kms"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join("cmd", "mero-kms", "main.go")); err != nil {
		t.Errorf("the Dockerfile builds a package that is not there: %v", err)
	}
	// Every base is scratch, pinned by digest, a stage of the file, or an ARG whose default is one
	// of those: the same Dockerfile and arguments always start from the same bytes.
	args, stages := map[string]string{}, map[string]bool{}
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "ARG":
			name, def, _ := strings.Cut(f[1], "=")
			args[name] = def
		case len(f) >= 2 && f[0] == "FROM":
			base := f[1]
			if strings.HasPrefix(base, "${") && strings.HasSuffix(base, "}") {
				base = args[strings.TrimSuffix(strings.TrimPrefix(base, "${"), "}")]
			}
			if base != "scratch" && !strings.Contains(base, "@sha256:") && !stages[base] {
				t.Errorf("unpinned base image: %s (resolves to %q)", line, base)
			}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				stages[f[3]] = true
			}
		}
	}
}
