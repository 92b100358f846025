package main

// A cluster at run time: its hosts (endpoints after name resolution), their health and
// counters, and round-robin selection over the healthy ones.

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Host is one backend address with Envoy's per-host counters.
type Host struct {
	Addr     string // "ip:port"
	Hostname string // the name it was resolved from ("" for STATIC)

	CxActive      atomic.Int64
	CxTotal       atomic.Uint64
	CxConnectFail atomic.Uint64

	mu     sync.Mutex
	health HealthState
	cancel context.CancelFunc // stops its checker
}

func (h *Host) State() HealthState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.health
}

// resolver returns the addresses a name stands for; swapped out in tests.
type resolver func(ctx context.Context, host string) ([]net.IP, error)

func systemResolve(ctx context.Context, host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	return ips, nil
}

// pickFamily applies dns_lookup_family to a lookup's answers, keeping their order.
func pickFamily(family string, ips []net.IP) []net.IP {
	var v4, v6 []net.IP
	for _, ip := range ips {
		if ip.To4() != nil {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	switch family {
	case "V4_ONLY":
		return v4
	case "V6_ONLY":
		return v6
	case "V4_PREFERRED":
		if len(v4) > 0 {
			return v4
		}
		return v6
	case "ALL":
		return append(v4, v6...)
	default: // AUTO: IPv6 preferred
		if len(v6) > 0 {
			return v6
		}
		return v4
	}
}

// ClusterState is the live side of a Cluster.
type ClusterState struct {
	mu         sync.Mutex
	cfg        Cluster
	hosts      []*Host // resolution order; the /clusters order
	byEndpoint map[Endpoint][]string
	failing    map[Endpoint]bool // lookups failing now: logged when that starts and ends
	rr         uint64
	sawTraffic atomic.Bool
}

func newClusterState(cfg Cluster) *ClusterState {
	return &ClusterState{cfg: cfg, byEndpoint: map[Endpoint][]string{}, failing: map[Endpoint]bool{}}
}

func (c *ClusterState) Config() Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

func (c *ClusterState) Hosts() []*Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Host(nil), c.hosts...)
}

// resolveAll looks every endpoint up again. A lookup that fails keeps that endpoint's last
// answer, as Envoy's STRICT_DNS does: a stopped kind node drops out of the network's DNS, and
// it must stay in the cluster, marked failed, rather than vanish.
func (c *ClusterState) resolveAll(ctx context.Context, resolve resolver) map[Endpoint][]string {
	cfg := c.Config()
	c.mu.Lock()
	previous := make(map[Endpoint][]string, len(c.byEndpoint))
	for k, v := range c.byEndpoint {
		previous[k] = v
	}
	c.mu.Unlock()
	out := map[Endpoint][]string{}
	for _, ep := range cfg.Endpoints {
		lookupCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := resolve(lookupCtx, ep.Host)
		cancel()
		c.mu.Lock()
		wasFailing := c.failing[ep]
		c.failing[ep] = err != nil
		c.mu.Unlock()
		if err != nil {
			if old, ok := previous[ep]; ok {
				out[ep] = old
			}
			if !wasFailing {
				logf("cluster %s: cannot resolve %s: %v (keeping %d known address(es))", cfg.Name, ep.Host, err, len(previous[ep]))
			}
			continue
		}
		if wasFailing {
			logf("cluster %s: %s resolves again", cfg.Name, ep.Host)
		}
		if cfg.Type == "LOGICAL_DNS" && len(ips) > 1 {
			ips = ips[:1]
		}
		for _, ip := range pickFamily(cfg.LookupFamily, ips) {
			out[ep] = append(out[ep], net.JoinHostPort(ip.String(), strconv.Itoa(ep.Port)))
		}
	}
	return out
}

// setHosts makes the host list match the resolved addresses: hosts that stay keep their
// health and counters; new ones start as newHealthState says. It returns the added and the
// removed hosts so that the caller starts and stops their checkers.
func (c *ClusterState) setHosts(resolved map[Endpoint][]string) (added, removed []*Host) {
	c.mu.Lock()
	defer c.mu.Unlock()
	existing := map[string]*Host{}
	for _, h := range c.hosts {
		existing[h.Addr] = h
	}
	var next []*Host
	keep := map[string]bool{}
	for _, ep := range c.cfg.Endpoints {
		for _, addr := range resolved[ep] {
			if keep[addr] {
				continue
			}
			keep[addr] = true
			if h, ok := existing[addr]; ok {
				next = append(next, h)
				continue
			}
			hostname := "" // Envoy names DNS-typed hosts by their endpoint address, STATIC ones not
			if c.cfg.Type != "STATIC" {
				hostname = ep.Host
			}
			h := &Host{Addr: addr, Hostname: hostname, health: newHealthState(c.cfg.Health != nil)}
			next = append(next, h)
			added = append(added, h)
		}
	}
	for _, h := range c.hosts {
		if !keep[h.Addr] {
			removed = append(removed, h)
		}
	}
	c.hosts = next
	c.byEndpoint = resolved
	return added, removed
}

// Pick returns the next healthy host in round-robin order, or nil when none is healthy.
// Unlike Envoy, there is no panic mode (Envoy spreads over every host once fewer than half are
// healthy): a connection is never sent to a backend the health check has failed.
func (c *ClusterState) Pick() *Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	healthy := make([]*Host, 0, len(c.hosts))
	for _, h := range c.hosts {
		if h.State().Healthy() {
			healthy = append(healthy, h)
		}
	}
	if len(healthy) == 0 {
		return nil
	}
	h := healthy[c.rr%uint64(len(healthy))]
	c.rr++
	return h
}
