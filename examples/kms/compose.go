// Package kms is the sample KMS released by mero-release by default: its Go server lives in
// examples/kms/server, its binary in examples/kms/cmd/mero-kms, and this package carries the
// deployment files that the pipeline builds and measures (the Dockerfile and the dstack
// docker-compose.yaml, embedded here so that the compose hash is computed from the shipped file).
package kms

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the compose file
	"encoding/hex"
	"encoding/json"
	"fmt"
)

//go:embed docker-compose.yaml
var composeYAML string

// ComposeYAML returns the shipped docker-compose.yaml.
func ComposeYAML() string { return composeYAML }

// AllowedEnvs are the variables an operator may pass to the dstack app: the KMS configuration of
// SPEC §8. Nothing else reaches the container, so no ALLOWED_* variable can be smuggled in.
func AllowedEnvs() []string {
	return []string{"MERO_KMS_IMAGE", "MERO_KMS_POLICY_SHA256", "MERO_KMS_POLICY_URL", "MERO_KMS_PROFILE", "MERO_KMS_VERSION"}
}

// AppCompose returns dstack's app-compose manifest for the KMS as canonical JSON (keys sorted
// recursively, compact, UTF-8, no HTML escaping).
func AppCompose() ([]byte, error) {
	manifest := map[string]any{
		"manifest_version":           2,
		"name":                       "mero-kms",
		"runner":                     "docker-compose",
		"docker_compose_file":        composeYAML,
		"allowed_envs":               AllowedEnvs(),
		"kms_enabled":                false,
		"gateway_enabled":            false,
		"local_key_provider_enabled": false,
		"public_logs":                true,
		"public_sysinfo":             true,
		"no_instance_id":             false,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(manifest); err != nil { // maps are encoded with sorted keys
		return nil, fmt.Errorf("encode app-compose: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ComposeHash returns the dstack compose hash of AppCompose: SHA-256 of its canonical JSON, hex.
func ComposeHash() (string, error) {
	b, err := AppCompose()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
