package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The models each simulator serves; distinct names keep every model on one backend.
const (
	modelVLLM   = "bench-vllm"   // instant answers, vLLM dialect
	modelOllama = "bench-ollama" // instant answers, Ollama dialect
	modelPaced  = "bench-paced"  // paced streams, vLLM dialect
)

// Paced simulator settings for the streaming measurement.
const (
	pacedTTFT = 50 * time.Millisecond
	pacedITL  = 20 * time.Millisecond
)

// backendConcurrency is the max_concurrent set on every backend so that the
// gateway's own slot limit (default 4) never queues the benchmark's load.
const backendConcurrency = 4096

// sim is one simulator process.
type sim struct {
	proc *process
	url  string
}

// stack is the system under test: three simulators, a control plane and a data plane.
type stack struct {
	dir      string
	adminKey string
	keys     []string // inference keys of the benchmark users
	cpREST   string
	dpURL    string
	sims     map[string]*sim // by model
	cp, dp   *process
	// dpOff is a second data plane on the same control plane with -audit=off,
	// for the audit on/off comparison (dpOffURL).
	dpOff    *process
	dpOffURL string
	// proxy is the bare reverse proxy in front of the instant vLLM
	// simulator: the floor a proxy hop costs (proxyhop.go).
	proxy    *process
	proxyURL string
	pprof    map[string]string // process name -> pprof base URL, when profiling
}

// startStack builds nothing: bin holds the binaries. It starts everything on
// loopback ports and waits until every model answers through the gateway.
func startStack(ctx context.Context, bin, dir string, withPprof bool, users int) (*stack, error) {
	s := &stack{dir: dir, sims: map[string]*sim{}, pprof: map[string]string{}}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s.adminKey = "mr2_" + base64.RawURLEncoding.EncodeToString(key)

	pprofEnv := func(name string) ([]string, error) {
		if !withPprof {
			return nil, nil
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.pprof[name] = "http://127.0.0.1:" + port
		return []string{"MINDROUTER_LOADBENCH_PPROF=127.0.0.1:" + port}, nil
	}
	simSpecs := []struct {
		model, engine, health string
		extra                 []string
	}{
		{modelVLLM, "vllm", "/health", nil},
		{modelOllama, "ollama", "/", nil},
		{modelPaced, "vllm", "/health", []string{"-ttft", pacedTTFT.String(), "-itl", pacedITL.String(), "-tokens", "400"}},
	}
	var seeds []string
	for _, sp := range simSpecs {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		env, err := pprofEnv("sim-" + sp.model)
		if err != nil {
			return nil, err
		}
		args := append([]string{"-listen", "127.0.0.1:" + port, "-engine", sp.engine, "-models", sp.model}, sp.extra...)
		p, err := startProcess("sim-"+sp.model, filepath.Join(bin, "mindrouter-enginesim"), args, env,
			filepath.Join(dir, "sim-"+sp.model+".log"))
		if err != nil {
			return nil, err
		}
		sm := &sim{proc: p, url: "http://127.0.0.1:" + port}
		s.sims[sp.model] = sm
		if err := waitHTTP(ctx, sm.url+sp.health, p); err != nil {
			return nil, err
		}
		seeds = append(seeds, sp.model+"="+sp.engine+":"+sm.url)
	}

	if err := s.startProxyHop(ctx, dir); err != nil {
		return nil, err
	}
	grpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	restPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s.cpREST, s.dpURL = "http://127.0.0.1:"+restPort, "http://127.0.0.1:"+dpPort
	cpDir := filepath.Join(dir, "cp")
	if err := os.MkdirAll(cpDir, 0o700); err != nil {
		return nil, err
	}
	env, err := pprofEnv("controlplane")
	if err != nil {
		return nil, err
	}
	s.cp, err = startProcess("controlplane", filepath.Join(bin, "mindrouter-controlplane"), []string{
		"-grpc-listen", "127.0.0.1:" + grpcPort, "-rest-listen", "127.0.0.1:" + restPort,
		"-data-dir", cpDir, "-admin-api-key", s.adminKey, "-seed-backends", strings.Join(seeds, ","),
		"-log-format", "json", "-log-level", "info",
	}, env, filepath.Join(dir, "cp.log"))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.cpREST+"/readyz", s.cp); err != nil {
		return nil, err
	}
	env, err = pprofEnv("dataplane")
	if err != nil {
		return nil, err
	}
	s.dp, err = startProcess("dataplane", filepath.Join(bin, "mindrouter-dataplane"), []string{
		"-listen", "127.0.0.1:" + dpPort, "-controlplane-addr", "127.0.0.1:" + grpcPort,
		"-cluster-token-file", filepath.Join(cpDir, "cluster-token"), "-log-format", "json", "-log-level", "info",
	}, env, filepath.Join(dir, "dp.log"))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.dpURL+"/readyz", s.dp); err != nil {
		return nil, err
	}
	offPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s.dpOffURL = "http://127.0.0.1:" + offPort
	s.dpOff, err = startProcess("dataplane-audit-off", filepath.Join(bin, "mindrouter-dataplane"), []string{
		"-listen", "127.0.0.1:" + offPort, "-controlplane-addr", "127.0.0.1:" + grpcPort, "-audit", "off",
		"-cluster-token-file", filepath.Join(cpDir, "cluster-token"), "-log-format", "json", "-log-level", "info",
	}, nil, filepath.Join(dir, "dp-audit-off.log"))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.dpOffURL+"/readyz", s.dpOff); err != nil {
		return nil, err
	}
	if err := s.raiseConcurrency(ctx); err != nil {
		return nil, err
	}
	if err := s.createUsers(ctx, users); err != nil {
		return nil, err
	}
	if err := s.waitModels(ctx); err != nil {
		return nil, err
	}
	if err := s.warmKeys(ctx); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// raiseConcurrency sets every backend's max_concurrent to backendConcurrency.
func (s *stack) raiseConcurrency(ctx context.Context) error {
	var backends []struct {
		ID   json.RawMessage `json:"id"`
		Name string          `json:"name"`
	}
	if err := s.admin(ctx, http.MethodGet, "/api/admin/backends", nil, &backends); err != nil {
		return err
	}
	if len(backends) != len(s.sims) {
		return fmt.Errorf("the control plane lists %d backends, want %d", len(backends), len(s.sims))
	}
	for _, b := range backends {
		id := strings.Trim(string(b.ID), `"`)
		body := map[string]any{"max_concurrent": backendConcurrency}
		if err := s.admin(ctx, http.MethodPatch, "/api/admin/backends/"+id, body, nil); err != nil {
			return fmt.Errorf("raise max_concurrent of %q: %w", b.Name, err)
		}
	}
	return nil
}

// createUsers creates n users in the admin group, each with an inference key.
// The control plane caps the reservations (queued or in flight) of one user at
// 32, so the load is spread over several users; the admin group has no token
// budget and no RPM limit, so the quota code reserves and settles every request
// but refuses none.
func (s *stack) createUsers(ctx context.Context, n int) error {
	var groups []struct {
		ID   json.RawMessage `json:"id"`
		Name string          `json:"name"`
	}
	if err := s.admin(ctx, http.MethodGet, "/api/admin/groups", nil, &groups); err != nil {
		return err
	}
	var group string
	for _, g := range groups {
		if g.Name == "admin" {
			group = strings.Trim(string(g.ID), `"`)
		}
	}
	if group == "" {
		return fmt.Errorf("no admin group among %d groups", len(groups))
	}
	for i := range n {
		pw := make([]byte, 12)
		if _, err := rand.Read(pw); err != nil {
			return err
		}
		var user struct {
			ID json.RawMessage `json:"id"`
		}
		name := fmt.Sprintf("bench%03d", i)
		if err := s.admin(ctx, http.MethodPost, "/api/admin/users", map[string]any{
			"username": name, "email": name + "@localhost", "password": base64.RawURLEncoding.EncodeToString(pw),
			"group_id": json.RawMessage(group), "full_name": "loadbench user",
		}, &user); err != nil {
			return fmt.Errorf("create user %s: %w", name, err)
		}
		var key struct {
			FullKey string `json:"full_key"`
		}
		id := strings.Trim(string(user.ID), `"`)
		if err := s.admin(ctx, http.MethodPost, "/api/admin/users/"+id+"/api-keys", map[string]any{
			"name": "loadbench", "scopes": []string{"inference"},
		}, &key); err != nil {
			return fmt.Errorf("create a key for %s: %w", name, err)
		}
		if key.FullKey == "" {
			return fmt.Errorf("create a key for %s: no full_key in the answer", name)
		}
		s.keys = append(s.keys, key.FullKey)
	}
	return nil
}

// warmKeys sends one request with every key so that each is verified (Argon2id)
// before anything is timed.
func (s *stack) warmKeys(ctx context.Context) error {
	spec := gatewayChat(s, modelVLLM, false, 2)
	for i := range s.keys {
		status, err := spec.forWorker(i).once(ctx, http.DefaultClient)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("key %d of %d: status %d, %w", i+1, len(s.keys), status, err)
		}
	}
	return nil
}

// waitModels sends one request per model through the gateway until each answers 200.
func (s *stack) waitModels(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, model := range []string{modelVLLM, modelOllama, modelPaced} {
		spec := gatewayChat(s, model, false, 2)
		for {
			status, err := spec.once(ctx, http.DefaultClient)
			if err == nil && status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("model %s does not answer through the gateway (status %d, %w):\n%s", model, status, err, s.dp.tail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// admin calls the control plane's REST admin API with the admin key.
func (s *stack) admin(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.cpREST+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return nil
}

// procs lists the processes whose CPU and memory the report shows, in order.
func (s *stack) procs() []namedPID {
	return []namedPID{
		{"data plane", s.dp.pid()}, {"control plane", s.cp.pid()},
		{"sim (instant vLLM)", s.sims[modelVLLM].proc.pid()},
		{"sim (instant Ollama)", s.sims[modelOllama].proc.pid()},
		{"sim (paced)", s.sims[modelPaced].proc.pid()},
		{"proxy hop", s.proxy.pid()},
		{"load generator", os.Getpid()},
	}
}

// close stops the data plane, the control plane and the simulators.
func (s *stack) close() {
	for _, p := range []*process{s.dpOff, s.dp, s.cp, s.proxy} {
		if p != nil {
			p.stop()
		}
	}
	for _, sm := range s.sims {
		sm.proc.stop()
	}
}
