package policy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/calimero-network/mero-release/policies"
)

// schemaID is the $id of policies/attestation-policy.schema.json.
const schemaID = "https://github.com/calimero-network/mero-release/policies/" + policies.SchemaFile

// hexPattern is the schema's pattern for a register value.
const hexPattern = "^[0-9a-f]{96}$"

// maxReported bounds how many schema violations one error lists.
const maxReported = 5

// compileSchema compiles the embedded schema. It is compiled per use (about a hundred
// microseconds, see BenchmarkLoad) so that the package keeps no state.
func compileSchema() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(policies.Schema))
	if err != nil {
		return nil, fmt.Errorf("attestation policy schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaID, doc); err != nil {
		return nil, fmt.Errorf("attestation policy schema: %w", err)
	}
	sch, err := c.Compile(schemaID)
	if err != nil {
		return nil, fmt.Errorf("attestation policy schema: %w", err)
	}
	return sch, nil
}

// validateSchema checks data (already known to be well-formed JSON) against the schema.
// The error lists the violations, each led by its JSON path, e.g. "allowed_rtmr2[1]: …".
func validateSchema(data []byte) error {
	sch, err := compileSchema()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	err = sch.Validate(doc)
	var ve *jsonschema.ValidationError
	if err == nil || !errors.As(err, &ve) {
		return err
	}
	var msgs []string
	for _, leaf := range leaves(ve) {
		for _, m := range describe(leaf) {
			if !slices.Contains(msgs, m) {
				msgs = append(msgs, m)
			}
		}
	}
	slices.Sort(msgs)
	if len(msgs) > maxReported {
		msgs = append(msgs[:maxReported], fmt.Sprintf("and %d more", len(msgs)-maxReported))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// leaves returns the innermost violations of a validation error tree.
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// jsonPath renders an instance location as field.sub[index].
func jsonPath(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// child joins a path and a field name.
func child(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// describe words one violation for a person editing the file (a missing or unknown property
// per field).
func describe(e *jsonschema.ValidationError) []string {
	printer := message.NewPrinter(language.English)
	path := jsonPath(e.InstanceLocation)
	at := path
	if at == "" {
		at = "(top level)"
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		var parts []string
		for _, m := range k.Missing {
			parts = append(parts, child(path, m)+": missing")
		}
		return parts
	case *kind.AdditionalProperties:
		var parts []string
		for _, p := range k.Properties {
			parts = append(parts, child(path, p)+": unknown field")
		}
		return parts
	case *kind.Pattern:
		if k.Want == hexPattern {
			return []string{fmt.Sprintf("%s: %q is not 96 lower-case hex characters (a SHA-384 register value)", at, k.Got)}
		}
		return []string{fmt.Sprintf("%s: %q is not a version X.Y.Z or X.Y.Z-rc.N", at, k.Got)}
	case *kind.MinItems:
		if path == "allowed_tcb_status" {
			return []string{"allowed_tcb_status: empty (list at least one accepted TCB status, e.g. UpToDate)"}
		}
		return []string{fmt.Sprintf("%s: empty; a ready policy (no \"status\": %q) must allow at least one value", at, StatusNotReady)}
	case *kind.UniqueItems:
		return []string{fmt.Sprintf("%s[%d]: duplicate of %s[%d]", path, k.Duplicates[1], path, k.Duplicates[0])}
	case *kind.Enum:
		if s, ok := k.Got.(string); ok && s == TCBRevoked {
			return []string{fmt.Sprintf("%s: %s is never allowed", at, TCBRevoked)}
		}
		var want []string
		for _, w := range k.Want {
			want = append(want, display(w))
		}
		return []string{fmt.Sprintf("%s: must be one of %s, got %s", at, strings.Join(want, ", "), display(k.Got))}
	case *kind.Const:
		return []string{fmt.Sprintf("%s: must be %s, got %s", at, display(k.Want), display(k.Got))}
	case *kind.Type:
		return []string{fmt.Sprintf("%s: must be %s, got %s", at, strings.Join(k.Want, " or "), k.Got)}
	}
	return []string{fmt.Sprintf("%s: %s", at, e.ErrorKind.LocalizedString(printer))}
}

// display formats an instance value for an error message.
func display(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case nil:
		return "null"
	default:
		return fmt.Sprint(v)
	}
}
