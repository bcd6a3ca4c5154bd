// Package kms is the sample KMS released by mero-release by default: its Go server lives in
// examples/kms/server, its binary in examples/kms/cmd/mero-kms, and this package carries the
// deployment files that the pipeline builds and measures (the Dockerfile and the dstack
// docker-compose.yaml, embedded here so that the compose hash is computed from the shipped file).
package kms

import (
	_ "embed" // the compose file
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

//go:embed docker-compose.yaml
var composeYAML string

// ImagePlaceholder is the image reference of the shipped docker-compose.yaml, replaced by
// RenderCompose.
const ImagePlaceholder = "${MERO_KMS_IMAGE}"

// LocalImage is the image reference of local runs, where no image was built: a fixed,
// obviously fake digest, so that the local compose hash is stable.
const LocalImage = "localhost/mero-kms@sha256:0000000000000000000000000000000000000000000000000000000000000000"

var pinnedRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$`)

// ComposeTemplate returns the shipped docker-compose.yaml, image placeholder included.
func ComposeTemplate() string { return composeYAML }

// RenderCompose returns the docker-compose.yaml running imageRef, which must be pinned by
// digest (NAME@sha256:<64 lower-case hex>).
func RenderCompose(imageRef string) (string, error) {
	if !pinnedRE.MatchString(imageRef) {
		return "", outcome.UsageErrorf("kms image %q: want NAME@sha256:<64 lower-case hex> (pinned by digest)", imageRef)
	}
	if strings.Count(composeYAML, ImagePlaceholder) != 1 {
		return "", fmt.Errorf("docker-compose.yaml: want exactly one %s placeholder", ImagePlaceholder)
	}
	return strings.Replace(composeYAML, ImagePlaceholder, imageRef, 1), nil
}

// AllowedEnvs are the variables an operator may pass to the dstack app: the KMS configuration of
// SPEC §8. Nothing else reaches the container, so no ALLOWED_* variable can be smuggled in.
func AllowedEnvs() []string {
	return []string{"MERO_KMS_POLICY_SHA256", "MERO_KMS_POLICY_URL", "MERO_KMS_PROFILE", "MERO_KMS_VERSION"}
}

// AppCompose returns dstack's app-compose manifest running imageRef as canonical JSON
// (measure.CanonicalJSON: keys sorted recursively, compact, UTF-8, no HTML escaping): the
// document whose SHA-256 is the compose hash dstack extends into RTMR3 (SPEC §11).
func AppCompose(imageRef string) ([]byte, error) {
	compose, err := RenderCompose(imageRef)
	if err != nil {
		return nil, err
	}
	manifest := map[string]any{
		"manifest_version":           2,
		"name":                       "mero-kms",
		"runner":                     "docker-compose",
		"docker_compose_file":        compose,
		"allowed_envs":               AllowedEnvs(),
		"kms_enabled":                false,
		"gateway_enabled":            false,
		"local_key_provider_enabled": false,
		"public_logs":                true,
		"public_sysinfo":             true,
		"no_instance_id":             true,
	}
	doc, err := json.Marshal(manifest)
	if err != nil {
		return nil, fmt.Errorf("encode app-compose: %w", err)
	}
	return measure.CanonicalJSON(appComposeName, doc)
}

// appComposeName labels the app-compose in errors.
const appComposeName = "mero-kms app-compose"

// ComposeHash returns the dstack compose hash of AppCompose(imageRef) as the KMS measurement
// computes it (measure.ParseCompose): SHA-256 of the canonical JSON, hex.
func ComposeHash(imageRef string) (string, error) {
	b, err := AppCompose(imageRef)
	if err != nil {
		return "", err
	}
	c, err := measure.ParseCompose(appComposeName, b)
	if err != nil {
		return "", err
	}
	return c.HashHex(), nil
}
