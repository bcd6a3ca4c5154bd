package policy

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// FuzzLoad: Load never panics, every refusal is a verification error, and whatever loads
// marshals to a canonical file that loads back to the same policy and marshals identically.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"locked-read-only.golden.json", "not-ready.golden.json", "promoted.golden.json"} {
		data, err := os.ReadFile(testdata(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"schema_version":"1","kms_version":"1.0.0","profile":"debug","status":"policy_not_ready","allowed_tcb_status":["UpToDate","OutOfDate"],"allowed_mrtd":[],"allowed_rtmr0":[],"allowed_rtmr1":[],"allowed_rtmr2":[],"allowed_rtmr3":[],"node_versions":["1.0.0-rc.1"]}`))
	f.Add([]byte(`{"allowed_mrtd":[1,{"a":[]}],"allowed_mrtd":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load(bytes.NewReader(data))
		if err != nil {
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Fatalf("refusal with exit code %d: %v", outcome.Code(err), err)
			}
			return
		}
		first, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Load(bytes.NewReader(first))
		if err != nil {
			t.Fatalf("the marshalled policy does not load: %v\n%s", err, first)
		}
		if !reflect.DeepEqual(p.normalized(), again) {
			t.Fatalf("reload changed the policy:\n%+v\n%+v", p.normalized(), again)
		}
		if second, _ := again.Marshal(); !bytes.Equal(first, second) {
			t.Fatalf("marshal not stable:\n%s\n%s", first, second)
		}
	})
}

// FuzzAccepts: Accepts never panics on any measurement or TCB string, and a ready policy
// accepts exactly the values it lists (hex case aside).
func FuzzAccepts(f *testing.F) {
	f.Add(reg("a"), reg("b"), "UpToDate")
	f.Add(record("1.2.0", "debug").MRTD, record("1.2.0", "debug").RTMR2, "UpToDate")
	f.Add("", "zz", "Revoked")
	f.Fuzz(func(t *testing.T, mrtd, rtmr, tcb string) {
		n := node("1.2.0", "debug")
		p := mustGenerate(t, "1.2.0", "debug", n)
		r := n.Profiles["debug"]
		r.MRTD, r.RTMR2 = mrtd, rtmr
		own := n.Profiles["debug"]
		want := tcb == TCBUpToDate && strings.ToLower(mrtd) == own.MRTD && strings.ToLower(rtmr) == own.RTMR2
		if err := p.Accepts(r, tcb); (err == nil) != want {
			t.Fatalf("Accepts(mrtd %q, rtmr2 %q, tcb %q) = %v, want accepted %v", mrtd, rtmr, tcb, err, want)
		}
	})
}
