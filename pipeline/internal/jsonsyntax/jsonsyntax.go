// Package jsonsyntax checks the syntax of the JSON files the pipeline reads (the compatibility
// catalog, attestation policies) before they are decoded: exactly one well-formed value, no
// duplicate object keys, nothing after it, every error naming its line and column.
package jsonsyntax

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Check checks that data is exactly one well-formed JSON value with no duplicate object keys
// and nothing after it. Errors carry the line and column (1-based, in bytes) of the problem
// and, for duplicate keys, the JSON path of the object ("a.b[2]", or "the top-level object").
func Check(data []byte) error {
	type frame struct {
		obj     bool
		path    string
		keys    map[string]bool
		wantKey bool
		index   int
		key     string
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	child := func() string { // the path of the value about to be read
		if len(stack) == 0 {
			return ""
		}
		top := stack[len(stack)-1]
		if top.obj {
			if top.path == "" {
				return top.key
			}
			return top.path + "." + top.key
		}
		return top.path + "[" + strconv.Itoa(top.index) + "]"
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		top := stack[len(stack)-1]
		if top.obj {
			top.wantKey = true
		} else {
			top.index++
		}
	}
	for done := false; !done; {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(data, off, err)
		}
		if len(stack) > 0 && stack[len(stack)-1].obj && stack[len(stack)-1].wantKey {
			top := stack[len(stack)-1]
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				done = len(stack) == 0
				continue
			}
			key, _ := tok.(string) // the decoder guarantees a string here
			if top.keys[key] {
				line, col := position(data, skipSeparators(data, off))
				where := top.path
				if where == "" {
					where = "the top-level object"
				}
				return fmt.Errorf("line %d, column %d: duplicate key %q in %s", line, col, key, where)
			}
			top.keys[key] = true
			top.key = key
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, path: child(), keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: child()})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
			done = len(stack) == 0
		default:
			valueDone()
			done = len(stack) == 0
		}
	}
	off := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		line, col := position(data, skipSeparators(data, off))
		return fmt.Errorf("line %d, column %d: trailing data after the JSON value", line, col)
	}
	return nil
}

// syntaxError turns a decoder error into one that names the line and column. The streaming
// decoder's offsets are not uniform across error paths, so the position comes from
// json.Unmarshal's scanner, whose Offset always counts the offending byte.
func syntaxError(data []byte, off int64, err error) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty file: want a JSON object")
	}
	var v any
	uerr := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(uerr, &se) {
		at := se.Offset
		if at >= int64(len(data)) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			at = int64(len(data))
		} else if at > 0 {
			at--
		}
		line, col := position(data, at)
		return fmt.Errorf("line %d, column %d: %v", line, col, se)
	}
	line, col := position(data, off)
	return fmt.Errorf("line %d, column %d: %v", line, col, err)
}

// skipSeparators advances off over whitespace, commas and colons to the next token.
func skipSeparators(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// position converts a byte offset into a 1-based line and column (in bytes).
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
