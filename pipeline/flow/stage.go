// Package flow composes the stages of the two release pipelines (SPEC §3) in their order, with the
// class rules of pipeline/release deciding which stages block and which are advisory. Like
// GoReleaser's pipes, a pipeline is an ordered list of small stages, each with a name, a reason to
// skip and a run; the rules themselves live in the stage and domain packages this one calls.
package flow

import (
	"context"
	"encoding/json"

	"fmt"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Stage is one step of a pipeline.
type Stage struct {
	// Name is shown in the log and the report, e.g. "measure".
	Name string
	// Skip returns why the stage does not run this time, or "" to run it (nil: always runs).
	Skip func() string
	// Advisory returns true when a failure must be reported but must not stop the release
	// (e.g. E2E of a release candidate); nil means blocking.
	Advisory func() bool
	// Run does the work.
	Run func(ctx context.Context) error
}

// Status is the outcome of a stage.
type Status string

// Stage outcomes.
const (
	StatusPass Status = "pass"
	StatusFail Status = "fail"
	// StatusWarn is an advisory stage that failed.
	StatusWarn Status = "warn"
	StatusSkip Status = "skip"
	// StatusNotRun is a stage after a blocking failure.
	StatusNotRun Status = "not-run"
)

// StageResult is one line of the report.
type StageResult struct {
	Name    string  `json:"name"`
	Status  Status  `json:"status"`
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail,omitempty"`
}

// Report is what a pipeline run did, stage by stage.
type Report struct {
	Tag       string `json:"tag"`
	Class     string `json:"class,omitempty"`
	Published bool   `json:"published"`
	// FollowUp names the release that must follow this one (a node image whose measurements
	// no published KMS policy holds yet: the KMS release with the updated policies).
	FollowUp string        `json:"follow_up,omitempty"`
	Stages   []StageResult `json:"stages"`
	// Seconds is the wall time of the run.
	Seconds float64 `json:"seconds"`
}

// JSON marshals the report.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return append(b, '\n'), nil
}

// runStages runs the stages in order. A blocking failure stops the run (later stages are
// reported as not run) and is returned; an advisory failure is logged as [WARN] and recorded.
func runStages(ctx context.Context, log *outcome.Logger, report *Report, stages []Stage) error {
	start := time.Now()
	defer func() { report.Seconds = time.Since(start).Seconds() }()
	for i, s := range stages {
		if reason := skipReason(s); reason != "" {
			log.Infof("stage %d/%d %s: skipped (%s)", i+1, len(stages), s.Name, reason)
			report.Stages = append(report.Stages, StageResult{Name: s.Name, Status: StatusSkip, Detail: reason})
			continue
		}
		log.Infof("stage %d/%d %s", i+1, len(stages), s.Name)
		t0 := time.Now()
		err := s.Run(ctx)
		res := StageResult{Name: s.Name, Status: StatusPass, Seconds: time.Since(t0).Seconds()}
		if err == nil {
			log.Passf("stage %s (%.1fs)", s.Name, res.Seconds)
			report.Stages = append(report.Stages, res)
			continue
		}
		res.Detail = err.Error()
		if s.Advisory != nil && s.Advisory() && ctx.Err() == nil {
			res.Status = StatusWarn
			log.Warnf("stage %s failed, advisory for this release class: %v", s.Name, err)
			report.Stages = append(report.Stages, res)
			continue
		}
		res.Status = StatusFail
		log.Failf("stage %s: %v", s.Name, err)
		report.Stages = append(report.Stages, res)
		for _, rest := range stages[i+1:] {
			report.Stages = append(report.Stages, StageResult{Name: rest.Name, Status: StatusNotRun})
		}
		return fmt.Errorf("%s: stage %s: %w", report.Tag, s.Name, err)
	}
	return nil
}

func skipReason(s Stage) string {
	if s.Skip == nil {
		return ""
	}
	return s.Skip()
}
