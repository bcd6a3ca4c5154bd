package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// predicateTypes are the short names of --type, as cosign spells them.
var predicateTypes = map[string]string{"slsaprovenance1": provenance.PredicateType}

// attestationOutcome is `verify --json` for an attestation bundle.
type attestationOutcome struct {
	Bundle        string              `json:"bundle"`
	Verified      bool                `json:"verified"`
	PredicateType string              `json:"predicate_type,omitempty"`
	Signer        *sign.Result        `json:"signer,omitempty"`
	Subjects      []attestedSubject   `json:"subjects,omitempty"`
	Files         []attestationFileOK `json:"files,omitempty"`
	Error         string              `json:"error,omitempty"`
}

type attestedSubject struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

type attestationFileOK struct {
	File     string `json:"file"`
	SHA256   string `json:"sha256,omitempty"`
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
}

// verifyAttestation verifies a DSSE attestation bundle once (signature, signer, payload type,
// predicate type) and checks that each file is one of its subjects with the file's SHA-256.
// A missing file is exit 11; a file that is not a subject, or whose digest differs, exit 10.
func (a *app) verifyAttestation(cmd *cobra.Command, bundlePath string, bundleJSON []byte, files []string, predicateType string, trusted root.TrustedMaterial, policy sign.Policy) error {
	out := attestationOutcome{Bundle: bundlePath}
	if t, ok := predicateTypes[predicateType]; ok {
		predicateType = t
	}
	att, err := provenance.Verify(cmd.Context(), sign.NewVerifier(trusted), bundleJSON, policy)
	if err == nil && predicateType != "" && att.Statement.GetPredicateType() != predicateType {
		err = outcome.VerificationErrorf("predicate type is %q, want %q", att.Statement.GetPredicateType(), predicateType)
	}
	if err != nil {
		a.log.Failf("%s: %v", bundlePath, err)
		out.Error = err.Error()
		if a.json {
			if perr := a.printJSON(out); perr != nil {
				return perr
			}
		}
		return reported(err)
	}
	out.Signer, out.PredicateType = &att.Signer.Result, att.Statement.GetPredicateType()
	for _, s := range att.Statement.GetSubject() {
		out.Subjects = append(out.Subjects, attestedSubject{Name: s.GetName(), SHA256: s.GetDigest()["sha256"]})
	}
	who := att.Signer.Identity
	if who == "" {
		who = "key " + att.Signer.KeyHint
	}
	a.log.Passf("%s: in-toto attestation (%s) signed by %s, %d subjects", bundlePath, out.PredicateType, who, len(out.Subjects))
	if len(files) == 0 {
		for _, s := range out.Subjects {
			a.log.Infof("subject %s sha256:%s", s.Name, s.SHA256)
		}
	}
	var errs []error
	for _, file := range files {
		r := attestationFileOK{File: file}
		sum, err := fileSHA256(file)
		if err == nil {
			r.SHA256 = sum
			err = att.CheckFile(file, sum)
		}
		if err != nil {
			r.Error = err.Error()
			errs = append(errs, err)
			a.log.Failf("%v", err)
		} else {
			r.Verified = true
			a.log.Passf("%s: a subject of the attestation (sha256:%s)", file, sum)
		}
		out.Files = append(out.Files, r)
	}
	err = errors.Join(errs...)
	out.Verified = err == nil
	if a.json {
		if perr := a.printJSON(out); perr != nil {
			return perr
		}
	}
	return reported(err)
}

// fileSHA256 hashes a file; a missing one is exit 11.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", outcome.MissingAssetErrorf("%s: file not found", path)
	}
	if err != nil {
		return "", fmt.Errorf("verify %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("verify %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
