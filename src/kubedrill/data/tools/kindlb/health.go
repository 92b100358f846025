package main

// A host's active health state, kept the way Envoy keeps it so that /clusters reads the same:
// a host added to a health-checked cluster starts failed_active_hc + pending_active_hc; the
// first completed check clears pending; one success marks a failed host healthy on the first
// check or after healthy_threshold successes; network failures and timeouts mark a healthy
// host failed after unhealthy_threshold in a row, a bad HTTP status at once; a timeout also
// sets active_hc_timeout until the next success.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// FailureKind says why a check failed; Envoy treats them differently.
type FailureKind int

const (
	FailNetwork FailureKind = iota // connect refused, reset, unreachable: counts toward the threshold
	FailTimeout                    // no answer within the timeout: counts, and sets active_hc_timeout
	FailActive                     // the server answered, but not 200: unhealthy at once
)

func (k FailureKind) String() string {
	switch k {
	case FailTimeout:
		return "timeout"
	case FailActive:
		return "active"
	default:
		return "network"
	}
}

// HealthState is one host's flags and counters. The zero value is not used: see newHealthState.
type HealthState struct {
	FailedActiveHC  bool
	PendingActiveHC bool
	ActiveHCTimeout bool
	firstCheck      bool
	numHealthy      int
	numUnhealthy    int
}

func newHealthState(checked bool) HealthState {
	if !checked {
		return HealthState{} // no health checker: healthy
	}
	return HealthState{FailedActiveHC: true, PendingActiveHC: true, firstCheck: true}
}

// Healthy is what load balancing asks.
func (s HealthState) Healthy() bool { return !s.FailedActiveHC }

// Flags renders the state as Envoy's /clusters health_flags does: "healthy" for a host that
// takes traffic (a lone active_hc_timeout does not stop it), else every flag that is set.
func (s HealthState) Flags() string {
	if !s.FailedActiveHC {
		return "healthy"
	}
	var b strings.Builder
	b.WriteString("/failed_active_hc")
	if s.PendingActiveHC {
		b.WriteString("/pending_active_hc")
	}
	if s.ActiveHCTimeout {
		b.WriteString("/active_hc_timeout")
	}
	return b.String()
}

// Success records a passed check; true when the host became healthy.
func (s *HealthState) Success(healthyThreshold int) bool {
	changed := false
	s.numUnhealthy = 0
	if s.FailedActiveHC {
		s.numHealthy++
		if s.firstCheck || s.numHealthy >= healthyThreshold {
			s.FailedActiveHC = false
			s.numHealthy = 0
			changed = true
		}
	}
	s.PendingActiveHC = false
	s.ActiveHCTimeout = false
	s.firstCheck = false
	return changed
}

// Failure records a failed check; true when the host became unhealthy.
func (s *HealthState) Failure(kind FailureKind, unhealthyThreshold int) bool {
	changed := false
	s.numHealthy = 0
	if !s.FailedActiveHC {
		s.numUnhealthy++
		if kind == FailActive || s.numUnhealthy >= unhealthyThreshold {
			s.FailedActiveHC = true
			s.numUnhealthy = 0
			changed = true
		}
	}
	if kind == FailTimeout {
		s.ActiveHCTimeout = true
	}
	s.PendingActiveHC = false
	s.firstCheck = false
	return changed
}

// probe runs one check against addr ("ip:port"); nil when it passed.
type probe func(ctx context.Context, hc HealthCheck, addr string) (FailureKind, error)

// runCheck is the real probe: a TCP connect, or an HTTP(S) GET of the path expecting 200, on a
// fresh connection each time, within hc.Timeout.
func runCheck(ctx context.Context, hc HealthCheck, addr string) (FailureKind, error) {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	dialer := net.Dialer{}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return classify(ctx, err), err
	}
	if hc.TCP {
		conn.Close()
		return 0, nil
	}
	conn.Close() // the HTTP client dials its own; the connect above tells a network failure apart
	transport := &http.Transport{
		DialContext:       dialer.DialContext,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see healthUsesTLS
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	scheme := "http"
	if hc.TLS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s%s", scheme, addr, hc.HTTPPath), nil)
	if err != nil {
		return FailNetwork, err
	}
	req.Host = hc.Host
	req.Header.Set("User-Agent", "Envoy/HC")
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return classify(ctx, err), err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return FailActive, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return 0, nil
}

func classify(ctx context.Context, err error) FailureKind {
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return FailTimeout
	}
	return FailNetwork
}

// nextInterval: Envoy checks at no_traffic_interval until its cluster has carried a
// connection, then at interval; the next check starts that long after the last one ended.
func nextInterval(hc HealthCheck, sawTraffic bool) time.Duration {
	if !sawTraffic {
		return hc.NoTrafficInterval
	}
	return hc.Interval
}
