package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

// The physical floor: a bare HTTP reverse proxy (net/http/httputil.ReverseProxy,
// nothing else) in front of the same instant upstream, run in its own process
// (the harness's own binary, re-executed with proxyEnv set) so that its CPU is
// charged to it. A gateway figure divided by this hop's is how many bare proxy
// hops the gateway costs.

// proxyEnv, when set to "LISTEN TARGET", makes this binary run the bare proxy.
const proxyEnv = "MINDROUTER_LOADBENCH_PROXY"

// runProxyHop serves a reverse proxy on listen forwarding to target, with a
// keep-alive pool as large as the load generator's.
func runProxyHop(spec string) error {
	var listen, target string
	if _, err := fmt.Sscan(spec, &listen, &target); err != nil {
		return fmt.Errorf("%s=%q: want \"LISTEN TARGET\": %w", proxyEnv, spec, err)
	}
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("%s: target: %w", proxyEnv, err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	rp.FlushInterval = -1 // flush every write, as a streaming gateway must
	srv := &http.Server{Addr: listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// proxyHopMain runs the proxy and exits when this process was started as one.
func proxyHopMain() {
	spec := os.Getenv(proxyEnv)
	if spec == "" {
		return
	}
	err := runProxyHop(spec)
	fmt.Fprintln(os.Stderr, "mindrouter-loadbench proxy hop:", err)
	os.Exit(1)
}

// startProxyHop starts the bare proxy in front of the instant vLLM simulator.
func (s *stack) startProxyHop(ctx context.Context, dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.proxyURL = "http://127.0.0.1:" + port
	s.proxy, err = startProcess("proxy-hop", self, nil,
		[]string{proxyEnv + "=127.0.0.1:" + port + " " + s.sims[modelVLLM].url}, dir+"/proxy-hop.log")
	if err != nil {
		return err
	}
	return waitHTTP(ctx, s.proxyURL+"/health", s.proxy)
}

// proxyChat is directChat through the bare proxy hop (vLLM only).
func proxyChat(s *stack, stream bool, maxTokens int) reqSpec {
	return reqSpec{url: s.proxyURL + "/v1/chat/completions", body: openAIBody(modelVLLM, stream, maxTokens)}
}
