package gcp_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/calimero-network/mero-release/pipeline/gcp"
	"github.com/calimero-network/mero-release/pipeline/gcp/gcptest"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// reportDataQuoter is what e2e.ReportDataQuoter asks of a GCP instance.
type reportDataQuoter interface {
	QuoteReportData(ctx context.Context, reportData [64]byte) ([]byte, error)
}

// TestQuoteReportData asks a running VM for quotes over chosen report data: each request is a
// new mero-tee-quote-request in the instance metadata (setMetadata with the current
// fingerprint, retried once it went stale), answered in guest attributes.
func TestQuoteReportData(t *testing.T) {
	f := newFixture(t, gcp.Config{})
	s := testSpec("mero-e2e-requests-1", release.Debug)
	// Change the metadata behind the provider's back once, between its read and its write: the
	// first setMetadata then carries a stale fingerprint (412) and is retried.
	var once sync.Once
	f.srv.OnRequest(func(r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/setMetadata") {
			once.Do(func() {
				inst := f.srv.Instance(s.Name)
				inst.Metadata.Fingerprint = ptr("changed-by-someone-else")
				f.srv.AddInstance(inst)
			})
		}
	})
	err := vm.WithVM(context.Background(), f.p, s, func(ctx context.Context, inst vm.Instance) error {
		q, ok := inst.(reportDataQuoter)
		if !ok {
			t.Fatal("GCP instances do not quote caller-chosen report data")
		}
		for i := range 2 {
			var rd [64]byte
			rd[0], rd[63] = byte(i+1), 0xee
			raw, err := q.QuoteReportData(ctx, rd)
			if err != nil {
				return err
			}
			quote, err := tdx.ParseQuote(raw)
			if err != nil {
				return err
			}
			if err := quote.Verify(tdx.VerifyOptions{TrustedRoots: f.auth.RootPool()}); err != nil {
				return err
			}
			if quote.ReportData != rd {
				t.Errorf("request %d: report data %x", i, quote.ReportData)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.assertNoneLeft(t)
	var sets, stale int
	for _, r := range f.srv.Requests() {
		if strings.HasSuffix(r, "/setMetadata") {
			sets++
		}
	}
	stale = sets - 2
	if stale != 1 {
		t.Errorf("%d setMetadata requests for 2 quote requests; want one retry after the stale fingerprint", sets)
	}
}

func TestQuoteReportDataFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		faults gcptest.Faults
		agent  gcptest.Agent
		want   string
	}{
		"setMetadata refused": {faults: gcptest.Faults{SetMetadataStatus: 403}, want: "send quote request"},
		"agent reports an error": {agent: func(inst *computepb.Instance) map[string]string {
			req, _ := gcptest.Metadata(inst, gcp.MetadataQuoteRequest)
			id, _, _ := strings.Cut(req, ":")
			return map[string]string{"tdx-quote": "AAAA", "quote-" + id + "-error": "configfs-tsm: EIO"}
		}, want: "-error: configfs-tsm: EIO"},
		"agent never answers": {agent: func(*computepb.Instance) map[string]string { return map[string]string{"tdx-quote": "AAAA"} },
			want: "does the image run mero-tee-agent"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, gcp.Config{QuoteTimeout: 200 * time.Millisecond})
			if tc.agent != nil {
				f.srv.SetAgent(tc.agent)
			}
			s := testSpec("mero-e2e-fail-1", release.Debug)
			err := vm.WithVM(context.Background(), f.p, s, func(ctx context.Context, inst vm.Instance) error {
				f.srv.SetFaults(tc.faults)
				_, err := inst.(reportDataQuoter).QuoteReportData(ctx, [64]byte{1})
				f.srv.SetFaults(gcptest.Faults{})
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			f.assertNoneLeft(t)
		})
	}
}
