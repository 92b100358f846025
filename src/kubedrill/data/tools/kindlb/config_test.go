package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBootstrapAsKindWritesIt(t *testing.T) {
	b, err := loadBootstrap("testdata/bootstrap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := b.AdminAddress()
	if b.CDSPath() != "/home/envoy/cds.yaml" || b.LDSPath() != "/home/envoy/lds.yaml" || admin != "0.0.0.0:10000" {
		t.Fatalf("got cds %q lds %q admin %q", b.CDSPath(), b.LDSPath(), admin)
	}
	if b.Node.ID != "kd-lb-external-load-balancer" || b.Node.Cluster != "kd-lb" {
		t.Fatalf("node %+v", b.Node)
	}
}

func TestBootstrapWithoutSourcesIsAnError(t *testing.T) {
	path := t.TempDir() + "/envoy.yaml"
	os.WriteFile(path, []byte("admin:\n  address:\n    socket_address: {address: 0.0.0.0, port_value: 10000}\n"), 0o644)
	if _, err := loadBootstrap(path); err == nil || !strings.Contains(err.Error(), "cds_config") {
		t.Fatalf("want a cds_config error, got %v", err)
	}
}

func TestLDS(t *testing.T) {
	ls, err := ParseLDS(read(t, "lds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Listener{Name: "listener_apiserver", Address: "0.0.0.0:6443", Cluster: "kube_apiservers", MaxConnectAttempts: 1}
	if len(ls) != 1 || ls[0] != want {
		t.Fatalf("got %+v", ls)
	}
}

func TestCDSCarriesKindsHealthCheck(t *testing.T) {
	cs, err := ParseCDS(read(t, "cds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("got %d clusters", len(cs))
	}
	c := cs[0]
	if c.Name != "kube_apiservers" || c.Type != "STRICT_DNS" || c.LookupFamily != "V4_PREFERRED" ||
		c.ConnectTimeout != 250*time.Millisecond || c.DNSRefresh != 5*time.Second {
		t.Fatalf("cluster %+v", c)
	}
	if len(c.Endpoints) != 3 || c.Endpoints[2] != (Endpoint{"kd-lb-control-plane3", 6443}) {
		t.Fatalf("endpoints %+v", c.Endpoints)
	}
	want := HealthCheck{
		Timeout: 3 * time.Second, Interval: 2 * time.Second, NoTrafficInterval: 3 * time.Second,
		UnhealthyThreshold: 2, HealthyThreshold: 1, HTTPPath: "/healthz", Host: "kube_apiservers", TLS: true,
	}
	if c.Health == nil || *c.Health != want {
		t.Fatalf("health %+v", c.Health)
	}
}

func TestEmptyResourcesIsAValidEmptySet(t *testing.T) {
	for _, parse := range []func([]byte) (int, error){
		func(b []byte) (int, error) { x, err := ParseCDS(b); return len(x), err },
		func(b []byte) (int, error) { x, err := ParseLDS(b); return len(x), err },
	} {
		if n, err := parse([]byte("resources: []")); err != nil || n != 0 {
			t.Fatalf("n=%d err=%v", n, err)
		}
	}
}

func TestHalfWrittenOrWrongFilesAreErrors(t *testing.T) {
	full := string(read(t, "cds.yaml"))
	cases := map[string]string{
		"empty":        "",
		"truncated":    full[:strings.Index(full, "health_checks")+30],
		"cut in a key": full[:strings.Index(full, "unhealthy_threshold")+5],
		"wrong type":   strings.Replace(full, "config.cluster.v3.Cluster", "config.listener.v3.Listener", 1),
		"bad duration": strings.Replace(full, "timeout: 3s", "timeout: 3", 1),
		"static name":  strings.Replace(full, "STRICT_DNS", "STATIC", 1),
	}
	for name, text := range cases {
		if _, err := ParseCDS([]byte(text)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestDurations(t *testing.T) {
	for text, want := range map[string]time.Duration{"0.25s": 250 * time.Millisecond, "3s": 3 * time.Second, "0s": 0} {
		if got, err := parseDuration(text); err != nil || got != want {
			t.Errorf("%s: got %v, %v", text, got, err)
		}
	}
	for _, bad := range []string{"3", "3ms", "-1s", "s"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestArgs(t *testing.T) {
	if c, err := parseArgs([]string{"-c", "/home/envoy/envoy.yaml"}); err != nil || c != "/home/envoy/envoy.yaml" {
		t.Fatal(c, err)
	}
	if c, err := parseArgs([]string{"--config-path=/x", "-l", "debug"}); err != nil || c != "/x" {
		t.Fatal(c, err)
	}
	if _, err := parseArgs([]string{"--bogus"}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}
