package main

import (
	"context"

	"dagger/mero-release/internal/dagger"
)

// PolicyGenerate builds one profile's attestation policy from node-image measurements.
//
// Measurements are published-mrtds.json files; with none the policy is marked policy_not_ready.
func (m *MeroRelease) PolicyGenerate(
	ctx context.Context,
	// KMS version the policy belongs to, e.g. 1.3.0.
	kmsVersion string,
	// Profile: debug, debug-read-only or locked-read-only.
	profile string,
	// published-mrtds.json of each node-image release the KMS must accept.
	// +optional
	measurements []*dagger.File,
	// Allowed TCB statuses.
	// +optional
	// +default=["UpToDate"]
	tcbStatus []string,
) (*dagger.File, error) {
	ctr, paths := withFiles(m.Container(), "measurements", "json", measurements)
	const out = "/work/attestation-policy.json"
	args := []string{"policy", "generate", "--kms-version", kmsVersion, "--profile", profile, "--tcb-status", csv(tcbStatus), "-o", out}
	args = append(args, repeated("measurements", paths)...)
	return m.runFile(ctx, ctr, out, args...)
}

// PolicyValidate checks attestation policies against the schema and the release rules.
//
// Registers must be 96 hex characters, the TCB allowlist non-empty, and several policies
// must be profile-isolated.
func (m *MeroRelease) PolicyValidate(
	ctx context.Context,
	// Policies to validate (default: the source's policies/attestation-policy-*.json).
	// +optional
	policies []*dagger.File,
	// Validate for a stable release: policy_not_ready is refused.
	// +optional
	stable bool,
) (string, error) {
	ctr, paths := withFiles(m.Container(), "policies", "json", policies)
	if len(paths) == 0 {
		paths = []string{"policies/attestation-policy-debug.json", "policies/attestation-policy-debug-read-only.json", "policies/attestation-policy-locked-read-only.json"}
	}
	args := append([]string{"policy", "validate"}, paths...)
	if stable {
		args = append(args, "--stable")
	}
	return m.run(ctx, ctr, args...)
}

// PolicyPromote promotes an rc policy to stable from verified measurements.
//
// The policy_not_ready flag is removed; empty or placeholder allowlists are refused.
func (m *MeroRelease) PolicyPromote(
	ctx context.Context,
	// The rc policy.
	policy *dagger.File,
	// published-mrtds.json of the verified node-image releases.
	// +optional
	measurements []*dagger.File,
) (*dagger.File, error) {
	ctr, in := withFile(m.Container(), "policy.json", policy)
	ctr, paths := withFiles(ctr, "measurements", "json", measurements)
	const out = "/work/attestation-policy.json"
	args := []string{"policy", "promote", in, "-o", out}
	args = append(args, repeated("measurements", paths)...)
	return m.runFile(ctx, ctr, out, args...)
}
