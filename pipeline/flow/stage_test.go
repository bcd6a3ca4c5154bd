package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// stageLog records the stages that ran, in order.
type stageLog struct{ ran []string }

func (l *stageLog) stage(name string, err error) Stage {
	return Stage{Name: name, Run: func(context.Context) error {
		l.ran = append(l.ran, name)
		return err
	}}
}

func advisory(s Stage, adv bool) Stage {
	s.Advisory = func() bool { return adv }
	return s
}

func skipped(s Stage, reason string) Stage {
	s.Skip = func() string { return reason }
	return s
}

func TestRunStages(t *testing.T) {
	errBoom := outcome.VerificationErrorf("boom")
	errPlain := errors.New("disk on fire")
	type want struct {
		ran      []string
		statuses []Status
		details  []string
		err      string // substring of the returned error; "" means nil
		code     int
		logs     []string // lines the log must contain, in this order
		noLogs   []string // lines the log must not contain
	}
	tests := []struct {
		name   string
		stages func(l *stageLog) []Stage
		want   want
	}{
		{
			name: "all pass in order",
			stages: func(l *stageLog) []Stage {
				return []Stage{l.stage("a", nil), l.stage("b", nil), l.stage("c", nil)}
			},
			want: want{ran: []string{"a", "b", "c"}, statuses: []Status{StatusPass, StatusPass, StatusPass}, details: []string{"", "", ""},
				logs: []string{"[INFO] stage 1/3 a\n", "[PASS] stage a (", "[INFO] stage 2/3 b\n", "[INFO] stage 3/3 c\n", "[PASS] stage c ("}},
		},
		{
			name: "blocking failure stops the run",
			stages: func(l *stageLog) []Stage {
				return []Stage{l.stage("a", nil), l.stage("b", errBoom), l.stage("c", nil), skipped(l.stage("d", nil), "never asked")}
			},
			want: want{ran: []string{"a", "b"}, statuses: []Status{StatusPass, StatusFail, StatusNotRun, StatusNotRun}, details: []string{"", "boom", "", ""},
				err: "mero-kms-v1.3.0: stage b: boom", code: outcome.VerificationFailed,
				logs:   []string{"[INFO] stage 2/4 b\n", "[FAIL] stage b: boom\n"},
				noLogs: []string{"stage 3/4", "stage 4/4", "never asked"}},
		},
		{
			name: "a failure of a stage that is not advisory for this class blocks",
			stages: func(l *stageLog) []Stage {
				return []Stage{advisory(l.stage("a", errPlain), false), l.stage("b", nil)}
			},
			want: want{ran: []string{"a"}, statuses: []Status{StatusFail, StatusNotRun}, details: []string{"disk on fire", ""},
				err: "mero-kms-v1.3.0: stage a: disk on fire", code: outcome.General,
				logs: []string{"[FAIL] stage a: disk on fire\n"}, noLogs: []string{"[WARN]"}},
		},
		{
			name: "advisory failure warns and continues",
			stages: func(l *stageLog) []Stage {
				return []Stage{l.stage("a", nil), advisory(l.stage("e2e", errBoom), true), l.stage("c", nil)}
			},
			want: want{ran: []string{"a", "e2e", "c"}, statuses: []Status{StatusPass, StatusWarn, StatusPass}, details: []string{"", "boom", ""},
				logs:   []string{"[WARN] stage e2e failed, advisory for this release class: boom\n", "[INFO] stage 3/3 c\n", "[PASS] stage c ("},
				noLogs: []string{"[FAIL]"}},
		},
		{
			name: "an advisory stage that passes is a pass",
			stages: func(l *stageLog) []Stage {
				return []Stage{advisory(l.stage("a", nil), true)}
			},
			want: want{ran: []string{"a"}, statuses: []Status{StatusPass}, details: []string{""}, logs: []string{"[PASS] stage a ("}},
		},
		{
			name: "skip reasons are recorded and the stage does not run",
			stages: func(l *stageLog) []Stage {
				return []Stage{skipped(l.stage("a", errBoom), "already published"), skipped(l.stage("b", nil), ""), l.stage("c", nil)}
			},
			want: want{ran: []string{"b", "c"}, statuses: []Status{StatusSkip, StatusPass, StatusPass}, details: []string{"already published", "", ""},
				logs: []string{"[INFO] stage 1/3 a: skipped (already published)\n", "[INFO] stage 2/3 b\n"}},
		},
		{
			name: "no stages",
			stages: func(l *stageLog) []Stage {
				return nil
			},
			want: want{statuses: nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var l stageLog
			stages := tt.stages(&l)
			rep := &Report{Tag: "mero-kms-v1.3.0"}
			err := runStages(context.Background(), outcome.NewLogger(&buf), rep, stages)

			if !slices.Equal(l.ran, tt.want.ran) {
				t.Errorf("ran %v, want %v", l.ran, tt.want.ran)
			}
			if len(rep.Stages) != len(stages) {
				t.Fatalf("report has %d stages, want one per stage (%d): %+v", len(rep.Stages), len(stages), rep.Stages)
			}
			for i, r := range rep.Stages {
				if r.Name != stages[i].Name {
					t.Errorf("report stage %d is %q, want %q (order)", i, r.Name, stages[i].Name)
				}
				if r.Status != tt.want.statuses[i] {
					t.Errorf("stage %s: status %q, want %q", r.Name, r.Status, tt.want.statuses[i])
				}
				if r.Detail != tt.want.details[i] {
					t.Errorf("stage %s: detail %q, want %q", r.Name, r.Detail, tt.want.details[i])
				}
				if r.Seconds < 0 || (r.Status != StatusPass && r.Status != StatusFail && r.Status != StatusWarn && r.Seconds != 0) {
					t.Errorf("stage %s (%s): seconds %v", r.Name, r.Status, r.Seconds)
				}
			}
			if rep.Seconds < 0 {
				t.Errorf("report seconds %v", rep.Seconds)
			}
			switch {
			case tt.want.err == "" && err != nil:
				t.Fatalf("runStages: %v", err)
			case tt.want.err != "":
				if err == nil {
					t.Fatalf("runStages succeeded, want %q", tt.want.err)
				}
				if err.Error() != tt.want.err {
					t.Errorf("error %q, want %q", err, tt.want.err)
				}
				if got := outcome.Code(err); got != tt.want.code {
					t.Errorf("exit code %d, want %d", got, tt.want.code)
				}
			}
			log := buf.String()
			at := 0
			for _, line := range tt.want.logs {
				i := strings.Index(log[at:], line)
				if i < 0 {
					t.Errorf("log lacks %q after offset %d:\n%s", line, at, log)
					continue
				}
				at += i + len(line)
			}
			for _, line := range tt.want.noLogs {
				if strings.Contains(log, line) {
					t.Errorf("log contains %q:\n%s", line, log)
				}
			}
		})
	}
}

// TestRunStagesWrapsTheStageError proves the stage's error stays reachable through the wrap
// (errors.Is and the exit code kinds).
func TestRunStagesWrapsTheStageError(t *testing.T) {
	sentinel := errors.New("sentinel")
	for _, inner := range []error{
		sentinel,
		outcome.MissingAssetErrorf("asset gone: %w", sentinel),
	} {
		rep := &Report{Tag: "mero-tee-v1.0.0"}
		err := runStages(context.Background(), nil, rep, []Stage{{Name: "x", Run: func(context.Context) error { return inner }}})
		if !errors.Is(err, sentinel) {
			t.Errorf("%v does not wrap the stage's error", err)
		}
		if got, want := outcome.Code(err), outcome.Code(inner); got != want {
			t.Errorf("exit code %d, want the stage's %d", got, want)
		}
	}
}

// TestRunStagesAdvisoryButCancelled: a failure after the context was cancelled is not an
// advisory finding but the end of the run.
func TestRunStagesAdvisoryButCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var l stageLog
	stages := []Stage{
		advisory(Stage{Name: "e2e", Run: func(ctx context.Context) error {
			l.ran = append(l.ran, "e2e")
			cancel()
			return ctx.Err()
		}}, true),
		l.stage("publish", nil),
	}
	rep := &Report{Tag: "mero-kms-v1.3.0-rc.1"}
	err := runStages(ctx, nil, rep, stages)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if !slices.Equal(l.ran, []string{"e2e"}) {
		t.Errorf("ran %v: publish must not run after a cancellation", l.ran)
	}
	if got := []Status{rep.Stages[0].Status, rep.Stages[1].Status}; !slices.Equal(got, []Status{StatusFail, StatusNotRun}) {
		t.Errorf("statuses %v, want [fail not-run]", got)
	}
}

// TestReportJSON pins the shape of report.json (testdata/report.golden.json).
func TestReportJSON(t *testing.T) {
	rep := &Report{
		Tag: "mero-kms-v1.3.0-rc.1", Class: "rc", Published: true, Seconds: 12.5,
		Stages: []StageResult{
			{Name: "version-sync", Status: StatusPass, Seconds: 0.25},
			{Name: "dependency-guard", Status: StatusSkip, Detail: "no counterpart release"},
			{Name: "e2e", Status: StatusWarn, Seconds: 3, Detail: "guardrail D failed"},
			{Name: "publish", Status: StatusFail, Seconds: 1, Detail: "store down"},
			{Name: "audit", Status: StatusNotRun},
		},
	}
	got, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("report JSON:\n%s\nwant (%s):\n%s", got, golden, want)
	}

	// class is omitted until the version stage classified the tag; published is always there
	empty, err := (&Report{Tag: "mero-tee-v1.0.0"}).JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(empty, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["class"]; ok {
		t.Errorf("an unclassified report has a class: %s", empty)
	}
	if m["published"] != false || m["tag"] != "mero-tee-v1.0.0" {
		t.Errorf("report %s", empty)
	}
	if !bytes.HasSuffix(empty, []byte("}\n")) {
		t.Errorf("report.json must end with a newline: %q", empty)
	}
}
