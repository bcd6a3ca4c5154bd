package outcome

import (
	"fmt"
	"io"
	"sync"
)

// Level is one of the five log prefixes of SPEC §9.
type Level string

// The log levels, printed as "[LEVEL] message".
const (
	LevelInfo  Level = "INFO"
	LevelWarn  Level = "WARN"
	LevelError Level = "ERROR"
	LevelPass  Level = "PASS"
	LevelFail  Level = "FAIL"
)

// Logger writes SPEC §9 log lines. It is safe for concurrent use; a nil *Logger discards.
type Logger struct {
	mu  sync.Mutex
	out io.Writer
	// parent is set on an advisory logger: it writes through its parent, failed checks as warnings.
	parent *Logger
}

// NewLogger returns a Logger writing to w.
func NewLogger(w io.Writer) *Logger { return &Logger{out: w} }

// Advisory returns a logger writing to the same output on which a failed check is a warning:
// "[WARN] advisory: …" instead of "[FAIL] …". It is for the checks a release class reports but does
// not block on (an rc's dependency guard or E2E), so that a successful run prints no [FAIL] line;
// the checks' reports keep their failures.
func (l *Logger) Advisory() *Logger {
	if l == nil {
		return nil
	}
	return &Logger{parent: l}
}

// Logf writes one line with the given level.
func (l *Logger) Logf(level Level, format string, args ...any) {
	if l == nil {
		return
	}
	if l.parent != nil {
		if level == LevelFail {
			level, format = LevelWarn, "advisory: "+format
		}
		l.parent.Logf(level, format, args...)
		return
	}
	if l.out == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.out, "[%s] %s\n", level, fmt.Sprintf(format, args...))
}

// Infof logs progress.
func (l *Logger) Infof(format string, args ...any) { l.Logf(LevelInfo, format, args...) }

// Warnf logs a non-fatal issue.
func (l *Logger) Warnf(format string, args ...any) { l.Logf(LevelWarn, format, args...) }

// Errorf logs a fatal error.
func (l *Logger) Errorf(format string, args ...any) { l.Logf(LevelError, format, args...) }

// Passf logs a passed check.
func (l *Logger) Passf(format string, args ...any) { l.Logf(LevelPass, format, args...) }

// Failf logs a failed check.
func (l *Logger) Failf(format string, args ...any) { l.Logf(LevelFail, format, args...) }
