package outcome

import (
	"bytes"
	"testing"
)

func TestAdvisoryLoggerTurnsFailuresIntoWarnings(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf)
	a := l.Advisory()
	a.Passf("catalog pair: %s", "listed")
	a.Failf("catalog pair: %s", "not listed")
	a.Infof("done")
	l.Failf("blocking: %d", 1)
	want := "[PASS] catalog pair: listed\n" +
		"[WARN] advisory: catalog pair: not listed\n" +
		"[INFO] done\n" +
		"[FAIL] blocking: 1\n"
	if got := buf.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestNilLoggerDiscards(t *testing.T) {
	var l *Logger
	l.Advisory().Failf("nothing %d", 1) // must not panic
	NewLogger(nil).Advisory().Failf("nothing %d", 2)
}
