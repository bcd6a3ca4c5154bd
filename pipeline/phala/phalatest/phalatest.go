// Package phalatest is a Phala Cloud API server for tests: an httptest server on 127.0.0.1
// speaking the REST calls pipeline/phala makes, which "deploys" an app by handing its compose,
// compose hash and decrypted environment to a Runner — in the E2E tests, the real KMS
// executable started as a local process, so that probing the CVM probes a real KMS. Faults can
// be injected per call; the server counts created and deleted CVMs.
package phalatest

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/phala"
)

// App is a deployed app as the Runner receives it.
type App struct {
	AppID       string
	Name        string
	ComposeFile []byte // canonical JSON
	ComposeHash string
	Env         map[string]string
}

// Runner runs a deployed app and returns its public URL and how to stop it.
type Runner func(ctx context.Context, app App) (url string, stop func() error, err error)

// Faults inject failures: each counter fails that many calls (HTTP 500) before the call works.
type Faults struct {
	Provision, Create, Get, Start, Delete int
	// BootStopped makes new CVMs come up stopped, so that they need POST …/start.
	BootStopped bool
}

type app struct {
	App
	priv    *ecdh.PrivateKey
	status  string
	url     string
	stop    func() error
	created time.Time
	vmUUID  string
	hasVM   bool
	polls   int
}

// Server is the fake API. Its URL is Server.URL() (…/api/v1).
type Server struct {
	srv    *httptest.Server
	key    string
	runner Runner
	now    func() time.Time

	mu      sync.Mutex
	faults  Faults
	apps    map[string]*app
	creates int
	deletes int
	seq     int
}

// New starts the fake API accepting apiKey, deploying apps with runner.
func New(apiKey string, runner Runner) *Server {
	s := &Server{key: apiKey, runner: runner, apps: map[string]*app{}, now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/cvms/provision", s.provision)
	mux.HandleFunc("POST /api/v1/cvms", s.create)
	mux.HandleFunc("GET /api/v1/cvms", s.list)
	mux.HandleFunc("GET /api/v1/cvms/{id}", s.get)
	mux.HandleFunc("POST /api/v1/cvms/{id}/start", s.start)
	mux.HandleFunc("DELETE /api/v1/cvms/{id}", s.delete)
	s.srv = httptest.NewServer(s.auth(mux))
	return s
}

// URL is the API base URL, ending in /api/v1.
func (s *Server) URL() string { return s.srv.URL + "/api/v1" }

// Close deletes every CVM still running and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	for _, a := range s.apps {
		if a.stop != nil {
			_ = a.stop()
			a.stop = nil
		}
	}
	s.mu.Unlock()
	s.srv.Close()
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Counts returns how many CVMs were created, how many deleted, and how many exist now.
func (s *Server) Counts() (created, deleted, live int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		if a.hasVM {
			live++
		}
	}
	return s.creates, s.deletes, live
}

// AddLeftover records a CVM named name created at created, as a killed run leaves one (for
// sweeper tests).
func (s *Server) AddLeftover(name string, created time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("%040x", s.seq+1<<20)
	s.apps[id] = &app{App: App{AppID: id, Name: name}, status: phala.StatusRunning, created: created, hasVM: true, vmUUID: id}
	s.creates++
	return id
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("X-API-Key") != s.key:
			writeDetail(w, http.StatusUnauthorized, "invalid API key")
		case r.Header.Get("X-Phala-Version") == "":
			writeDetail(w, http.StatusBadRequest, "X-Phala-Version header required")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// fail consumes one injected fault of the counter; s.mu is held.
func fail(n *int) bool {
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (s *Server) provision(w http.ResponseWriter, r *http.Request) {
	var req phala.ProvisionRequest
	if err := decode(r, &req); err != nil {
		writeDetail(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	switch {
	case req.Name == "" || req.InstanceType == "" || len(req.ComposeFile) == 0:
		writeDetail(w, http.StatusUnprocessableEntity, "name, instance_type and compose_file are required")
		return
	case req.PreferDev:
		writeDetail(w, http.StatusUnprocessableEntity, "prefer_dev: production deployments use the non-dev image")
		return
	}
	canonical, err := measure.CanonicalJSON("compose_file", req.ComposeFile)
	if err != nil {
		writeDetail(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	sum := sha256.Sum256(canonical)
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		writeDetail(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fail(&s.faults.Provision) {
		writeDetail(w, http.StatusInternalServerError, "injected provision failure")
		return
	}
	s.seq++
	idSum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", req.Name, s.seq))
	id := hex.EncodeToString(idSum[:20])
	s.apps[id] = &app{App: App{AppID: id, Name: req.Name, ComposeFile: canonical, ComposeHash: hex.EncodeToString(sum[:])}, priv: priv}
	writeJSON(w, http.StatusOK, phala.Provisioned{AppID: id, ComposeHash: hex.EncodeToString(sum[:]), EnvPubKey: hex.EncodeToString(priv.PublicKey().Bytes())})
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req phala.CreateRequest
	if err := decode(r, &req); err != nil {
		writeDetail(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	s.mu.Lock()
	a, ok := s.apps[req.AppID]
	switch {
	case !ok:
		s.mu.Unlock()
		writeDetail(w, http.StatusNotFound, "app not provisioned")
		return
	case a.hasVM:
		s.mu.Unlock()
		writeDetail(w, http.StatusConflict, "the app already has a CVM")
		return
	case req.ComposeHash != a.ComposeHash:
		s.mu.Unlock()
		writeDetail(w, http.StatusUnprocessableEntity, "compose_hash differs from the provisioned compose")
		return
	case fail(&s.faults.Create):
		s.mu.Unlock()
		writeDetail(w, http.StatusInternalServerError, "injected create failure")
		return
	}
	env := map[string]string{}
	if req.EncryptedEnv != "" {
		vars, err := phala.DecryptEnv(a.priv, req.EncryptedEnv)
		if err != nil {
			s.mu.Unlock()
			writeDetail(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		for _, v := range vars {
			env[v.Key] = v.Value
		}
	}
	a.Env = env
	a.hasVM, a.created, a.vmUUID = true, s.now(), "vm-"+a.AppID[:12]
	a.status = phala.StatusStarting
	if s.faults.BootStopped {
		a.status = phala.StatusStopped
	}
	s.creates++
	deployed := a.App
	s.mu.Unlock()

	if a.status == phala.StatusStarting {
		s.run(r.Context(), a, deployed)
	}
	s.mu.Lock()
	out := a.cvm()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// run starts the app with the runner; a runner failure leaves the CVM in status "failed".
func (s *Server) run(ctx context.Context, a *app, deployed App) {
	url, stop, err := s.runner(context.WithoutCancel(ctx), deployed)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		a.status = "failed"
		return
	}
	if !a.hasVM { // deleted meanwhile
		_ = stop()
		return
	}
	a.url, a.stop, a.status = url, stop, phala.StatusRunning
}

func (a *app) cvm() phala.CVM {
	c := phala.CVM{VMUUID: a.vmUUID, AppID: a.AppID, Name: a.Name, Status: a.status, CreatedAt: a.created}
	if a.url != "" {
		c.PublicURLs = []phala.PublicURL{{App: a.url, Instance: a.url}}
	}
	return c
}

// lookup finds the app of a path id "app_<id>"; s.mu is held.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*app, bool) {
	id, ok := strings.CutPrefix(r.PathValue("id"), "app_")
	a, found := s.apps[id]
	if !ok || !found || !a.hasVM {
		writeDetail(w, http.StatusNotFound, "CVM not found")
		return nil, false
	}
	return a, true
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if fail(&s.faults.Get) {
		writeDetail(w, http.StatusInternalServerError, "injected get failure")
		return
	}
	writeJSON(w, http.StatusOK, a.cvm())
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a, ok := s.lookup(w, r)
	if !ok {
		s.mu.Unlock()
		return
	}
	if fail(&s.faults.Start) {
		s.mu.Unlock()
		writeDetail(w, http.StatusInternalServerError, "injected start failure")
		return
	}
	if a.status != phala.StatusStopped {
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"status": a.status})
		return
	}
	a.status = phala.StatusStarting
	deployed := a.App
	s.mu.Unlock()
	s.run(r.Context(), a, deployed)
	writeJSON(w, http.StatusOK, map[string]string{"status": phala.StatusStarting})
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a, ok := s.lookup(w, r)
	if !ok {
		s.mu.Unlock()
		return
	}
	if fail(&s.faults.Delete) {
		s.mu.Unlock()
		writeDetail(w, http.StatusInternalServerError, "injected delete failure")
		return
	}
	stop := a.stop
	a.stop, a.hasVM, a.status, a.url = nil, false, "deleted", ""
	s.deletes++
	s.mu.Unlock()
	var err error
	if stop != nil {
		err = stop()
	}
	if err != nil {
		writeDetail(w, http.StatusInternalServerError, "stop app: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []phala.CVM{}
	for _, a := range s.apps {
		if a.hasVM {
			out = append(out, a.cvm())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if dec.More() {
		return errors.New("body: trailing data")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}
