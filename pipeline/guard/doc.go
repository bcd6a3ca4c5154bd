// Package guard holds the four release guards of SPEC §4, each a plain function that the CLI,
// the Dagger module and the required checks call:
//
//   - VersionSync: the tag's version equals MERO_KMS_VERSION / MERO_TEE_VERSION.
//   - AllowedEnv: no workflow sets an ALLOWED_* variable (env: blocks or run: scripts).
//   - PRDocs: a PR that changes release files also changes documentation, and release notes
//     mention every new compatibility-catalog pair.
//   - Dependency: the KMS ↔ node counterpart release exists, the catalog lists the pair, and the
//     KMS policies only allow measurements the counterpart published.
//
// Guards return what they found and an error whose outcome kind gives the exit code: usage (2)
// for bad input, verification (10) when the guard blocks, missing asset (11) when a required
// release file is absent.
package guard
