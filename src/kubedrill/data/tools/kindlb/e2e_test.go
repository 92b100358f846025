package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// backend answers every connection with its name.
func backend(t *testing.T, name string) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, name+"\n")
			c.Close()
		}
	}()
	return "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type fakeProbe struct {
	mu   sync.Mutex
	down map[string]bool
}

func (f *fakeProbe) check(_ context.Context, _ HealthCheck, addr string) (FailureKind, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[addr] {
		return FailNetwork, fmt.Errorf("connection refused")
	}
	return 0, nil
}

func (f *fakeProbe) set(addr string, down bool) {
	f.mu.Lock()
	f.down[addr] = down
	f.mu.Unlock()
}

func clustersText(m *Manager) string {
	var b strings.Builder
	writeClustersText(&b, m)
	return b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dialName(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestProxyRoutesRoundRobinAndSkipsAFailedBackend(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	probe := &fakeProbe{down: map[string]bool{}}
	m := NewManager(ctx, systemResolve, probe.check)
	cluster := Cluster{Name: "kube_apiservers", ConnectTimeout: time.Second, Type: "STATIC", LookupFamily: "AUTO",
		Health: &HealthCheck{Timeout: 100 * time.Millisecond, Interval: 20 * time.Millisecond, NoTrafficInterval: 20 * time.Millisecond,
			UnhealthyThreshold: 2, HealthyThreshold: 1, HTTPPath: "/healthz"}}
	addrs := map[string]string{}
	for _, name := range []string{"b1", "b2", "b3"} {
		host, port := backend(t, name)
		cluster.Endpoints = append(cluster.Endpoints, Endpoint{host, port})
		addrs[name] = net.JoinHostPort(host, strconv.Itoa(port))
	}
	m.ApplyCDS([]Cluster{cluster})
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	if err := m.ApplyLDS([]Listener{{Name: "l", Address: listen, Cluster: "kube_apiservers", MaxConnectAttempts: 1}}); err != nil {
		t.Fatal(err)
	}
	defer m.ApplyLDS(nil)
	waitFor(t, "3 healthy hosts", func() bool { return strings.Count(clustersText(m), "::health_flags::healthy") == 3 })

	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		seen[dialName(t, listen)]++
	}
	if seen["b1"] != 2 || seen["b2"] != 2 || seen["b3"] != 2 {
		t.Fatalf("not round robin over 3: %v", seen)
	}

	probe.set(addrs["b2"], true)
	failed := "kube_apiservers::" + addrs["b2"] + "::health_flags::/failed_active_hc"
	waitFor(t, "b2 failed", func() bool { return strings.Contains(clustersText(m), failed) })
	seen = map[string]int{}
	for i := 0; i < 6; i++ {
		seen[dialName(t, listen)]++
	}
	if seen["b2"] != 0 || seen["b1"] != 3 || seen["b3"] != 3 {
		t.Fatalf("a failed backend got traffic or the others not alternating: %v", seen)
	}
	text := clustersText(m)
	for _, line := range []string{
		"kube_apiservers::observability_name::kube_apiservers\n",
		"kube_apiservers::default_priority::max_connections::1024\n",
		"kube_apiservers::added_via_api::true\n",
		"kube_apiservers::" + addrs["b1"] + "::cx_total::5\n",
		"kube_apiservers::" + addrs["b2"] + "::cx_total::2\n",
		"kube_apiservers::" + addrs["b1"] + "::cx_active::0\n",
		"kube_apiservers::" + addrs["b1"] + "::hostname::\n",
		"kube_apiservers::" + addrs["b1"] + "::health_flags::healthy\n",
		"kube_apiservers::" + addrs["b1"] + "::weight::1\n",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("/clusters lacks %q:\n%s", line, text)
		}
	}
	// stats come in name order, as Envoy prints them
	host := "kube_apiservers::" + addrs["b1"] + "::"
	if i, j := strings.Index(text, host+"cx_active"), strings.Index(text, host+"rq_total"); i < 0 || j < i {
		t.Error("stats out of order")
	}

	probe.set(addrs["b2"], false)
	waitFor(t, "b2 back", func() bool { return strings.Count(clustersText(m), "::health_flags::healthy") == 3 })

	m.ApplyCDS(nil) // the cluster goes: connections are closed, not routed
	if name := dialName(t, listen); name != "" {
		t.Fatalf("routed to %s without a cluster", name)
	}
}

func TestAdminServesClustersAndReady(t *testing.T) {
	m := NewManager(context.Background(), systemResolve, (&fakeProbe{down: map[string]bool{}}).check)
	srv := httptest.NewServer(adminHandler(m, "id", "kd-lb"))
	defer srv.Close()
	for path, want := range map[string]string{"/ready": "LIVE", "/clusters?format=json": "cluster_statuses"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
}

func TestRealProbeClassifiesFailures(t *testing.T) {
	status := http.StatusOK
	var gotHost string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost = r.Host
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	hc := HealthCheck{Timeout: 500 * time.Millisecond, HTTPPath: "/healthz", Host: "kube_apiservers", TLS: true}
	if _, err := runCheck(context.Background(), hc, addr); err != nil || gotHost != "kube_apiservers" {
		t.Fatalf("healthy server failed: %v (Host %q)", err, gotHost)
	}
	status = http.StatusInternalServerError
	if kind, err := runCheck(context.Background(), hc, addr); err == nil || kind != FailActive {
		t.Fatalf("500: %v %v", kind, err)
	}
	closed := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	if kind, err := runCheck(context.Background(), hc, closed); err == nil || kind != FailNetwork {
		t.Fatalf("closed port: %v %v", kind, err)
	}
	silent, _ := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	defer silent.Close()
	if kind, err := runCheck(context.Background(), hc, silent.Addr().String()); err == nil || kind != FailTimeout {
		t.Fatalf("silent server: %v %v", kind, err)
	}
	tcp := HealthCheck{Timeout: 500 * time.Millisecond, TCP: true}
	if _, err := runCheck(context.Background(), tcp, silent.Addr().String()); err != nil {
		t.Fatalf("tcp check of a listening port: %v", err)
	}
}
