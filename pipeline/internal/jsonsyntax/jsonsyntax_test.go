package jsonsyntax

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckAccepts(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `"x"`, `1`, `null`, "\n {\"a\": [1, {\"b\": 2}], \"c\": {\"a\": 1}} \n",
		`{"a":{"k":1},"b":{"k":1}}`, // the same key in different objects
		`[{"k":1},{"k":2}]`,
	} {
		if err := Check([]byte(in)); err != nil {
			t.Errorf("Check(%q) = %v", in, err)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     []string
	}{
		{"empty", ``, []string{"empty file: want a JSON object"}},
		{"blank", " \n\t", []string{"empty file"}},
		{"not json", `hello`, []string{"line 1, column 1: invalid character 'h'"}},
		{"misplaced comma", "{\n  \"a\": [,]\n}", []string{"line 2, column 9: invalid character ','"}},
		{"missing comma", "{\n  \"a\": 1\n  \"b\": 2\n}", []string{"line 3, column 3: invalid character '\"' after object key:value pair"}},
		{"truncated", "{\"a\": 1,\n \"b\": [", []string{"line 2, column 8: unexpected end of JSON input"}},
		{"trailing value", `{"a":1} {}`, []string{"line 1, column 9: trailing data after the JSON value"}},
		{"trailing garbage", "{\"a\":1}\nx", []string{"line 2, column 1"}},
		{"duplicate top key", `{"a":1,"a":2}`, []string{`line 1, column 8: duplicate key "a" in the top-level object`}},
		{"duplicate nested key", "{\"e\":[{\"k\":1},\n {\"k\":1, \"k\":2}]}", []string{`line 2, column 10: duplicate key "k" in e[1]`}},
		{"duplicate deep key", `{"a":{"b":[0,{"c":{"d":1,"d":1}}]}}`, []string{`duplicate key "d" in a.b[1].c`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.in))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncd\n")
	for _, tt := range []struct {
		off       int64
		line, col int
	}{{0, 1, 1}, {1, 1, 2}, {3, 2, 1}, {4, 2, 2}, {6, 3, 1}, {99, 3, 1}} {
		if l, c := position(data, tt.off); l != tt.line || c != tt.col {
			t.Errorf("position(%d) = %d:%d, want %d:%d", tt.off, l, c, tt.line, tt.col)
		}
	}
}

// FuzzCheck: never panics; whatever it accepts is valid JSON, and whatever encoding/json
// rejects it rejects too, naming a line.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `[1,2`, `{"a":[{"b":1}]} x`, "", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data)
		if err == nil && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if err != nil && json.Valid(data) && !strings.Contains(err.Error(), "duplicate key") {
			t.Fatalf("rejected valid JSON %q without a duplicate key: %v", data, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "line ") && !strings.HasPrefix(err.Error(), "empty file") {
			t.Fatalf("error without a position: %v", err)
		}
	})
}
