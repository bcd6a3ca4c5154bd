package flow

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// TestStagesAreSpans: with a tracer, every stage that runs is one span under the release's
// span (a skipped one has none, a failed one records its error); without one nothing changes.
func TestStagesAreSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	cfg := &Config{Tag: release.MustParseTag("mero-kms-v1.3.0"), WorkDir: t.TempDir(), Log: outcome.NewLogger(io.Discard), Tracer: tp.Tracer("test")}
	r := &run{cfg: cfg, report: &Report{Tag: cfg.Tag.String()}}
	ok := func(context.Context) error { return nil }
	stages := []Stage{{Name: "build-images", Run: ok}, {Name: "push-images", Skip: func() string { return "no registry" }, Run: ok},
		{Name: "e2e", Run: func(context.Context) error { return errors.New("guardrail C failed") }}, {Name: "publish", Run: ok}}
	if _, err := r.execute(context.Background(), stages); err == nil {
		t.Fatal("the failing stage did not fail the run")
	}
	spans := rec.Ended()
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	if want := []string{"build-images", "e2e", "release mero-kms-v1.3.0"}; !slices.Equal(names, want) {
		t.Fatalf("spans %v, want %v", names, want)
	}
	root := spans[2].SpanContext()
	for _, s := range spans[:2] {
		if s.Parent().SpanID() != root.SpanID() || s.SpanContext().TraceID() != root.TraceID() {
			t.Errorf("%s is not under the release's span", s.Name())
		}
	}
	if spans[1].Status().Code != codes.Error || spans[0].Status().Code == codes.Error {
		t.Errorf("statuses: %v, %v", spans[0].Status(), spans[1].Status())
	}
}
