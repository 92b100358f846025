package main

// The subset of Envoy's v3 configuration that kind's HA load balancer uses: a bootstrap file
// naming file-based CDS and LDS sources and the admin address, a listener that TCP-proxies to
// one cluster, and a cluster of control-plane endpoints with an HTTP(S) health check.
// Fields outside that subset are ignored, not rejected: this is a stand-in for Envoy on a
// machine that cannot pull it, not a validator of Envoy configs.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	listenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	clusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	tcpProxyType = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
	tlsSocket    = "envoy.transport_sockets.tls"
)

// Duration is a protobuf Duration in its JSON/YAML form ("0.25s", "3s").
type Duration time.Duration

func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	var text string
	if err := node.Decode(&text); err != nil {
		return err
	}
	parsed, err := parseDuration(text)
	if err != nil {
		return err
	}
	*d = Duration(parsed)
	return nil
}

func parseDuration(text string) (time.Duration, error) {
	number, ok := strings.CutSuffix(strings.TrimSpace(text), "s")
	if !ok {
		return 0, fmt.Errorf("duration %q: want seconds with an s suffix, e.g. 0.25s", text)
	}
	seconds, err := strconv.ParseFloat(number, 64)
	if err != nil || seconds < 0 {
		return 0, fmt.Errorf("duration %q: not a non-negative number of seconds", text)
	}
	return time.Duration(seconds * float64(time.Second)), nil
}

type socketAddress struct {
	Address   string `yaml:"address"`
	PortValue int    `yaml:"port_value"`
}

type address struct {
	SocketAddress socketAddress `yaml:"socket_address"`
}

func (a address) hostPort() (string, error) {
	s := a.SocketAddress
	if s.Address == "" || s.PortValue <= 0 || s.PortValue > 65535 {
		return "", fmt.Errorf("socket_address needs an address and a port_value in 1..65535, got %q:%d", s.Address, s.PortValue)
	}
	return net.JoinHostPort(s.Address, strconv.Itoa(s.PortValue)), nil
}

type configSource struct {
	Path             string `yaml:"path"`
	PathConfigSource struct {
		Path string `yaml:"path"`
	} `yaml:"path_config_source"`
}

func (c configSource) path() string {
	if c.PathConfigSource.Path != "" {
		return c.PathConfigSource.Path
	}
	return c.Path
}

// Bootstrap is the file given with -c.
type Bootstrap struct {
	Node struct {
		Cluster string `yaml:"cluster"`
		ID      string `yaml:"id"`
	} `yaml:"node"`
	DynamicResources struct {
		CDSConfig configSource `yaml:"cds_config"`
		LDSConfig configSource `yaml:"lds_config"`
	} `yaml:"dynamic_resources"`
	Admin struct {
		Address address `yaml:"address"`
	} `yaml:"admin"`
}

// CDSPath, LDSPath and AdminAddress are what the proxy needs from the bootstrap.
func (b Bootstrap) CDSPath() string { return b.DynamicResources.CDSConfig.path() }
func (b Bootstrap) LDSPath() string { return b.DynamicResources.LDSConfig.path() }

func (b Bootstrap) AdminAddress() (string, error) { return b.Admin.Address.hostPort() }

func loadBootstrap(path string) (Bootstrap, error) {
	var b Bootstrap
	data, err := os.ReadFile(path)
	if err != nil {
		return b, err
	}
	if err := yaml.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("%s: %w", path, err)
	}
	if b.CDSPath() == "" || b.LDSPath() == "" {
		return b, fmt.Errorf("%s: dynamic_resources needs cds_config and lds_config with a path_config_source path", path)
	}
	if _, err := b.AdminAddress(); err != nil {
		return b, fmt.Errorf("%s: admin.address: %w", path, err)
	}
	return b, nil
}

// Listener is one LDS resource: an address and the cluster its TCP proxy sends to.
type Listener struct {
	Name               string
	Address            string // host:port to bind
	Cluster            string
	MaxConnectAttempts int // tcp_proxy max_connect_attempts, Envoy's default 1
}

// HealthCheck holds one cluster's active health check, defaults filled in as Envoy does.
type HealthCheck struct {
	Timeout            time.Duration
	Interval           time.Duration
	NoTrafficInterval  time.Duration
	UnhealthyThreshold int
	HealthyThreshold   int
	HTTPPath           string // "" with TCP set = connect-only check
	Host               string // Host header; Envoy's default is the cluster name
	TCP                bool
	TLS                bool
}

// Endpoint is one configured backend before name resolution.
type Endpoint struct {
	Host string // IP or DNS name
	Port int
}

// Cluster is one CDS resource.
type Cluster struct {
	Name           string
	ConnectTimeout time.Duration
	Type           string // STATIC, STRICT_DNS or LOGICAL_DNS
	LookupFamily   string // AUTO, V4_ONLY, V6_ONLY, V4_PREFERRED, ALL
	DNSRefresh     time.Duration
	Endpoints      []Endpoint
	Health         *HealthCheck // nil: no active health checking, every host counts as healthy
}

type rawResource struct {
	Type string `yaml:"@type"`
	Name string `yaml:"name"`
}

type rawListener struct {
	Name         string  `yaml:"name"`
	Address      address `yaml:"address"`
	FilterChains []struct {
		Filters []struct {
			Name        string `yaml:"name"`
			TypedConfig struct {
				Type               string `yaml:"@type"`
				Cluster            string `yaml:"cluster"`
				MaxConnectAttempts *int   `yaml:"max_connect_attempts"`
			} `yaml:"typed_config"`
		} `yaml:"filters"`
	} `yaml:"filter_chains"`
}

type transportSocket struct {
	Name string `yaml:"name"`
}

type rawHealthCheck struct {
	Timeout            *Duration `yaml:"timeout"`
	Interval           *Duration `yaml:"interval"`
	NoTrafficInterval  *Duration `yaml:"no_traffic_interval"`
	UnhealthyThreshold *int      `yaml:"unhealthy_threshold"`
	HealthyThreshold   *int      `yaml:"healthy_threshold"`
	HTTPHealthCheck    *struct {
		Path string `yaml:"path"`
		Host string `yaml:"host"`
	} `yaml:"http_health_check"`
	TCPHealthCheck               *struct{}         `yaml:"tcp_health_check"`
	TransportSocketMatchCriteria map[string]string `yaml:"transport_socket_match_criteria"`
}

type rawCluster struct {
	Name                   string           `yaml:"name"`
	ConnectTimeout         *Duration        `yaml:"connect_timeout"`
	Type                   string           `yaml:"type"`
	DNSLookupFamily        string           `yaml:"dns_lookup_family"`
	DNSRefreshRate         *Duration        `yaml:"dns_refresh_rate"`
	HealthChecks           []rawHealthCheck `yaml:"health_checks"`
	TransportSocket        *transportSocket `yaml:"transport_socket"`
	TransportSocketMatches []struct {
		Name            string            `yaml:"name"`
		Match           map[string]string `yaml:"match"`
		TransportSocket transportSocket   `yaml:"transport_socket"`
	} `yaml:"transport_socket_matches"`
	LoadAssignment struct {
		Endpoints []struct {
			LBEndpoints []struct {
				Endpoint struct {
					Address address `yaml:"address"`
				} `yaml:"endpoint"`
			} `yaml:"lb_endpoints"`
		} `yaml:"endpoints"`
	} `yaml:"load_assignment"`
}

// resourceDocs splits a discovery file (`resources: [...]`) into its resources' YAML nodes
// and checks each one's @type. An empty file is an error (a half-written one looks like
// that); `resources: []` is a valid empty set.
func resourceDocs(data []byte, wantType string) ([]*yaml.Node, error) {
	var doc struct {
		Resources *[]yaml.Node `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Resources == nil {
		return nil, errors.New("no resources key (empty or half-written file?)")
	}
	var out []*yaml.Node
	for i := range *doc.Resources {
		node := &(*doc.Resources)[i]
		var head rawResource
		if err := node.Decode(&head); err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		if head.Type != wantType {
			return nil, fmt.Errorf("resources[%d] (%s): @type %q, want %q", i, head.Name, head.Type, wantType)
		}
		out = append(out, node)
	}
	return out, nil
}

// ParseLDS reads an LDS file's listeners.
func ParseLDS(data []byte) ([]Listener, error) {
	docs, err := resourceDocs(data, listenerType)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Listener
	for i, node := range docs {
		var raw rawListener
		if err := node.Decode(&raw); err != nil {
			return nil, fmt.Errorf("listener %d: %w", i, err)
		}
		if raw.Name == "" || seen[raw.Name] {
			return nil, fmt.Errorf("listener %d: missing or duplicate name %q", i, raw.Name)
		}
		seen[raw.Name] = true
		bind, err := raw.Address.hostPort()
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", raw.Name, err)
		}
		l := Listener{Name: raw.Name, Address: bind, MaxConnectAttempts: 1}
		for _, chain := range raw.FilterChains {
			for _, f := range chain.Filters {
				if f.TypedConfig.Type != tcpProxyType {
					continue
				}
				l.Cluster = f.TypedConfig.Cluster
				if m := f.TypedConfig.MaxConnectAttempts; m != nil && *m > 0 {
					l.MaxConnectAttempts = *m
				}
			}
		}
		if l.Cluster == "" {
			return nil, fmt.Errorf("listener %s: no tcp_proxy filter with a cluster (only TCP proxying is supported)", raw.Name)
		}
		out = append(out, l)
	}
	return out, nil
}

// ParseCDS reads a CDS file's clusters, with Envoy's defaults for what is left out.
func ParseCDS(data []byte) ([]Cluster, error) {
	docs, err := resourceDocs(data, clusterType)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Cluster
	for i, node := range docs {
		var raw rawCluster
		if err := node.Decode(&raw); err != nil {
			return nil, fmt.Errorf("cluster %d: %w", i, err)
		}
		if raw.Name == "" || seen[raw.Name] {
			return nil, fmt.Errorf("cluster %d: missing or duplicate name %q", i, raw.Name)
		}
		seen[raw.Name] = true
		c, err := clusterFromRaw(raw)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", raw.Name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func clusterFromRaw(raw rawCluster) (Cluster, error) {
	c := Cluster{
		Name:           raw.Name,
		ConnectTimeout: durationOr(raw.ConnectTimeout, 5*time.Second),
		Type:           strings.ToUpper(strings.TrimSpace(raw.Type)),
		LookupFamily:   strings.ToUpper(strings.TrimSpace(raw.DNSLookupFamily)),
		DNSRefresh:     durationOr(raw.DNSRefreshRate, 5*time.Second),
	}
	if c.Type == "" {
		c.Type = "STATIC"
	}
	switch c.Type {
	case "STATIC", "STRICT_DNS", "LOGICAL_DNS":
	default:
		return c, fmt.Errorf("type %s is not supported (STATIC, STRICT_DNS, LOGICAL_DNS)", c.Type)
	}
	if c.LookupFamily == "" {
		c.LookupFamily = "AUTO"
	}
	switch c.LookupFamily {
	case "AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED", "ALL":
	default:
		return c, fmt.Errorf("unknown dns_lookup_family %s", c.LookupFamily)
	}
	for _, group := range raw.LoadAssignment.Endpoints {
		for _, lb := range group.LBEndpoints {
			s := lb.Endpoint.Address.SocketAddress
			if _, err := lb.Endpoint.Address.hostPort(); err != nil {
				return c, fmt.Errorf("endpoint: %w", err)
			}
			if c.Type == "STATIC" && net.ParseIP(s.Address) == nil {
				return c, fmt.Errorf("endpoint %s: a STATIC cluster needs IP addresses", s.Address)
			}
			c.Endpoints = append(c.Endpoints, Endpoint{Host: s.Address, Port: s.PortValue})
		}
	}
	if len(raw.HealthChecks) > 1 {
		return c, errors.New("more than one health check is not supported")
	}
	if len(raw.HealthChecks) == 1 {
		hc, err := healthFromRaw(raw, raw.HealthChecks[0])
		if err != nil {
			return c, fmt.Errorf("health_checks[0]: %w", err)
		}
		c.Health = &hc
	}
	return c, nil
}

func healthFromRaw(cluster rawCluster, raw rawHealthCheck) (HealthCheck, error) {
	if raw.Timeout == nil || raw.Interval == nil || raw.UnhealthyThreshold == nil || raw.HealthyThreshold == nil {
		return HealthCheck{}, errors.New("timeout, interval, unhealthy_threshold and healthy_threshold are required")
	}
	hc := HealthCheck{
		Timeout:            time.Duration(*raw.Timeout),
		Interval:           time.Duration(*raw.Interval),
		NoTrafficInterval:  durationOr(raw.NoTrafficInterval, 60*time.Second),
		UnhealthyThreshold: *raw.UnhealthyThreshold,
		HealthyThreshold:   *raw.HealthyThreshold,
		Host:               cluster.Name,
	}
	if hc.Timeout <= 0 || hc.Interval <= 0 || hc.UnhealthyThreshold < 1 || hc.HealthyThreshold < 1 {
		return hc, errors.New("timeout and interval must be > 0, thresholds >= 1")
	}
	switch {
	case raw.HTTPHealthCheck != nil:
		hc.HTTPPath = raw.HTTPHealthCheck.Path
		if hc.HTTPPath == "" {
			return hc, errors.New("http_health_check needs a path")
		}
		if raw.HTTPHealthCheck.Host != "" {
			hc.Host = raw.HTTPHealthCheck.Host
		}
	case raw.TCPHealthCheck != nil:
		hc.TCP = true
	default:
		return hc, errors.New("only http_health_check and tcp_health_check are supported")
	}
	hc.TLS = healthUsesTLS(cluster, raw.TransportSocketMatchCriteria)
	return hc, nil
}

// healthUsesTLS: a health check's match criteria pick one of the cluster's
// transport_socket_matches; without criteria the cluster's own transport socket applies.
// Certificates are never verified (kind asks for ACCEPT_UNTRUSTED, and without a trusted CA
// Envoy does not verify either).
func healthUsesTLS(cluster rawCluster, criteria map[string]string) bool {
	if len(criteria) > 0 {
		for _, m := range cluster.TransportSocketMatches {
			if matches(m.Match, criteria) {
				return m.TransportSocket.Name == tlsSocket
			}
		}
	}
	return cluster.TransportSocket != nil && cluster.TransportSocket.Name == tlsSocket
}

func matches(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func durationOr(d *Duration, fallback time.Duration) time.Duration {
	if d == nil {
		return fallback
	}
	return time.Duration(*d)
}
