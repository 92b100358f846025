package main

// The manager applies CDS and LDS snapshots: it keeps one ClusterState per cluster (hosts
// survive a reload with their health), one health checker per host, a DNS refresh loop per
// cluster, and one listener per LDS resource.

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"sync"
	"time"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "%s %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"), fmt.Sprintf(format, args...))
}

type managedCluster struct {
	state      *ClusterState
	stopDNS    context.CancelFunc
	checkerCfg HealthCheck
}

// Manager owns the live configuration.
type Manager struct {
	ctx     context.Context
	resolve resolver
	probe   probe

	mu        sync.Mutex
	clusters  map[string]*managedCluster
	listeners map[string]*listenerRun
}

func NewManager(ctx context.Context, resolve resolver, check probe) *Manager {
	return &Manager{
		ctx: ctx, resolve: resolve, probe: check,
		clusters: map[string]*managedCluster{}, listeners: map[string]*listenerRun{},
	}
}

// Cluster returns the live cluster by name (nil when CDS does not define it).
func (m *Manager) Cluster(name string) *ClusterState {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mc, ok := m.clusters[name]; ok {
		return mc.state
	}
	return nil
}

// Clusters returns the live clusters sorted by name.
func (m *Manager) Clusters() []*ClusterState {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.clusters))
	for n := range m.clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*ClusterState, 0, len(names))
	for _, n := range names {
		out = append(out, m.clusters[n].state)
	}
	return out
}

// ApplyCDS replaces the cluster set.
func (m *Manager) ApplyCDS(clusters []Cluster) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wanted := map[string]bool{}
	for _, cfg := range clusters {
		wanted[cfg.Name] = true
		mc, ok := m.clusters[cfg.Name]
		if !ok {
			mc = &managedCluster{state: newClusterState(cfg)}
			m.clusters[cfg.Name] = mc
			logf("cluster %s added: %d endpoint(s), type %s, health check %s", cfg.Name, len(cfg.Endpoints), cfg.Type, describeHC(cfg.Health))
		} else if !reflect.DeepEqual(mc.state.Config(), cfg) {
			mc.stopDNS()
			m.restartCheckers(mc, cfg)
			logf("cluster %s updated: %d endpoint(s), health check %s", cfg.Name, len(cfg.Endpoints), describeHC(cfg.Health))
		} else {
			continue
		}
		ctx, cancel := context.WithCancel(m.ctx)
		mc.stopDNS = cancel
		go m.dnsLoop(ctx, mc, cfg.DNSRefresh, cfg.Type == "STATIC")
	}
	for name, mc := range m.clusters {
		if wanted[name] {
			continue
		}
		mc.stopDNS()
		for _, h := range mc.state.Hosts() {
			h.cancel()
		}
		delete(m.clusters, name)
		logf("cluster %s removed", name)
	}
}

// restartCheckers swaps a cluster's config; checkers of hosts that stay restart with the new
// health-check values, keeping their state (a newly health-checked cluster starts pending).
func (m *Manager) restartCheckers(mc *managedCluster, cfg Cluster) {
	hosts := mc.state.Hosts()
	for _, h := range hosts {
		h.cancel()
	}
	mc.state.mu.Lock()
	hadHealth := mc.state.cfg.Health != nil
	mc.state.cfg = cfg
	mc.state.mu.Unlock()
	for _, h := range hosts {
		if hadHealth != (cfg.Health != nil) {
			h.mu.Lock()
			h.health = newHealthState(cfg.Health != nil)
			h.mu.Unlock()
		}
		m.startChecker(mc.state, h)
	}
}

// applyHosts installs one resolution's result; the caller holds m.mu.
func (m *Manager) applyHosts(mc *managedCluster, resolved map[Endpoint][]string) {
	added, removed := mc.state.setHosts(resolved)
	name := mc.state.Config().Name
	for _, h := range removed {
		h.cancel()
		logf("cluster %s: host %s removed", name, h.Addr)
	}
	for _, h := range added {
		logf("cluster %s: host %s (%s) added as %s", name, h.Addr, h.Hostname, h.State().Flags())
		m.startChecker(mc.state, h)
	}
}

// dnsLoop resolves the cluster's endpoints at once and then every dns_refresh_rate (STATIC:
// once). Lookups run without the manager's lock, so that a slow DNS answer never holds up
// connections or the admin endpoint; a result is dropped if the cluster changed meanwhile.
func (m *Manager) dnsLoop(ctx context.Context, mc *managedCluster, every time.Duration, once bool) {
	for {
		resolved := mc.state.resolveAll(ctx, m.resolve)
		m.mu.Lock()
		if ctx.Err() == nil {
			m.applyHosts(mc, resolved)
		}
		m.mu.Unlock()
		if once {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func (m *Manager) startChecker(c *ClusterState, h *Host) {
	ctx, cancel := context.WithCancel(m.ctx)
	h.cancel = cancel
	cfg := c.Config()
	if cfg.Health == nil {
		return
	}
	go m.checkLoop(ctx, c, h, cfg.Name, *cfg.Health)
}

// checkLoop runs one host's checks back to back: check, wait the interval, check again.
func (m *Manager) checkLoop(ctx context.Context, c *ClusterState, h *Host, cluster string, hc HealthCheck) {
	for {
		kind, err := m.probe(ctx, hc, h.Addr)
		if ctx.Err() != nil {
			return
		}
		h.mu.Lock()
		before := h.health.Flags()
		var changed bool
		if err == nil {
			changed = h.health.Success(hc.HealthyThreshold)
		} else {
			changed = h.health.Failure(kind, hc.UnhealthyThreshold)
		}
		after := h.health.Flags()
		h.mu.Unlock()
		switch {
		case changed && err == nil:
			logf("health %s %s: %s -> %s (check passed)", cluster, h.Addr, before, after)
		case changed:
			logf("health %s %s: %s -> %s (%s failure: %v)", cluster, h.Addr, before, after, kind, err)
		case before != after:
			logf("health %s %s: %s -> %s (%v)", cluster, h.Addr, before, after, errOrPassed(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(nextInterval(hc, c.sawTraffic.Load())):
		}
	}
}

func errOrPassed(err error) string {
	if err == nil {
		return "check passed"
	}
	return "check failed: " + err.Error()
}

func describeHC(hc *HealthCheck) string {
	if hc == nil {
		return "none"
	}
	kind := "tcp"
	if !hc.TCP {
		kind = "http " + hc.HTTPPath
		if hc.TLS {
			kind = "https " + hc.HTTPPath
		}
	}
	return fmt.Sprintf("%s every %s (no traffic yet: %s), timeout %s, unhealthy %d, healthy %d",
		kind, hc.Interval, hc.NoTrafficInterval, hc.Timeout, hc.UnhealthyThreshold, hc.HealthyThreshold)
}

// ApplyLDS replaces the listener set: unchanged listeners keep their socket; a changed one is
// closed and bound again (connections in flight carry on).
func (m *Manager) ApplyLDS(listeners []Listener) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	wanted := map[string]Listener{}
	for _, l := range listeners {
		wanted[l.Name] = l
	}
	for name, run := range m.listeners {
		if l, ok := wanted[name]; !ok || l != run.cfg {
			run.close()
			delete(m.listeners, name)
			logf("listener %s on %s closed", name, run.cfg.Address)
		}
	}
	var firstErr error
	for _, l := range listeners {
		if _, ok := m.listeners[l.Name]; ok {
			continue
		}
		run, err := startListener(m, l)
		if err != nil {
			logf("listener %s: cannot listen on %s: %v", l.Name, l.Address, err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		m.listeners[l.Name] = run
		logf("listener %s on %s -> cluster %s", l.Name, l.Address, l.Cluster)
	}
	return firstErr
}

// Listeners returns the live listeners' configs sorted by name.
func (m *Manager) Listeners() []Listener {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Listener, 0, len(m.listeners))
	for _, run := range m.listeners {
		out = append(out, run.cfg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
