package e2e_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// TestCandidatePolicies: a node whose measurements changed cannot pass against the KMS's
// published policies (blocked: the node suite and guardrail C fail on the MRTD mismatch); with
// candidate policies promoted from them plus the new measurements it passes, and guardrail C
// shows the published ones refusing it for a measurement mismatch.
func TestCandidatePolicies(t *testing.T) {
	w := &world{World: e2etest.New(t), log: &bytes.Buffer{}}
	n100 := w.AddNode(t, "1.0.0", nil)
	published := e2etest.Policies(t, "1.0.0", n100)
	w.AddKMS(t, "1.0.0", published)
	n101 := w.AddNode(t, "1.0.1", nil) // a hotfix image: other firmware and kernel
	w.catalog = e2etest.Catalog(t, [2]string{"1.0.0", "1.0.0"}, [2]string{"1.0.0", "1.0.1"})

	without := w.runPair(t, "1.0.0", "1.0.1", nil)
	if without.Passed || check(t, without, e2e.CheckNodeSuite).Status != e2e.Fail {
		t.Fatalf("a changed node passed against the published policies:\n%s", w.log)
	}
	if cs := check(t, without, e2e.CheckNodeSuite).Cases[0]; cs.ErrorCode != "PolicyViolation" || !strings.HasPrefix(cs.Details, "mrtd:") && !strings.Contains(cs.Details, "mrtd") {
		t.Errorf("node suite case without candidates: %+v", cs)
	}

	candidates := map[release.Profile][]byte{}
	for _, p := range release.Profiles() {
		c, err := policy.Promote(published[p], []*measure.Published{n100, n101})
		if err != nil {
			t.Fatal(err)
		}
		if candidates[p], err = c.Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	w.log.Reset()
	with := w.runPair(t, "1.0.0", "1.0.1", candidates)
	if !with.Passed {
		t.Fatalf("with candidate policies: %v\n%s", with.Err(), w.log)
	}
	c := check(t, with, e2e.CheckStalePolicy)
	if c.Status != e2e.Pass || len(c.Cases) != 2 {
		t.Fatalf("guardrail C: %+v", c)
	}
	if before := c.Cases[0]; !strings.Contains(before.Name, "published policy of mero-kms-v1.0.0") || before.ErrorCode != "PolicyViolation" {
		t.Errorf("stale case: %+v", before)
	}
	if after := c.Cases[1]; !strings.Contains(after.Name, "candidate policy of kms 1.0.0") || after.Status != e2e.Pass {
		t.Errorf("candidate case: %+v", after)
	}
}

// TestStalePolicyUnchangedMeasurements: a stable node release that measures as the rc the
// previous policy was made for has nothing stale to test: guardrail C skips and says why.
func TestStalePolicyUnchangedMeasurements(t *testing.T) {
	w := &world{World: e2etest.New(t), log: &bytes.Buffer{}}
	rc := w.AddNode(t, "1.0.0-rc.1", nil)
	w.AddKMS(t, "1.0.0-rc.1", e2etest.Policies(t, "1.0.0-rc.1", rc))
	// the stable publishes the rc's measurements (guardrail D, which compares them with what
	// the 1.0.0 image boots to, is not what this test is about)
	w.AddNode(t, "1.0.0", func(p *measure.Published) {
		for prof := range p.Profiles {
			p.Profiles[prof] = rc.Profiles[prof]
		}
	})
	w.AddKMS(t, "1.0.0", e2etest.Policies(t, "1.0.0", rc))
	w.catalog = e2etest.Catalog(t, [2]string{"1.0.0", "1.0.0"})
	rep := w.runPair(t, "1.0.0", "1.0.0", nil)
	c := check(t, rep, e2e.CheckStalePolicy)
	if c.Status != e2e.Skip || !strings.Contains(c.Details, "measures as node image 1.0.0-rc.1") {
		t.Errorf("guardrail C: %+v\n%s", c, w.log)
	}
}

func (w *world) runPair(t *testing.T, kmsV, nodeV string, candidates map[release.Profile][]byte) *e2e.Report {
	t.Helper()
	o := w.Options(kmsV, nodeV, w.catalog, outcome.NewLogger(w.log))
	o.CandidatePolicies = candidates
	rep, err := e2e.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if left := w.Provider.Running(); len(left) != 0 {
		t.Errorf("VMs left running: %v", left)
	}
	return rep
}
