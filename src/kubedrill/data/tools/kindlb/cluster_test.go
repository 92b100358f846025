package main

import (
	"context"
	"errors"
	"net"
	"testing"
)

func staticCluster(addrs ...string) *ClusterState {
	cfg := Cluster{Name: "c", Type: "STATIC", LookupFamily: "AUTO", Health: &HealthCheck{}}
	resolved := map[Endpoint][]string{}
	for i, a := range addrs {
		ep := Endpoint{Host: a, Port: 6443 + i}
		cfg.Endpoints = append(cfg.Endpoints, ep)
		resolved[ep] = []string{net.JoinHostPort(a, "6443")}
	}
	c := newClusterState(cfg)
	c.setHosts(resolved)
	return c
}

func markHealthy(c *ClusterState, healthy ...bool) {
	for i, h := range c.Hosts() {
		h.health = newHealthState(true)
		if healthy[i] {
			h.health.Success(1)
		}
	}
}

func TestRoundRobinOverHealthyHostsOnly(t *testing.T) {
	c := staticCluster("10.0.0.1", "10.0.0.2", "10.0.0.3")
	markHealthy(c, true, false, true)
	counts := map[string]int{}
	var order []string
	for i := 0; i < 6; i++ {
		h := c.Pick()
		counts[h.Addr]++
		order = append(order, h.Addr)
	}
	if counts["10.0.0.2:6443"] != 0 || counts["10.0.0.1:6443"] != 3 || counts["10.0.0.3:6443"] != 3 {
		t.Fatalf("counts %v", counts)
	}
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1] {
			t.Fatalf("not alternating: %v", order)
		}
	}
}

func TestNoHealthyHostPicksNothing(t *testing.T) {
	c := staticCluster("10.0.0.1", "10.0.0.2")
	markHealthy(c, false, false)
	if h := c.Pick(); h != nil {
		t.Fatalf("picked %s", h.Addr)
	}
}

func TestNewHostsAreNotPickedBeforeTheirFirstCheck(t *testing.T) {
	c := staticCluster("10.0.0.1")
	if h := c.Pick(); h != nil {
		t.Fatal("picked a pending host")
	}
}

func TestSetHostsKeepsStateOfHostsThatStay(t *testing.T) {
	c := staticCluster("10.0.0.1", "10.0.0.2")
	markHealthy(c, true, true)
	c.Hosts()[0].CxTotal.Add(7)
	ep1, ep3 := c.cfg.Endpoints[0], Endpoint{Host: "10.0.0.3", Port: 6443}
	c.cfg.Endpoints = []Endpoint{ep1, ep3}
	added, removed := c.setHosts(map[Endpoint][]string{ep1: {"10.0.0.1:6443"}, ep3: {"10.0.0.3:6443"}})
	if len(added) != 1 || added[0].Addr != "10.0.0.3:6443" || len(removed) != 1 || removed[0].Addr != "10.0.0.2:6443" {
		t.Fatalf("added %v removed %v", added, removed)
	}
	hosts := c.Hosts()
	if hosts[0].CxTotal.Load() != 7 || !hosts[0].State().Healthy() || hosts[1].State().Healthy() {
		t.Fatal("state of a staying host lost, or a new host healthy")
	}
}

func TestFailedLookupKeepsTheLastAnswer(t *testing.T) {
	cfg := Cluster{Name: "c", Type: "STRICT_DNS", LookupFamily: "V4_PREFERRED",
		Endpoints: []Endpoint{{"cp1", 6443}, {"cp2", 6443}}}
	c := newClusterState(cfg)
	up := map[string]bool{"cp1": true, "cp2": true}
	resolve := func(_ context.Context, name string) ([]net.IP, error) {
		if !up[name] {
			return nil, errors.New("no such host")
		}
		if name == "cp1" {
			return []net.IP{net.ParseIP("fc00::1"), net.ParseIP("10.0.0.1")}, nil
		}
		return []net.IP{net.ParseIP("10.0.0.2")}, nil
	}
	c.setHosts(c.resolveAll(context.Background(), resolve))
	up["cp2"] = false // a stopped kind node leaves the network's DNS
	c.setHosts(c.resolveAll(context.Background(), resolve))
	hosts := c.Hosts()
	if len(hosts) != 2 || hosts[0].Addr != "10.0.0.1:6443" || hosts[1].Addr != "10.0.0.2:6443" || hosts[1].Hostname != "cp2" {
		t.Fatalf("hosts %v %v", hosts[0].Addr, hosts)
	}
}

func TestLookupFamilies(t *testing.T) {
	ips := []net.IP{net.ParseIP("fc00::1"), net.ParseIP("10.0.0.1")}
	for family, want := range map[string]string{"V4_PREFERRED": "10.0.0.1", "AUTO": "fc00::1", "V4_ONLY": "10.0.0.1", "V6_ONLY": "fc00::1"} {
		got := pickFamily(family, ips)
		if len(got) != 1 || got[0].String() != want {
			t.Errorf("%s: %v", family, got)
		}
	}
	if got := pickFamily("V4_PREFERRED", ips[:1]); len(got) != 1 {
		t.Error("V4_PREFERRED without IPv4 gave nothing")
	}
}
