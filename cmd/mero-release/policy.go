package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// policyCommand is `mero-release policy`: generate, validate and promote attestation policies.
func (a *app) policyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Generate, validate and promote the KMS attestation policies (attestation-policy-{profile}.json)",
	}
	c.AddCommand(a.policyGenerateCommand(), a.policyValidateCommand(), a.policyPromoteCommand())
	return c
}

// policyReadMeasurements reads node releases' published-mrtds.json files. It returns nil for
// no paths. An unreadable file is a general error; a bad one is logged as [FAIL].
func (a *app) policyReadMeasurements(paths []string) ([]*measure.Published, error) {
	var nodes []*measure.Published
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read measurements: %w", err)
		}
		p, err := measure.ReadPublished(f)
		f.Close()
		if err != nil {
			err = fmt.Errorf("%s: %w", path, err)
			a.log.Failf("%v", err)
			return nil, reported(err)
		}
		nodes = append(nodes, p)
	}
	return nodes, nil
}

// policyOutput writes a policy to the -o file (atomically) or to stdout.
func (a *app) policyOutput(p *policy.Policy, out string) error {
	if out == "" {
		data, err := p.Marshal()
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(data)
		return err
	}
	return p.WriteFile(out)
}

// policyDescribe is a one-line summary for log lines.
func policyDescribe(p *policy.Policy) string {
	state := "ready"
	if p.NotReady() {
		state = policy.StatusNotReady
	}
	s := fmt.Sprintf("profile %s, kms %s, %s, %d MRTD value(s)", p.Profile, p.KMSVersion, state, len(p.AllowedMRTD))
	if len(p.NodeVersions) > 0 {
		s += ", from node image(s) " + strings.Join(p.NodeVersions, ", ")
	}
	return s
}

func (a *app) policyGenerateCommand() *cobra.Command {
	var kms, profile, out string
	var measurements, tcb []string
	c := &cobra.Command{
		Use:   "generate --kms-version V --profile P [--measurements published-mrtds.json]… [--tcb-status S,…] [-o FILE]",
		Short: "Generate one profile's attestation policy from node releases' published-mrtds.json",
		Long: `Generate the attestation policy of one profile: each allowlist is the union of the profile's
measurements across the given node-image releases. Without measurements for the profile the
policy is "policy_not_ready" (allowed for release candidates only). --kms-version and --profile
default to $MERO_KMS_VERSION and $MERO_KMS_PROFILE. The policy goes to stdout unless -o is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kms, profile := a.envOr(kms, "MERO_KMS_VERSION"), a.envOr(profile, "MERO_KMS_PROFILE")
			if kms == "" || profile == "" {
				return outcome.UsageErrorf("policy generate: --kms-version and --profile are required (or MERO_KMS_VERSION and MERO_KMS_PROFILE)")
			}
			prof, err := release.ParseProfile(profile)
			if err != nil {
				return outcome.UsageErrorf("--profile: %w", err)
			}
			nodes, err := a.policyReadMeasurements(measurements)
			if err != nil {
				return err
			}
			p, err := policy.Generate(kms, prof, nodes, tcb)
			if err != nil {
				if outcome.Code(err) == outcome.VerificationFailed {
					a.log.Failf("%v", err)
					return reported(err)
				}
				return err
			}
			if err := a.policyOutput(p, out); err != nil {
				return err
			}
			if p.NotReady() {
				a.log.Warnf("no measurements for profile %s: the policy is %s (release candidates only)", prof, policy.StatusNotReady)
			}
			a.log.Passf("generated %s (%s), sha256 %s", prof.PolicyFile(), policyDescribe(p), p.SHA256())
			return nil
		},
	}
	c.Flags().StringVar(&kms, "kms-version", "", "KMS version X.Y.Z[-rc.N] (default $MERO_KMS_VERSION)")
	c.Flags().StringVar(&profile, "profile", "", "profile: "+strings.Join(release.ProfileNames(), ", ")+" (default $MERO_KMS_PROFILE)")
	c.Flags().StringArrayVar(&measurements, "measurements", nil, "a node release's published-mrtds.json (repeatable)")
	c.Flags().StringSliceVar(&tcb, "tcb-status", nil, "accepted TCB statuses, comma-separated (default UpToDate)")
	c.Flags().StringVarP(&out, "output", "o", "", "write the policy to FILE instead of stdout")
	return c
}

// policyFileResult is one file's outcome in `policy validate --json`.
type policyFileResult struct {
	File       string `json:"file"`
	Valid      bool   `json:"valid"`
	Profile    string `json:"profile,omitempty"`
	KMSVersion string `json:"kms_version,omitempty"`
	NotReady   bool   `json:"not_ready,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	Canonical  bool   `json:"canonical,omitempty"`
	Error      string `json:"error,omitempty"`
}

func (a *app) policyValidateCommand() *cobra.Command {
	var stable bool
	c := &cobra.Command{
		Use:   "validate FILE... [--stable]",
		Short: "Validate attestation policies (schema, fields, TCB statuses); several files are also checked as a set",
		Long: `Validate attestation policy files against the JSON Schema and the policy rules. With
--stable, policy_not_ready and placeholder measurements are refused (stable and hotfix
releases). Given several files, they are also checked together: one KMS version, one file per
profile, and profile isolation (no node accepted by two profiles' ready policies).
The sha256 printed is the file's, for MERO_KMS_POLICY_SHA256.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			var results []policyFileResult
			set := map[release.Profile]*policy.Policy{}
			setOK := true
			for _, path := range args {
				res, p, err := a.policyValidateFile(path, stable)
				results = append(results, res)
				if err != nil {
					errs = append(errs, err)
					setOK = false
					continue
				}
				if _, dup := set[p.Profile]; dup {
					err := outcome.VerificationErrorf("%s: a second policy for profile %s (one file per profile)", path, p.Profile)
					a.log.Failf("%v", err)
					errs = append(errs, err)
					setOK = false
					continue
				}
				set[p.Profile] = p
			}
			var setResult map[string]any
			if len(args) > 1 && setOK {
				if err := policy.ValidateSet(set); err != nil {
					for _, e := range policySplit(err) {
						a.log.Failf("%v", e)
					}
					errs = append(errs, err)
					setResult = map[string]any{"valid": false, "error": err.Error()}
				} else {
					note := "profiles isolated"
					for _, p := range set {
						if p.NotReady() {
							note = "ready profiles isolated (policy_not_ready policies accept any node and are not compared)"
							break
						}
					}
					a.log.Passf("policy set: %d profiles, one KMS version, %s", len(set), note)
					setResult = map[string]any{"valid": true}
				}
			}
			if a.json {
				if err := a.printJSON(map[string]any{"files": results, "set": setResult, "valid": len(errs) == 0}); err != nil {
					return err
				}
			}
			return reported(errors.Join(errs...))
		},
	}
	c.Flags().BoolVar(&stable, "stable", false, "refuse policy_not_ready and placeholder values (stable and hotfix releases)")
	return c
}

// policySplit returns the errors joined in err, or err itself.
func policySplit(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}

// policyValidateFile checks one file and logs its [PASS]/[FAIL] (or [ERROR]) line.
func (a *app) policyValidateFile(path string, stable bool) (policyFileResult, *policy.Policy, error) {
	res := policyFileResult{File: path}
	fail := func(err error) (policyFileResult, *policy.Policy, error) {
		res.Error = err.Error()
		if outcome.Code(err) == outcome.VerificationFailed {
			a.log.Failf("%v", err)
		} else {
			a.log.Errorf("%v", err)
		}
		return res, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fail(fmt.Errorf("read attestation policy: %w", err))
	}
	p, err := policy.Load(bytes.NewReader(data))
	if err == nil {
		err = policy.Validate(p, policy.ValidateOptions{RequireReady: stable})
	}
	if err == nil {
		err = policy.CheckFileName(path, p)
	}
	if err != nil {
		return fail(fmt.Errorf("%s: %w", path, err))
	}
	sum := sha256.Sum256(data)
	canonical, _ := p.Marshal()
	res.Valid, res.Profile, res.KMSVersion, res.NotReady = true, string(p.Profile), p.KMSVersion, p.NotReady()
	res.SHA256, res.Canonical = hex.EncodeToString(sum[:]), bytes.Equal(canonical, data)
	if p.NotReady() {
		a.log.Warnf("%s: %s: the KMS will accept any measurement (release candidates only)", path, policy.StatusNotReady)
	}
	if !res.Canonical {
		a.log.Infof("%s: not in canonical form; `mero-release policy promote` and `generate` write canonical files", path)
	}
	a.log.Passf("%s: valid attestation policy (%s), sha256 %s", path, policyDescribe(p), res.SHA256)
	return res, p, nil
}

func (a *app) policyPromoteCommand() *cobra.Command {
	var measurements []string
	var out string
	c := &cobra.Command{
		Use:   "promote FILE [--measurements published-mrtds.json]… [-o FILE]",
		Short: "Promote a release-candidate policy to a final one (verified measurements, no policy_not_ready)",
		Long: `Promote an attestation policy: the allowlists are regenerated from the given node releases'
verified published-mrtds.json (or kept when no --measurements is given), the policy_not_ready
status is removed, and empty or placeholder allowlists are refused. The result goes to stdout
unless -o is given (which may be FILE itself; it is replaced atomically).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.LoadFile(args[0])
			if err != nil {
				if outcome.Code(err) == outcome.VerificationFailed {
					a.log.Failf("%v", err)
					return reported(err)
				}
				return err
			}
			nodes, err := a.policyReadMeasurements(measurements)
			if err != nil {
				return err
			}
			promoted, err := policy.Promote(p, nodes)
			if err != nil {
				err = fmt.Errorf("%s: %w", args[0], err)
				a.log.Failf("%v", err)
				return reported(err)
			}
			if err := a.policyOutput(promoted, out); err != nil {
				return err
			}
			a.log.Passf("promoted %s (%s), sha256 %s", args[0], policyDescribe(promoted), promoted.SHA256())
			return nil
		},
	}
	c.Flags().StringArrayVar(&measurements, "measurements", nil, "a node release's verified published-mrtds.json (repeatable)")
	c.Flags().StringVarP(&out, "output", "o", "", "write the policy to FILE instead of stdout")
	return c
}
