package measure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// CanonicalJSON parses a JSON or YAML document and returns it as canonical JSON, the form
// dstack hashes an app-compose in (SPEC §11): object keys sorted recursively (by code point),
// no whitespace (separators "," and ":"), UTF-8 text unescaped. It is byte-for-byte what
// Python's json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes
// for the same document: strings escape only '"', '\\' and control characters (\n, \r, \t,
// \b, \f, else \u00xx); integers are written in decimal; other numbers as Python's repr of
// a float (1.0, 1e+16, 1e-05). name labels errors (a file name).
//
// Input that starts with '{' or '[' and is valid JSON is read as JSON (numbers keep their
// integer/float distinction: 1 and 1.0 differ); anything else as a single YAML document.
// Rejected, as not representable in JSON: invalid UTF-8, several YAML documents, non-string
// mapping keys, timestamps and binary scalars (quote them), NaN and infinities.
func CanonicalJSON(name string, data []byte) ([]byte, error) {
	v, err := parseDocument(name, data)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeCanonical(&buf, v, "$"); err != nil {
		return nil, outcome.UsageErrorf("%s: %v", name, err)
	}
	return buf.Bytes(), nil
}

// parseDocument decodes data as JSON (when it looks like JSON) or YAML into plain values:
// map[string]any, []any, string, bool, nil, json.Number, int/uint64/float64.
func parseDocument(name string, data []byte) (any, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, outcome.UsageErrorf("%s: not valid UTF-8", name)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, outcome.UsageErrorf("%s: empty document", name)
	}
	if (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(trimmed) {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, outcome.UsageErrorf("%s: %v", name, err)
		}
		return v, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var node yaml.Node
	if err := dec.Decode(&node); err != nil {
		return nil, outcome.UsageErrorf("%s: %v", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, outcome.UsageErrorf("%s: line %d: a second YAML document; want exactly one", name, extra.Line)
	}
	if err := checkYAMLNode(&node); err != nil {
		return nil, outcome.UsageErrorf("%s: %v", name, err)
	}
	var v any
	if err := node.Decode(&v); err != nil {
		return nil, outcome.UsageErrorf("%s: %v", name, err)
	}
	return v, nil
}

// checkYAMLNode rejects what JSON cannot carry, naming the line: non-string keys,
// timestamps, binary scalars.
func checkYAMLNode(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode && k.Tag != "!!str" && k.Tag != "!!merge" {
				return fmt.Errorf("line %d: mapping key %q is a %s, not a string; quote it", k.Line, k.Value, strings.TrimPrefix(k.Tag, "!!"))
			}
			if k.Kind != yaml.ScalarNode && k.Kind != yaml.AliasNode {
				return fmt.Errorf("line %d: a mapping key must be a string", k.Line)
			}
		}
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!timestamp", "!!binary":
			return fmt.Errorf("line %d: %q is a YAML %s; quote it to keep it a string", n.Line, n.Value, strings.TrimPrefix(n.Tag, "!!"))
		}
	}
	for _, c := range n.Content {
		if err := checkYAMLNode(c); err != nil {
			return err
		}
	}
	return nil
}

// writeCanonical writes v in canonical form; path names the position in errors ($.a[0].b).
func writeCanonical(buf *bytes.Buffer, v any, path string) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case string:
		writeString(buf, x)
	case json.Number:
		s, err := canonicalNumber(string(x))
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		buf.WriteString(s)
	case int:
		buf.WriteString(strconv.Itoa(x))
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		buf.WriteString(strconv.FormatUint(x, 10))
	case float64:
		s, err := pythonFloat(x)
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		buf.WriteString(s)
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		buf.WriteByte('{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := writeCanonical(buf, x[k], path+"."+k); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case map[any]any:
		return fmt.Errorf("%s: a mapping with non-string keys", path)
	case time.Time:
		return fmt.Errorf("%s: a timestamp; quote it", path)
	default:
		return fmt.Errorf("%s: unsupported value of type %T", path, v)
	}
	return nil
}

// writeString writes s as Python's json.dumps(ensure_ascii=False) does.
func writeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		case '\b':
			buf.WriteString(`\b`)
		case '\f':
			buf.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(buf, `\u%04x`, r)
			} else {
				buf.WriteRune(r)
			}
		}
	}
	buf.WriteByte('"')
}

// canonicalNumber renders a JSON number literal: an integer literal as a decimal integer
// (Python int), anything with a fraction or exponent as a Python float.
func canonicalNumber(lit string) (string, error) {
	if !strings.ContainsAny(lit, ".eE") {
		n, ok := new(big.Int).SetString(lit, 10)
		if !ok {
			return "", fmt.Errorf("number %q", lit)
		}
		return n.String(), nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return "", fmt.Errorf("number %q: %v", lit, err)
	}
	return pythonFloat(f)
}

// pythonFloat is Python's repr of a float: the shortest digits that round-trip, in fixed
// notation with at least one fractional digit when the decimal exponent is in [-4, 16),
// else in exponent notation with a sign and at least two exponent digits.
func pythonFloat(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%v is not a JSON number", f)
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, err := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if err != nil {
		return "", fmt.Errorf("format %v: %v", f, err)
	}
	if exp < -4 || exp >= 16 {
		return e, nil
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s, nil
}
