// Package policies is the home of the attestation-policy JSON Schema (draft 2020-12) and of the
// repository's attestation-policy-{profile}.json files. pipeline/policy validates against the
// embedded schema; nothing else keeps a copy of it.
package policies

import _ "embed" // for go:embed

// Schema is the JSON Schema (draft 2020-12) of attestation-policy-{profile}.json. Treat it as
// read-only.
//
//go:embed attestation-policy.schema.json
var Schema []byte

// SchemaFile is the schema's file name in this folder; its $id ends with it.
const SchemaFile = "attestation-policy.schema.json"
