package main

// The admin endpoint answers like Envoy's, so that a reader of a real Envoy's admin port reads
// this one the same way: GET /clusters in Envoy's text format (and ?format=json), /listeners,
// /ready and /server_info.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

const version = "kubedrill-kindlb/1 (stands in for envoy v1.36.2)"

func adminHandler(m *Manager, nodeID, nodeCluster string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/clusters", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(clustersJSON(m))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		writeClustersText(w, m)
	})
	mux.HandleFunc("/listeners", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		for _, l := range m.Listeners() {
			fmt.Fprintf(w, "%s::%s\n", l.Name, l.Address)
		}
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		io.WriteString(w, "LIVE\n")
	})
	mux.HandleFunc("/server_info", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"version": version, "state": "LIVE",
			"node": map[string]string{"id": nodeID, "cluster": nodeCluster},
		})
	})
	return mux
}

// Envoy's defaults for a cluster without circuit_breakers, printed per priority.
var circuitBreakers = []struct {
	name  string
	value int
}{{"max_connections", 1024}, {"max_pending_requests", 1024}, {"max_requests", 1024}, {"max_retries", 3}}

// writeClustersText prints what Envoy's `GET /clusters` prints for each cluster: its
// observability name, circuit-breaker settings, added_via_api, then per host its stats in name
// order (counters and gauges together), hostname, health_flags, weight, locality, canary,
// priority and success rates.
func writeClustersText(w io.Writer, m *Manager) {
	for _, c := range m.Clusters() {
		name := c.Config().Name
		fmt.Fprintf(w, "%s::observability_name::%s\n", name, name)
		for _, prio := range []string{"default_priority", "high_priority"} {
			for _, cb := range circuitBreakers {
				fmt.Fprintf(w, "%s::%s::%s::%d\n", name, prio, cb.name, cb.value)
			}
		}
		fmt.Fprintf(w, "%s::added_via_api::true\n", name)
		for _, h := range c.Hosts() {
			p := name + "::" + h.Addr + "::"
			for _, s := range hostStats(h) {
				fmt.Fprintf(w, "%s%s::%d\n", p, s.name, s.value)
			}
			fmt.Fprintf(w, "%shostname::%s\n", p, h.Hostname)
			fmt.Fprintf(w, "%shealth_flags::%s\n", p, h.State().Flags())
			fmt.Fprintf(w, "%sweight::1\n%sregion::\n%szone::\n%ssub_zone::\n", p, p, p, p)
			fmt.Fprintf(w, "%scanary::false\n%spriority::0\n", p, p)
			fmt.Fprintf(w, "%ssuccess_rate::-1\n%slocal_origin_success_rate::-1\n", p, p)
		}
	}
}

type stat struct {
	name  string
	value int64
	gauge bool
}

// hostStats in Envoy's order: sorted by name.
func hostStats(h *Host) []stat {
	return []stat{
		{"cx_active", h.CxActive.Load(), true},
		{"cx_connect_fail", int64(h.CxConnectFail.Load()), false},
		{"cx_total", int64(h.CxTotal.Load()), false},
		{"rq_active", 0, true},
		{"rq_error", 0, false},
		{"rq_success", 0, false},
		{"rq_timeout", 0, false},
		{"rq_total", 0, false},
	}
}

// clustersJSON follows Envoy's admin ClusterStatuses message (proto3 JSON names).
func clustersJSON(m *Manager) map[string]any {
	var statuses []any
	for _, c := range m.Clusters() {
		var hosts []any
		for _, h := range c.Hosts() {
			st := h.State()
			health := map[string]any{"eds_health_status": "HEALTHY"}
			if st.FailedActiveHC {
				health["failed_active_health_check"] = true
			}
			if st.PendingActiveHC {
				health["pending_active_hc"] = true
			}
			if st.ActiveHCTimeout {
				health["active_hc_timeout"] = true
			}
			var stats []any
			for _, s := range hostStats(h) {
				entry := map[string]any{"name": s.name, "value": strconv.FormatInt(s.value, 10)}
				if s.gauge {
					entry["type"] = "GAUGE"
				}
				stats = append(stats, entry)
			}
			ip, port, _ := net.SplitHostPort(h.Addr)
			portNum, _ := strconv.Atoi(port)
			hosts = append(hosts, map[string]any{
				"address": map[string]any{"socket_address": map[string]any{
					"address": strings.Trim(ip, "[]"), "port_value": portNum,
				}},
				"stats": stats, "health_status": health, "weight": 1,
				"hostname": h.Hostname, "locality": map[string]any{},
			})
		}
		statuses = append(statuses, map[string]any{
			"name": c.Config().Name, "observability_name": c.Config().Name,
			"added_via_api": true, "host_statuses": hosts,
		})
	}
	return map[string]any{"cluster_statuses": statuses}
}
