// Package githubtest is an in-process fake of the parts of GitHub's REST API that the
// release store and the catalog pull request use, for go-github clients in tests:
// Releases (list, get by id/tag/latest, create, update, assets list/upload/delete, downloads
// answered with a 302 like GitHub's), and a small git model behind the Git refs, Contents
// and Pulls endpoints. Faults can be injected per operation: 5xx answers, 429 with
// Retry-After, primary and secondary rate limits, hangs (client timeouts), truncated uploads
// that leave a "starter" asset, and operations whose answer is lost after they took effect.
//
// It listens on 127.0.0.1 only; point a client at it with
// github.NewClient(ClientOptions{BaseURL: srv.URL, Token: srv.Token}).
package githubtest

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Op names an API operation faults can be injected into and requests are counted for.
type Op string

// The operations of the fake.
const (
	OpListReleases  Op = "list-releases"
	OpGetRelease    Op = "get-release" // by id, by tag and latest
	OpCreateRelease Op = "create-release"
	OpUpdateRelease Op = "update-release"
	OpListAssets    Op = "list-assets"
	OpUpload        Op = "upload"
	OpDeleteAsset   Op = "delete-asset"
	OpGetAsset      Op = "get-asset" // metadata, or the 302 to the download
	OpDownload      Op = "download"  // the redirect target
	OpGetRepo       Op = "get-repo"
	OpGetRef        Op = "get-ref"
	OpCreateRef     Op = "create-ref"
	OpUpdateRef     Op = "update-ref"
	OpGetContents   Op = "get-contents"
	OpPutContents   Op = "put-contents"
	OpListPulls     Op = "list-pulls"
	OpCreatePull    Op = "create-pull"
	OpUpdatePull    Op = "update-pull"
)

// Fault is one injected failure, consumed by the next request of its operation.
type Fault struct {
	// Status answers with this HTTP status (e.g. 502, 429, 403).
	Status int
	// RetryAfter sets the Retry-After header (seconds).
	RetryAfter string
	// RateLimitReset answers a primary rate limit: x-ratelimit-remaining 0 and this reset.
	RateLimitReset time.Time
	// Secondary makes a 403/429 a secondary rate limit (GitHub's documentation_url).
	Secondary bool
	// Hang blocks until the client gives up (a timeout on the client side).
	Hang bool
	// Truncate (uploads) reads half the body, leaves a "starter" asset and drops the connection.
	Truncate bool
	// Drop closes the connection without an answer.
	Drop bool
	// AfterCommit performs the operation, then fails as the other fields say (a lost answer).
	AfterCommit bool
}

// Asset is a release asset of the fake.
type Asset struct {
	ID          int64
	Name        string
	State       string
	ContentType string
	Content     []byte
	CreatedAt   time.Time
}

// Release is a release of the fake.
type Release struct {
	ID          int64
	Tag         string
	Name        string
	Body        string
	Draft       bool
	Prerelease  bool
	CreatedAt   time.Time
	PublishedAt time.Time
	Assets      []*Asset
}

// commit is a commit of the git model: its parent and the whole tree.
type commit struct {
	sha     string
	parent  string
	message string
	files   map[string][]byte
}

// Pull is a pull request of the fake.
type Pull struct {
	Number int
	Title  string
	Body   string
	Head   string // branch name
	Base   string
	State  string
}

// Server is the fake. Its fields are read-only after New.
type Server struct {
	// URL is the server's root; the REST API is under /api/v3, uploads under /api/uploads.
	URL string
	// Owner and Repo name the one repository the fake serves.
	Owner, Repo string
	// Token is the token that authorizes writes and shows drafts.
	Token string

	srv    *httptest.Server
	closed chan struct{}

	mu         sync.Mutex
	omitDigest bool
	nextID     int64
	releases   []*Release
	latestID   int64
	faults     map[Op][]Fault
	counts     map[Op]int
	commits    map[string]*commit
	refs       map[string]string // branch → commit sha
	defBranch  string
	pulls      []*Pull
	now        func() time.Time
}

// New starts a fake serving OWNER/REPO, whose writes need token, with a "main" branch that
// holds files (nil: none).
func New(owner, repo, token string, files map[string][]byte) *Server {
	s := &Server{
		Owner: owner, Repo: repo, Token: token, nextID: 1000,
		faults: map[Op][]Fault{}, counts: map[Op]int{},
		commits: map[string]*commit{}, refs: map[string]string{}, defBranch: "main",
		now: time.Now, closed: make(chan struct{}),
	}
	root := s.newCommit("", "initial commit", cloneFiles(files))
	s.refs["main"] = root.sha
	s.srv = httptest.NewServer(s.routes())
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() {
	close(s.closed)
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// OmitDigest makes asset answers leave out the "digest" field (as older API versions do),
// so that clients must download and hash to compare content.
func (s *Server) OmitDigest(omit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.omitDigest = omit
}

// Inject queues faults for the next requests of op, in order.
func (s *Server) Inject(op Op, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = append(s.faults[op], faults...)
}

// ClearFaults drops every fault not consumed yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[Op][]Fault{}
}

// Pending returns how many injected faults of op have not been consumed yet.
func (s *Server) Pending(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults[op])
}

// Count returns how many requests of op the server has received.
func (s *Server) Count(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// Releases returns a deep copy of every release, drafts included, in creation order.
func (s *Server) Releases() []Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Release
	for _, r := range s.releases {
		c := *r
		c.Assets = nil
		for _, a := range r.Assets {
			ac := *a
			ac.Content = slices.Clone(a.Content)
			c.Assets = append(c.Assets, &ac)
		}
		out = append(out, c)
	}
	return out
}

// SetAssetContent replaces the bytes of an asset in place, as if the storage were tampered
// with; size and digest follow the new bytes.
func (s *Server) SetAssetContent(tag, name string, content []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.releases {
		if r.Tag != tag {
			continue
		}
		for _, a := range r.Assets {
			if a.Name == name {
				a.Content = slices.Clone(content)
				return true
			}
		}
	}
	return false
}

// AddRelease adds a release directly (no API call), for seeding; it returns its ID.
func (s *Server) AddRelease(tag string, draft, prerelease bool) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	rel := &Release{ID: s.id(), Tag: tag, Name: tag, Draft: draft, Prerelease: prerelease, CreatedAt: s.now()}
	if !draft {
		rel.PublishedAt = s.now()
	}
	s.releases = append(s.releases, rel)
	return rel.ID
}

// AddAsset adds an asset directly (no API call), in the given state ("uploaded", "starter").
func (s *Server) AddAsset(tag, name, state string, content []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.releases {
		if r.Tag == tag {
			r.Assets = append(r.Assets, &Asset{ID: s.id(), Name: name, State: state, Content: slices.Clone(content),
				ContentType: "application/octet-stream", CreatedAt: s.now()})
			return true
		}
	}
	return false
}

// File returns a file of a branch of the git model.
func (s *Server) File(branch, path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.refs[branch]
	if !ok {
		return nil, false
	}
	b, ok := s.commits[sha].files[path]
	return slices.Clone(b), ok
}

// Commits returns how many commits a branch has (its first-parent history).
func (s *Server) Commits(branch string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sha := s.refs[branch]; sha != ""; sha = s.commits[sha].parent {
		n++
	}
	return n
}

// Branches lists the branches of the git model.
func (s *Server) Branches() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for b := range s.refs {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// CommitFile commits files onto a branch directly (no API call), e.g. to move main.
func (s *Server) CommitFile(branch, path string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	parent := s.refs[branch]
	files := cloneFiles(s.commits[parent].files)
	files[path] = slices.Clone(content)
	s.refs[branch] = s.newCommit(parent, "direct commit", files).sha
}

// Pulls returns a copy of every pull request.
func (s *Server) Pulls() []Pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Pull
	for _, p := range s.pulls {
		out = append(out, *p)
	}
	return out
}

// ClosePull closes a pull request (as a maintainer might).
func (s *Server) ClosePull(number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pulls {
		if p.Number == number {
			p.State = "closed"
		}
	}
}

func cloneFiles(files map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range files {
		out[k] = slices.Clone(v)
	}
	return out
}

// id returns a fresh ID; s.mu is held.
func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// newCommit records a commit; s.mu is held (or the server is not started yet).
func (s *Server) newCommit(parent, message string, files map[string][]byte) *commit {
	h := sha1.New()
	fmt.Fprintf(h, "parent %s\nmessage %s\nn %d\n", parent, message, len(s.commits))
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s %s\n", n, blobSHA(files[n]))
	}
	c := &commit{sha: hex.EncodeToString(h.Sum(nil)), parent: parent, message: message, files: files}
	s.commits[c.sha] = c
	return c
}

// blobSHA is git's blob object ID of content.
func blobSHA(content []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// ---- HTTP plumbing ----

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := "/api/v3/repos/{owner}/{repo}"
	handle := func(pattern string, op Op, write bool, h func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, s.wrap(op, write, h))
	}
	handle("GET "+api+"/releases", OpListReleases, false, s.listReleases)
	handle("POST "+api+"/releases", OpCreateRelease, true, s.createRelease)
	handle("GET "+api+"/releases/latest", OpGetRelease, false, s.latestRelease)
	handle("GET "+api+"/releases/{id}", OpGetRelease, false, s.getRelease)
	handle("PATCH "+api+"/releases/{id}", OpUpdateRelease, true, s.updateRelease)
	handle("DELETE "+api+"/releases/assets/{id}", OpDeleteAsset, true, s.deleteAsset)
	// releases/tags/{tag}, releases/{id}/assets and releases/assets/{id} overlap as patterns.
	byTag := s.wrap(OpGetRelease, false, s.releaseByTag)
	assetList := s.wrap(OpListAssets, false, s.listAssets)
	asset := s.wrap(OpGetAsset, false, s.getAsset)
	mux.HandleFunc("GET "+api+"/releases/{a}/{b}", func(w http.ResponseWriter, r *http.Request) {
		a, b := r.PathValue("a"), r.PathValue("b")
		switch {
		case a == "tags":
			r.SetPathValue("tag", b)
			byTag(w, r)
		case a == "assets":
			r.SetPathValue("id", b)
			asset(w, r)
		case b == "assets":
			r.SetPathValue("id", a)
			assetList(w, r)
		default:
			apiError(w, http.StatusNotFound, "Not Found")
		}
	})
	handle("POST /api/uploads/repos/{owner}/{repo}/releases/{id}/assets", OpUpload, true, s.upload)
	mux.HandleFunc("GET /downloads/{id}/{name}", s.wrap(OpDownload, false, s.download))
	handle("GET "+api, OpGetRepo, false, s.getRepo)
	handle("GET "+api+"/git/ref/heads/{branch...}", OpGetRef, false, s.getRef)
	handle("POST "+api+"/git/refs", OpCreateRef, true, s.createRef)
	handle("PATCH "+api+"/git/refs/heads/{branch...}", OpUpdateRef, true, s.updateRef)
	handle("GET "+api+"/contents/{path...}", OpGetContents, false, s.getContents)
	handle("PUT "+api+"/contents/{path...}", OpPutContents, true, s.putContents)
	handle("GET "+api+"/pulls", OpListPulls, false, s.listPulls)
	handle("POST "+api+"/pulls", OpCreatePull, true, s.createPull)
	handle("PATCH "+api+"/pulls/{number}", OpUpdatePull, true, s.updatePull)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "Not Found")
	})
	return mux
}

// wrap counts the request, checks the repository and the token, and applies a fault.
func (s *Server) wrap(op Op, write bool, h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.counts[op]++
		var f *Fault
		if q := s.faults[op]; len(q) > 0 {
			f = &q[0]
			s.faults[op] = q[1:]
		}
		s.mu.Unlock()
		if o := r.PathValue("owner"); o != "" && (o != s.Owner || r.PathValue("repo") != s.Repo) {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		auth := r.Header.Get("Authorization")
		switch {
		case auth != "" && auth != "Bearer "+s.Token:
			apiError(w, http.StatusUnauthorized, "Bad credentials")
			return
		case write && auth == "":
			apiError(w, http.StatusUnauthorized, "Requires authentication")
			return
		}
		if auth != "" {
			r.Header.Set("X-Fake-Authorized", "1")
		} else {
			r.Header.Del("X-Fake-Authorized")
		}
		if f == nil {
			h(w, r)
			return
		}
		if f.Truncate && op == OpUpload {
			s.truncatedUpload(w, r)
			return
		}
		if f.Truncate {
			h(&truncating{ResponseWriter: w}, r)
			return
		}
		if f.AfterCommit {
			h(discard{header: http.Header{}}, r)
		}
		s.fail(w, r, *f)
	}
}

// fail answers a request as the fault says.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, f Fault) {
	switch {
	case f.Hang:
		// Take the body first: the server notices a client that went away only once the
		// request is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	case f.Drop:
		drop(w)
		return
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusBadGateway
	}
	msg := http.StatusText(status)
	doc := "https://docs.github.com/rest"
	switch {
	case !f.RateLimitReset.IsZero():
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(f.RateLimitReset.Unix(), 10))
		msg = "API rate limit exceeded"
	case f.Secondary:
		msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
		doc = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg, "documentation_url": doc})
}

// drop closes the client connection without an answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("githubtest: response writer cannot hijack")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}

// truncatedUpload takes half the body, records a "starter" asset and drops the connection.
func (s *Server) truncatedUpload(w http.ResponseWriter, r *http.Request) {
	half := r.ContentLength / 2
	buf := make([]byte, half)
	n, _ := io.ReadFull(bufio.NewReader(r.Body), buf)
	s.mu.Lock()
	if rel := s.releaseByID(r.PathValue("id")); rel != nil {
		rel.Assets = append(rel.Assets, &Asset{ID: s.id(), Name: r.URL.Query().Get("name"), State: "starter",
			Content: buf[:n], ContentType: r.Header.Get("Content-Type"), CreatedAt: s.now()})
	}
	s.mu.Unlock()
	drop(w)
}

// truncating passes the headers and the first half of the body on, then drops the
// connection (a download cut short).
type truncating struct {
	http.ResponseWriter
	written, limit int
	dropped        bool
}

func (t *truncating) WriteHeader(code int) {
	if n, err := strconv.Atoi(t.Header().Get("Content-Length")); err == nil {
		t.limit = n / 2
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *truncating) Write(b []byte) (int, error) {
	if t.dropped {
		return 0, io.ErrClosedPipe
	}
	if t.limit == 0 {
		t.WriteHeader(http.StatusOK)
	}
	if t.written+len(b) > t.limit {
		n, _ := t.ResponseWriter.Write(b[:t.limit-t.written])
		t.written += n
		if f, ok := t.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		drop(t.ResponseWriter)
		t.dropped = true
		return n, io.ErrClosedPipe
	}
	n, err := t.ResponseWriter.Write(b)
	t.written += n
	return n, err
}

// discard is a ResponseWriter that throws the answer away (AfterCommit faults).
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

func apiError(w http.ResponseWriter, status int, msg string, errs ...map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest"}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	_ = json.NewEncoder(w).Encode(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func isAuthorized(r *http.Request) bool { return r.Header.Get("X-Fake-Authorized") == "1" }

// paginate answers one page of items with GitHub's Link header.
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T) {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	start := min((page-1)*per, len(items))
	end := min(start+per, len(items))
	last := max((len(items)+per-1)/per, 1)
	if page < last {
		link := func(p int) string {
			u := *r.URL
			q := u.Query()
			q.Set("page", strconv.Itoa(p))
			q.Set("per_page", strconv.Itoa(per))
			u.RawQuery = q.Encode()
			return "<http://" + r.Host + u.String() + ">"
		}
		w.Header().Set("Link", link(page+1)+`; rel="next", `+link(last)+`; rel="last"`)
	}
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- releases ----

func (s *Server) releaseJSON(r *Release, host string) map[string]any {
	base := "http://" + host + "/api/v3/repos/" + s.Owner + "/" + s.Repo
	out := map[string]any{
		"id": r.ID, "tag_name": r.Tag, "name": r.Name, "body": r.Body, "draft": r.Draft,
		"prerelease": r.Prerelease, "created_at": r.CreatedAt.UTC().Format(time.RFC3339),
		"url":              base + "/releases/" + strconv.FormatInt(r.ID, 10),
		"assets_url":       base + "/releases/" + strconv.FormatInt(r.ID, 10) + "/assets",
		"upload_url":       "http://" + host + "/api/uploads/repos/" + s.Owner + "/" + s.Repo + "/releases/" + strconv.FormatInt(r.ID, 10) + "/assets{?name,label}",
		"target_commitish": "main",
	}
	if !r.Draft {
		out["published_at"] = r.PublishedAt.UTC().Format(time.RFC3339)
	}
	var assets []map[string]any
	for _, a := range r.Assets {
		assets = append(assets, s.assetJSON(a, host))
	}
	if assets == nil {
		assets = []map[string]any{}
	}
	out["assets"] = assets
	return out
}

func (s *Server) assetJSON(a *Asset, host string) map[string]any {
	out := map[string]any{
		"id": a.ID, "name": a.Name, "state": a.State, "content_type": a.ContentType,
		"size": len(a.Content), "created_at": a.CreatedAt.UTC().Format(time.RFC3339),
		"url":                  "http://" + host + "/api/v3/repos/" + s.Owner + "/" + s.Repo + "/releases/assets/" + strconv.FormatInt(a.ID, 10),
		"browser_download_url": "http://" + host + "/downloads/" + strconv.FormatInt(a.ID, 10) + "/" + url.PathEscape(a.Name),
	}
	if !s.omitDigest && a.State == "uploaded" {
		sum := sha256.Sum256(a.Content)
		out["digest"] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// visible lists the releases the request may see, newest first as GitHub does.
func (s *Server) visible(r *http.Request) []*Release {
	var out []*Release
	for i := len(s.releases) - 1; i >= 0; i-- {
		if rel := s.releases[i]; !rel.Draft || isAuthorized(r) {
			out = append(out, rel)
		}
	}
	return out
}

func (s *Server) releaseByID(idText string) *Release {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return nil
	}
	for _, r := range s.releases {
		if r.ID == id {
			return r
		}
	}
	return nil
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, rel := range s.visible(r) {
		out = append(out, s.releaseJSON(rel, r.Host))
	}
	paginate(w, r, out)
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rel := s.releaseByID(r.PathValue("id"))
	if rel == nil || (rel.Draft && !isAuthorized(r)) {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.releaseJSON(rel, r.Host))
}

func (s *Server) releaseByTag(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rel := range s.visible(r) {
		if rel.Tag == r.PathValue("tag") && !rel.Draft { // GitHub does not find drafts by tag
			writeJSON(w, http.StatusOK, s.releaseJSON(rel, r.Host))
			return
		}
	}
	apiError(w, http.StatusNotFound, "Not Found")
}

func (s *Server) latestRelease(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rel := range s.releases {
		if rel.ID == s.latestID && !rel.Draft && !rel.Prerelease {
			writeJSON(w, http.StatusOK, s.releaseJSON(rel, r.Host))
			return
		}
	}
	apiError(w, http.StatusNotFound, "Not Found")
}

type releaseRequest struct {
	TagName    *string `json:"tag_name"`
	Name       *string `json:"name"`
	Body       *string `json:"body"`
	Draft      *bool   `json:"draft"`
	Prerelease *bool   `json:"prerelease"`
	MakeLatest *string `json:"make_latest"`
}

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request) {
	var req releaseRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.TagName == nil || *req.TagName == "" {
		apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "Release", "code": "missing_field", "field": "tag_name"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	draft := req.Draft != nil && *req.Draft
	for _, rel := range s.releases {
		if rel.Tag == *req.TagName && !rel.Draft && !draft {
			apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "Release", "code": "already_exists", "field": "tag_name"})
			return
		}
	}
	rel := &Release{ID: s.id(), Tag: *req.TagName, Name: deref(req.Name), Body: deref(req.Body), Draft: draft,
		Prerelease: req.Prerelease != nil && *req.Prerelease, CreatedAt: s.now()}
	if !draft {
		rel.PublishedAt = s.now()
		s.markLatest(rel, req.MakeLatest)
	}
	s.releases = append(s.releases, rel)
	writeJSON(w, http.StatusCreated, s.releaseJSON(rel, r.Host))
}

// markLatest applies make_latest to a release being published; s.mu is held.
func (s *Server) markLatest(rel *Release, makeLatest *string) {
	switch {
	case rel.Prerelease:
	case makeLatest != nil && *makeLatest == "true":
		s.latestID = rel.ID
	case makeLatest != nil && *makeLatest == "false":
	case s.latestID == 0: // "legacy": the first published release
		s.latestID = rel.ID
	}
}

func (s *Server) updateRelease(w http.ResponseWriter, r *http.Request) {
	var req releaseRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rel := s.releaseByID(r.PathValue("id"))
	if rel == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	if req.Name != nil {
		rel.Name = *req.Name
	}
	if req.Body != nil {
		rel.Body = *req.Body
	}
	if req.Prerelease != nil {
		rel.Prerelease = *req.Prerelease
	}
	if req.Draft != nil && !*req.Draft && rel.Draft {
		for _, other := range s.releases {
			if other != rel && other.Tag == rel.Tag && !other.Draft {
				apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "Release", "code": "already_exists", "field": "tag_name"})
				return
			}
		}
		rel.Draft = false
		rel.PublishedAt = s.now()
		s.markLatest(rel, req.MakeLatest)
	} else if !rel.Draft && req.MakeLatest != nil && *req.MakeLatest == "true" && !rel.Prerelease {
		s.latestID = rel.ID
	}
	writeJSON(w, http.StatusOK, s.releaseJSON(rel, r.Host))
}

func (s *Server) listAssets(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rel := s.releaseByID(r.PathValue("id"))
	if rel == nil || (rel.Draft && !isAuthorized(r)) {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	var out []map[string]any
	for _, a := range rel.Assets {
		out = append(out, s.assetJSON(a, r.Host))
	}
	paginate(w, r, out)
}

// findAsset returns an asset by ID and its release; s.mu is held.
func (s *Server) findAsset(idText string) (*Release, *Asset) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return nil, nil
	}
	for _, rel := range s.releases {
		for _, a := range rel.Assets {
			if a.ID == id {
				return rel, a
			}
		}
	}
	return nil, nil
}

func (s *Server) getAsset(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rel, a := s.findAsset(r.PathValue("id"))
	if a == nil || (rel.Draft && !isAuthorized(r)) {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/octet-stream") {
		w.Header().Set("Location", "http://"+r.Host+"/downloads/"+strconv.FormatInt(a.ID, 10)+"/"+url.PathEscape(a.Name))
		w.WriteHeader(http.StatusFound)
		return
	}
	writeJSON(w, http.StatusOK, s.assetJSON(a, r.Host))
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, a := s.findAsset(r.PathValue("id"))
	var content []byte
	if a != nil {
		content = a.Content
	}
	s.mu.Unlock()
	if a == nil || a.Name != r.PathValue("name") {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	_, _ = w.Write(content)
}

func (s *Server) deleteAsset(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rel, a := s.findAsset(r.PathValue("id"))
	if a == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	rel.Assets = slices.DeleteFunc(rel.Assets, func(x *Asset) bool { return x == a })
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "ReleaseAsset", "code": "missing_field", "field": "name"})
		return
	}
	if r.ContentLength < 0 {
		apiError(w, http.StatusLengthRequired, "Content-Length required")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	if int64(len(body)) != r.ContentLength {
		apiError(w, http.StatusBadRequest, "body shorter than Content-Length")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rel := s.releaseByID(r.PathValue("id"))
	if rel == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	for _, a := range rel.Assets {
		if a.Name == name {
			apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"})
			return
		}
	}
	a := &Asset{ID: s.id(), Name: name, State: "uploaded", ContentType: r.Header.Get("Content-Type"), Content: body, CreatedAt: s.now()}
	rel.Assets = append(rel.Assets, a)
	writeJSON(w, http.StatusCreated, s.assetJSON(a, r.Host))
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// ---- git model: refs, contents, pulls ----

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"id": 1, "name": s.Repo, "full_name": s.Owner + "/" + s.Repo, "default_branch": s.defBranch,
		"owner": map[string]any{"login": s.Owner},
	})
}

func (s *Server) refJSON(branch, sha string) map[string]any {
	return map[string]any{"ref": "refs/heads/" + branch, "object": map[string]any{"sha": sha, "type": "commit"}}
}

func (s *Server) getRef(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := r.PathValue("branch")
	sha, ok := s.refs[b]
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.refJSON(b, sha))
}

func (s *Server) createRef(w http.ResponseWriter, r *http.Request) {
	var req struct{ Ref, SHA string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	b, ok := strings.CutPrefix(req.Ref, "refs/heads/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || b == "" {
		apiError(w, http.StatusUnprocessableEntity, "Reference name is invalid")
		return
	}
	if _, exists := s.refs[b]; exists {
		apiError(w, http.StatusUnprocessableEntity, "Reference already exists")
		return
	}
	if _, ok := s.commits[req.SHA]; !ok {
		apiError(w, http.StatusUnprocessableEntity, "Object does not exist")
		return
	}
	s.refs[b] = req.SHA
	writeJSON(w, http.StatusCreated, s.refJSON(b, req.SHA))
}

func (s *Server) updateRef(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SHA   string
		Force bool
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := r.PathValue("branch")
	cur, ok := s.refs[b]
	if !ok {
		apiError(w, http.StatusUnprocessableEntity, "Reference does not exist")
		return
	}
	if _, ok := s.commits[req.SHA]; !ok {
		apiError(w, http.StatusUnprocessableEntity, "Object does not exist")
		return
	}
	if !req.Force && !s.ancestor(cur, req.SHA) {
		apiError(w, http.StatusUnprocessableEntity, "Update is not a fast forward")
		return
	}
	s.refs[b] = req.SHA
	writeJSON(w, http.StatusOK, s.refJSON(b, req.SHA))
}

// ancestor reports whether a is b or one of its ancestors; s.mu is held.
func (s *Server) ancestor(a, b string) bool {
	for c := b; c != ""; c = s.commits[c].parent {
		if c == a {
			return true
		}
	}
	return false
}

// branchOf resolves ?ref= (a branch, "heads/<branch>" or empty for the default branch).
func (s *Server) branchOf(ref string) string {
	ref = strings.TrimPrefix(strings.TrimPrefix(ref, "refs/"), "heads/")
	if ref == "" {
		return s.defBranch
	}
	return ref
}

func (s *Server) contentJSON(path string, content []byte) map[string]any {
	name := path[strings.LastIndex(path, "/")+1:]
	return map[string]any{
		"type": "file", "encoding": "base64", "size": len(content), "name": name, "path": path,
		"content": base64.StdEncoding.EncodeToString(content), "sha": blobSHA(content),
	}
}

func (s *Server) getContents(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.branchOf(r.URL.Query().Get("ref"))
	sha, ok := s.refs[b]
	if !ok {
		apiError(w, http.StatusNotFound, "No commit found for the ref "+b)
		return
	}
	p := r.PathValue("path")
	content, ok := s.commits[sha].files[p]
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.contentJSON(p, content))
}

func (s *Server) putContents(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Message string  `json:"message"`
		Content *string `json:"content"`
		SHA     string  `json:"sha"`
		Branch  string  `json:"branch"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Content == nil || req.Message == "" {
		apiError(w, http.StatusUnprocessableEntity, "Invalid request: message and content are required")
		return
	}
	content, err := base64.StdEncoding.DecodeString(*req.Content)
	if err != nil {
		apiError(w, http.StatusUnprocessableEntity, "content is not valid Base64")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.branchOf(req.Branch)
	parent, ok := s.refs[b]
	if !ok {
		apiError(w, http.StatusNotFound, "Branch "+b+" not found")
		return
	}
	p := r.PathValue("path")
	old, exists := s.commits[parent].files[p]
	switch {
	case exists && req.SHA == "":
		apiError(w, http.StatusUnprocessableEntity, `Invalid request. "sha" wasn't supplied.`)
		return
	case exists && req.SHA != blobSHA(old):
		apiError(w, http.StatusConflict, p+" does not match "+req.SHA)
		return
	}
	files := cloneFiles(s.commits[parent].files)
	files[p] = content
	c := s.newCommit(parent, req.Message, files)
	s.refs[b] = c.sha
	status := http.StatusCreated
	if exists {
		status = http.StatusOK
	}
	writeJSON(w, status, map[string]any{
		"content": s.contentJSON(p, content),
		"commit":  map[string]any{"sha": c.sha, "message": c.message},
	})
}

func (s *Server) pullJSON(p *Pull, host string) map[string]any {
	return map[string]any{
		"number": p.Number, "title": p.Title, "body": p.Body, "state": p.State,
		"html_url": "http://" + host + "/" + s.Owner + "/" + s.Repo + "/pull/" + strconv.Itoa(p.Number),
		"head":     map[string]any{"ref": p.Head, "label": s.Owner + ":" + p.Head},
		"base":     map[string]any{"ref": p.Base, "label": s.Owner + ":" + p.Base},
	}
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, p := range s.pulls {
		if (state != "all" && p.State != state) ||
			(q.Get("head") != "" && q.Get("head") != s.Owner+":"+p.Head) ||
			(q.Get("base") != "" && q.Get("base") != p.Base) {
			continue
		}
		out = append(out, s.pullJSON(p, r.Host))
	}
	paginate(w, r, out)
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	var req struct{ Title, Head, Base, Body string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Title == "" || req.Head == "" || req.Base == "" {
		apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "PullRequest", "code": "missing_field"})
		return
	}
	head := strings.TrimPrefix(req.Head, s.Owner+":")
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, ok1 := s.refs[head]
	bs, ok2 := s.refs[req.Base]
	if !ok1 || !ok2 {
		apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "PullRequest", "code": "invalid", "field": "head"})
		return
	}
	if hs == bs {
		apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "PullRequest", "code": "custom", "message": "No commits between " + req.Base + " and " + head})
		return
	}
	for _, p := range s.pulls {
		if p.Head == head && p.Base == req.Base && p.State == "open" {
			apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for " + s.Owner + ":" + head + "."})
			return
		}
	}
	p := &Pull{Number: len(s.pulls) + 1, Title: req.Title, Body: req.Body, Head: head, Base: req.Base, State: "open"}
	s.pulls = append(s.pulls, p)
	writeJSON(w, http.StatusCreated, s.pullJSON(p, r.Host))
}

func (s *Server) updatePull(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	n, _ := strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pulls {
		if p.Number == n {
			if req.Title != nil {
				p.Title = *req.Title
			}
			if req.Body != nil {
				p.Body = *req.Body
			}
			writeJSON(w, http.StatusOK, s.pullJSON(p, r.Host))
			return
		}
	}
	apiError(w, http.StatusNotFound, "Not Found")
}
