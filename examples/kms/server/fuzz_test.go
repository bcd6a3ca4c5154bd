package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// FuzzRequestBodies sends arbitrary bodies to every endpoint: the answer is never a 500 or a
// panic, always JSON, and every error carries a documented code with its documented status.
func FuzzRequestBodies(f *testing.F) {
	fx := newFixture(f, fixtureOpts{maxChallenges: 64})
	node := fx.boot(nodeImage(release.LockedReadOnly, ""))
	peer := newPeer(f, "fuzz-peer")
	ch, nonce := fx.challenge(peer.ID)
	valid, _ := json.Marshal(fx.getKeyRequest(node, peer, ch, nonce))
	for _, seed := range [][]byte{
		valid,
		[]byte(`{"peerId":"p"}`),
		[]byte(`{"nonceB64":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","bindingB64":"AQI="}`),
		[]byte(`{"challengeId":"x","quoteB64":"AAAA","peerId":"p","peerPublicKeyB64":"AAAA","signatureB64":"AAAA"}`),
		[]byte(`{"peerId":"p","peerId":"q"}`),
		[]byte(`{"a":`), []byte(`[]`), []byte(`"x"`), []byte("{}\x00"), nil,
	} {
		for ep := range 4 {
			f.Add(uint8(ep), seed)
		}
	}
	paths := []string{"/attest", "/challenge", "/get-key", "/health"}
	f.Fuzz(func(t *testing.T, ep uint8, body []byte) {
		path := paths[int(ep)%len(paths)]
		method := http.MethodPost
		if path == "/health" {
			method = http.MethodGet
		}
		code, resp := serve(fx.srv, method, path, body)
		if code >= 500 && code != 503 {
			t.Fatalf("%s %q: status %d %s", path, body, code, resp)
		}
		if code == http.StatusOK {
			if !json.Valid(resp) {
				t.Fatalf("%s: 200 with a non-JSON body %q", path, resp)
			}
			return
		}
		var e kmsclient.ErrorResponse
		dec := json.NewDecoder(bytes.NewReader(resp))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s %q: error body %q: %v", path, body, resp, err)
		}
		if kmsclient.StatusOf(e.Error) != code || e.Error == kmsclient.CodeInternal {
			t.Fatalf("%s %q: status %d with code %q", path, body, code, e.Error)
		}
	})
}
