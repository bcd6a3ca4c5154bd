// Package gcptest is an in-process fake of the parts of the Compute Engine REST API that
// package gcp uses — instances insert/get/delete/list/setMetadata/getGuestAttributes and zone
// operations get/wait — for tests that point the real cloud.google.com/go/compute client at it
// (option.WithEndpoint(s.URL), option.WithoutAuthentication()). It keeps instances in memory,
// counts creates and deletes, and injects failures at every step.
//
// It also plays each VM's side: an Agent function (SimAgent answers with TDX simulator
// quotes), or a real guest — a mero-tee-agent process started by the Guest hook when the VM
// is created and stopped when it is deleted — that reaches the VM's metadata server at
// GuestMetadataURL(name): instance attributes (GET, with Metadata-Flavor: Google) and guest
// attributes (PUT, DELETE), the calls the agent makes on GCE.
package gcptest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
)

// Agent plays a VM's boot agent: given the instance as inserted (metadata, disks, labels), it
// returns the guest attributes of namespace "mero-tee" the agent has published so far (nil or
// empty: nothing yet). It is called on every getGuestAttributes request.
type Agent func(inst *computepb.Instance) map[string]string

// Faults are the failures the server injects. The zero value injects none.
type Faults struct {
	// InsertStatus, when non-zero, is the HTTP status every insert answers (nothing created).
	InsertStatus int
	// InsertOpError, when non-empty, makes the insert operation complete with this error
	// (code QUOTA_EXCEEDED); the instance record exists all the same, as GCE may leave one.
	InsertOpError string
	// Statuses is the status sequence successive instance GETs report; the last one repeats.
	// Empty means STAGING then RUNNING.
	Statuses []string
	// DeleteFailures is how many delete requests answer 503 before deletes succeed.
	DeleteFailures int
	// GuestAttributeStatus, when non-zero, is the HTTP status every getGuestAttributes answers.
	GuestAttributeStatus int
	// SetMetadataStatus, when non-zero, is the HTTP status every setMetadata answers.
	SetMetadataStatus int
	// DropInsertResponse makes the server create the instance and then abort the connection
	// instead of answering, as when the response is lost on the way back.
	DropInsertResponse bool
}

// Server is the fake Compute Engine API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the endpoint to pass to option.WithEndpoint.
	URL string
	srv *httptest.Server

	mu        sync.Mutex
	now       func() time.Time
	faults    Faults
	agent     Agent
	onRequest func(*http.Request)
	instances map[string]*computepb.Instance // by name
	guest     Guest
	guests    map[string]*guestState // by instance name
	gets      map[string]int
	ops       map[string]*computepb.Operation
	nextOp    int
	nextID    uint64
	creates   int
	deletes   int
	requests  []string
	stops     int
}

// Guest boots a VM's guest: it is called (under the server's lock: it must not call the
// server) when an insert is accepted, with the instance and the URL of its metadata server,
// and returns a function that stops the guest, called when the VM is deleted or the server
// closes. An error leaves the VM TERMINATED, as a guest that failed to boot.
type Guest func(inst *computepb.Instance, metadataURL string) (stop func(), err error)

// guestState is one VM's guest: its stop function, the guest attributes it published, and
// whether it failed to boot.
type guestState struct {
	stop    func()
	attrs   map[string]string // "namespace/key" → value
	crashed string
}

// NewServer starts a fake on 127.0.0.1; Close it when done.
func NewServer() *Server {
	s := &Server{now: time.Now, instances: map[string]*computepb.Instance{}, guests: map[string]*guestState{}, gets: map[string]int{}, ops: map[string]*computepb.Operation{}, nextID: 1000}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops every guest still running, then the server.
func (s *Server) Close() {
	s.mu.Lock()
	for name := range s.guests {
		s.stopGuest(name)
	}
	s.mu.Unlock()
	s.srv.Close()
}

// SetGuest sets the hook that boots the guest of every VM created from now on.
func (s *Server) SetGuest(g Guest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guest = g
}

// GuestMetadataURL is the metadata-server root (…/computeMetadata/v1) VM name's guest uses.
func (s *Server) GuestMetadataURL(name string) string {
	return s.URL + "/guest/" + name + "/computeMetadata/v1"
}

// GuestsStopped returns how many guests were stopped (each at most once).
func (s *Server) GuestsStopped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stops
}

// GuestAttributes returns a copy of the guest attributes VM name's guest published
// ("namespace/key" → value).
func (s *Server) GuestAttributes(name string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.guests[name]; ok {
		return maps.Clone(g.attrs)
	}
	return nil
}

// stopGuest stops and forgets VM name's guest; the caller holds s.mu.
func (s *Server) stopGuest(name string) {
	g, ok := s.guests[name]
	if !ok {
		return
	}
	delete(s.guests, name)
	if g.stop != nil {
		g.stop()
		s.stops++
	}
}

// ClientOptions point a compute client at the fake, unauthenticated.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint(s.URL), option.WithoutAuthentication()}
}

// SetFaults replaces the injected failures.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SetAgent sets the boot agent of every VM.
func (s *Server) SetAgent(a Agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agent = a
}

// SetClock sets the clock that stamps creationTimestamp.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// OnRequest sets a hook called (outside the server's lock) with every request before it is
// answered: tests cancel contexts or inspect traffic with it.
func (s *Server) OnRequest(fn func(*http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRequest = fn
}

// AddInstance stores an existing instance (for sweeper tests); it does not count as a create.
func (s *Server) AddInstance(inst *computepb.Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[inst.GetName()] = proto.Clone(inst).(*computepb.Instance)
}

// Counts returns how many instances were created by accepted inserts and how many were
// deleted.
func (s *Server) Counts() (creates, deletes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creates, s.deletes
}

// Live returns the names of the instances that exist, sorted.
func (s *Server) Live() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.instances))
}

// Instance returns a copy of the named instance as stored, or nil.
func (s *Server) Instance(name string) *computepb.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inst, ok := s.instances[name]; ok {
		return proto.Clone(inst).(*computepb.Instance)
	}
	return nil
}

// Requests returns "METHOD PATH" of every request so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

var pathRE = lazyre.New(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/(instances|operations)(?:/([^/]+))?(?:/([^/]+))?$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/guest/") {
		s.serveGuest(w, r)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	hook := s.onRequest
	s.mu.Unlock()
	if hook != nil {
		hook(r)
	}
	m := pathRE().FindStringSubmatch(r.URL.Path)
	if m == nil {
		writeError(w, http.StatusNotFound, "notFound", "unknown path "+r.URL.Path)
		return
	}
	project, zone, kind, name, verb := m[1], m[2], m[3], m[4], m[5]
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case kind == "instances" && name == "" && r.Method == http.MethodPost:
		s.insert(w, r, project, zone)
	case kind == "instances" && name == "" && r.Method == http.MethodGet:
		s.list(w, r)
	case kind == "instances" && verb == "" && r.Method == http.MethodGet:
		s.get(w, name)
	case kind == "instances" && verb == "" && r.Method == http.MethodDelete:
		s.delete(w, project, zone, name)
	case kind == "instances" && verb == "setMetadata" && r.Method == http.MethodPost:
		s.setMetadata(w, r, project, zone, name)
	case kind == "instances" && verb == "getGuestAttributes" && r.Method == http.MethodGet:
		s.guestAttributes(w, r, name)
	case kind == "operations" && verb == "" && r.Method == http.MethodGet,
		kind == "operations" && verb == "wait" && r.Method == http.MethodPost:
		s.operation(w, name)
	default:
		writeError(w, http.StatusNotFound, "notFound", r.Method+" "+r.URL.Path+" is not implemented by the fake")
	}
}

func (s *Server) insert(w http.ResponseWriter, r *http.Request, project, zone string) {
	if s.faults.InsertStatus != 0 {
		writeError(w, s.faults.InsertStatus, "forbidden", "injected insert failure")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	inst := &computepb.Instance{}
	if err := protojson.Unmarshal(body, inst); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "instance resource: "+err.Error())
		return
	}
	if inst.GetName() == "" {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'resource.name': ''")
		return
	}
	if _, ok := s.instances[inst.GetName()]; ok {
		writeError(w, http.StatusConflict, "alreadyExists", fmt.Sprintf("The resource 'projects/%s/zones/%s/instances/%s' already exists", project, zone, inst.GetName()))
		return
	}
	s.nextID++
	inst.Id = ptr(s.nextID)
	inst.CreationTimestamp = ptr(s.now().Format(time.RFC3339Nano))
	inst.Status = ptr(computepb.Instance_PROVISIONING.String())
	inst.Zone = ptr(fmt.Sprintf("https://www.googleapis.com/compute/v1/projects/%s/zones/%s", project, zone))
	if inst.Metadata == nil {
		inst.Metadata = &computepb.Metadata{}
	}
	inst.Metadata.Fingerprint = ptr(fmt.Sprintf("fp-%d-0", s.nextID))
	s.instances[inst.GetName()] = inst
	s.creates++
	if s.guest != nil {
		g := &guestState{attrs: map[string]string{}}
		stop, err := s.guest(proto.Clone(inst).(*computepb.Instance), s.GuestMetadataURL(inst.GetName()))
		if err != nil {
			g.crashed = err.Error()
		}
		g.stop = stop
		s.guests[inst.GetName()] = g
	}
	op := s.newOp(project, zone, "insert", inst.GetName())
	if s.faults.InsertOpError != "" {
		op.Error = &computepb.Error{Errors: []*computepb.Errors{{Code: ptr("QUOTA_EXCEEDED"), Message: ptr(s.faults.InsertOpError)}}}
	}
	if s.faults.DropInsertResponse {
		panic(http.ErrAbortHandler) // serve's deferred Unlock releases the lock

	}
	writeProto(w, pending(op))
}

func (s *Server) get(w http.ResponseWriter, name string) {
	inst, ok := s.instances[name]
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "The resource 'instances/"+name+"' was not found")
		return
	}
	statuses := s.faults.Statuses
	if len(statuses) == 0 {
		statuses = []string{computepb.Instance_STAGING.String(), computepb.Instance_RUNNING.String()}
	}
	i := min(s.gets[name], len(statuses)-1)
	s.gets[name]++
	inst.Status = ptr(statuses[i])
	if g, ok := s.guests[name]; ok && g.crashed != "" {
		inst.Status = ptr(computepb.Instance_TERMINATED.String())
		inst.StatusMessage = ptr("guest failed to boot: " + g.crashed)
	}
	writeProto(w, inst)
}

func (s *Server) delete(w http.ResponseWriter, project, zone, name string) {
	if s.faults.DeleteFailures > 0 {
		s.faults.DeleteFailures--
		writeError(w, http.StatusServiceUnavailable, "backendError", "injected delete failure")
		return
	}
	if _, ok := s.instances[name]; !ok {
		writeError(w, http.StatusNotFound, "notFound", "The resource 'instances/"+name+"' was not found")
		return
	}
	delete(s.instances, name)
	s.stopGuest(name)
	s.deletes++
	writeProto(w, pending(s.newOp(project, zone, "delete", name)))
}

var filterRE = lazyre.New(`labels\.([a-z][a-z0-9_-]*)\s*=\s*"([^"]*)"`)

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	want := map[string]string{}
	for _, m := range filterRE().FindAllStringSubmatch(r.URL.Query().Get("filter"), -1) {
		want[m[1]] = m[2]
	}
	list := &computepb.InstanceList{}
	for _, name := range slices.Sorted(maps.Keys(s.instances)) {
		inst := s.instances[name]
		ok := true
		for k, v := range want {
			if inst.GetLabels()[k] != v {
				ok = false
			}
		}
		if ok {
			list.Items = append(list.Items, inst)
		}
	}
	writeProto(w, list)
}

func (s *Server) guestAttributes(w http.ResponseWriter, r *http.Request, name string) {
	inst, ok := s.instances[name]
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "The resource 'instances/"+name+"' was not found")
		return
	}
	if s.faults.GuestAttributeStatus != 0 {
		writeError(w, s.faults.GuestAttributeStatus, "backendError", "injected guest attribute failure")
		return
	}
	attrs := map[string]string{}
	if s.agent != nil {
		maps.Copy(attrs, s.agent(proto.Clone(inst).(*computepb.Instance)))
	}
	if g, ok := s.guests[name]; ok {
		for k, v := range g.attrs {
			if ns, key, _ := strings.Cut(k, "/"); ns == "mero-tee" {
				attrs[key] = v
			}
		}
	}
	if len(attrs) == 0 {
		writeError(w, http.StatusNotFound, "notFound", "The resource 'guestAttributes/"+r.URL.Query().Get("queryPath")+"' was not found")
		return
	}
	qp := r.URL.Query().Get("queryPath")
	ga := &computepb.GuestAttributes{QueryPath: &qp, QueryValue: &computepb.GuestAttributesValue{}}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		ga.QueryValue.Items = append(ga.QueryValue.Items, &computepb.GuestAttributesEntry{Namespace: ptr("mero-tee"), Key: ptr(k), Value: ptr(attrs[k])})
	}
	writeProto(w, ga)
}

func (s *Server) operation(w http.ResponseWriter, name string) {
	op, ok := s.ops[name]
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "The resource 'operations/"+name+"' was not found")
		return
	}
	writeProto(w, op)
}

// newOp records a completed operation (DONE when polled) and returns it.
func (s *Server) newOp(project, zone, kind, target string) *computepb.Operation {
	s.nextOp++
	name := fmt.Sprintf("operation-%d-%s", s.nextOp, kind)
	op := &computepb.Operation{
		Name:          ptr(name),
		OperationType: ptr(kind),
		Status:        computepb.Operation_DONE.Enum(),
		Zone:          ptr(fmt.Sprintf("https://www.googleapis.com/compute/v1/projects/%s/zones/%s", project, zone)),
		TargetLink:    ptr(fmt.Sprintf("https://www.googleapis.com/compute/v1/projects/%s/zones/%s/instances/%s", project, zone, target)),
	}
	s.ops[name] = op
	return op
}

// pending is op as the mutating call returns it: still RUNNING (the client then polls).
func pending(op *computepb.Operation) *computepb.Operation {
	c := proto.Clone(op).(*computepb.Operation)
	c.Status = computepb.Operation_RUNNING.Enum()
	c.Error = nil
	return c
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.Marshal(m)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// writeError answers in the Google API error format.
func writeError(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"errors": []map[string]string{{"domain": "global", "reason": reason, "message": msg}},
	}})
}

func ptr[T any](v T) *T { return &v }

// Metadata returns the instance's metadata value for key.
func Metadata(inst *computepb.Instance, key string) (string, bool) {
	for _, it := range inst.GetMetadata().GetItems() {
		if it.GetKey() == key {
			return it.GetValue(), true
		}
	}
	return "", false
}

// SourceImage returns the source image of the instance's boot disk.
func SourceImage(inst *computepb.Instance) string {
	for _, d := range inst.GetDisks() {
		if d.GetBoot() {
			return d.GetInitializeParams().GetSourceImage()
		}
	}
	return ""
}

// ImageName is the last path element of an image path (projects/P/global/images/NAME → NAME).
func ImageName(image string) string { return image[strings.LastIndex(image, "/")+1:] }

// setMetadata replaces the instance's metadata items when the request carries the current
// fingerprint (412 otherwise), as instances.setMetadata does.
func (s *Server) setMetadata(w http.ResponseWriter, r *http.Request, project, zone, name string) {
	inst, ok := s.instances[name]
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "The resource 'instances/"+name+"' was not found")
		return
	}
	if s.faults.SetMetadataStatus != 0 {
		writeError(w, s.faults.SetMetadataStatus, "backendError", "injected setMetadata failure")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 512<<10))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	md := &computepb.Metadata{}
	if err := protojson.Unmarshal(body, md); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "metadata resource: "+err.Error())
		return
	}
	if md.GetFingerprint() != inst.GetMetadata().GetFingerprint() {
		writeError(w, http.StatusPreconditionFailed, "conditionNotMet", "Supplied fingerprint does not match current metadata fingerprint.")
		return
	}
	s.nextID++
	md.Fingerprint = ptr(fmt.Sprintf("fp-%d-%d", inst.GetId(), s.nextID))
	inst.Metadata = md
	writeProto(w, pending(s.newOp(project, zone, "setMetadata", name)))
}

var guestPathRE = lazyre.New(`^/guest/([^/]+)/computeMetadata/v1/instance/(attributes|guest-attributes)/([^/]+)(?:/([^/]+))?$`)

// maxGuestValue bounds a guest attribute the fake accepts.
const maxGuestValue = 256 << 10

// serveGuest is VM name's metadata server: GET instance/attributes/KEY (the instance
// metadata), PUT and DELETE instance/guest-attributes/NAMESPACE/KEY. Like GCE's, it refuses
// requests without the Metadata-Flavor: Google header.
func (s *Server) serveGuest(w http.ResponseWriter, r *http.Request) {
	m := guestPathRE().FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "Missing Metadata-Flavor:Google header.", http.StatusForbidden)
		return
	}
	name, kind, a, b := m[1], m[2], m[3], m[4]
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances[name]
	g, gok := s.guests[name]
	if !ok || !gok {
		http.Error(w, "no such VM", http.StatusNotFound)
		return
	}
	switch {
	case kind == "attributes" && b == "" && r.Method == http.MethodGet:
		v, ok := Metadata(inst, a)
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		w.Header().Set("Content-Type", "application/text")
		_, _ = io.WriteString(w, v)
	case kind == "guest-attributes" && b != "" && r.Method == http.MethodPut:
		body, err := io.ReadAll(io.LimitReader(r.Body, maxGuestValue+1))
		if err != nil || len(body) > maxGuestValue {
			http.Error(w, "value too large", http.StatusBadRequest)
			return
		}
		if len(g.attrs) >= 1000 {
			http.Error(w, "too many guest attributes", http.StatusBadRequest)
			return
		}
		g.attrs[a+"/"+b] = string(body)
	case kind == "guest-attributes" && b != "" && r.Method == http.MethodDelete:
		delete(g.attrs, a+"/"+b)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
