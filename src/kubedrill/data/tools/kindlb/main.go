// Command envoy (kubedrill's kindlb) stands in for the Envoy proxy that kind v0.33 runs as
// the external load balancer of an HA cluster, for machines where that image cannot be pulled.
//
// It honours the part of Envoy's contract kind relies on: `envoy -c /home/envoy/envoy.yaml`
// with a bootstrap naming file-based CDS and LDS sources and an admin address; it follows those
// files (kind replaces them with `mv`; a missing, empty, half-written or invalid file leaves
// the last good configuration in place), TCP-proxies each listener to its cluster with round
// robin over the healthy hosts, health-checks every host as the cluster's health_checks entry
// says, logs each health transition on stdout with a timestamp, and serves Envoy's admin
// `GET /clusters` text format so readers of a real Envoy read this one the same way.
//
// Exit status: 0 on SIGTERM/SIGINT, 1 when the bootstrap or the admin port is unusable.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const pollEvery = 250 * time.Millisecond

func main() {
	configPath, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "envoy (kubedrill kindlb):", err)
		os.Exit(1)
	}
	if configPath == "" {
		fmt.Println(version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, configPath); err != nil {
		fmt.Fprintln(os.Stderr, "envoy (kubedrill kindlb):", err)
		os.Exit(1)
	}
}

// parseArgs accepts Envoy's spelling of the flags that matter (-c/--config-path) and
// ignores its logging flags; "" means --version.
func parseArgs(args []string) (string, error) {
	config := ""
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(arg, "=")
		switch name {
		case "--version":
			return "", nil
		case "-c", "--config-path", "-l", "--log-level", "--log-format", "--component-log-level", "--base-id", "--concurrency":
			if !hasValue {
				if i+1 >= len(args) {
					return "", fmt.Errorf("%s needs a value", name)
				}
				i++
				value = args[i]
			}
			if name == "-c" || name == "--config-path" {
				config = value
			}
		default:
			return "", fmt.Errorf("unsupported argument %q (supported: -c/--config-path FILE, --version)", arg)
		}
	}
	if config == "" {
		return "", errors.New("no bootstrap given: use -c FILE")
	}
	return config, nil
}

func run(ctx context.Context, configPath string) error {
	boot, err := loadBootstrap(configPath)
	if err != nil {
		return err
	}
	adminAddr, _ := boot.AdminAddress()
	adminLn, err := net.Listen("tcp", adminAddr)
	if err != nil {
		return fmt.Errorf("admin address %s: %w", adminAddr, err)
	}
	m := NewManager(ctx, systemResolve, runCheck)
	server := &http.Server{Handler: adminHandler(m, boot.Node.ID, boot.Node.Cluster), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.Serve(adminLn) }()
	logf("%s: node %s (cluster %s), admin on %s, following %s and %s",
		version, boot.Node.ID, boot.Node.Cluster, adminAddr, boot.CDSPath(), boot.LDSPath())

	// CDS before LDS, as Envoy does, so a new listener finds its cluster.
	cds := &fileWatch{path: boot.CDSPath(), what: "CDS"}
	lds := &fileWatch{path: boot.LDSPath(), what: "LDS"}
	for {
		if data, ok := cds.changed(); ok {
			if clusters, err := ParseCDS(data); err != nil {
				cds.reject(err)
			} else {
				m.ApplyCDS(clusters)
				cds.accept(fmt.Sprintf("%d cluster(s)", len(clusters)))
			}
		}
		if data, ok := lds.changed(); ok {
			if listeners, err := ParseLDS(data); err != nil {
				lds.reject(err)
			} else if err := m.ApplyLDS(listeners); err != nil {
				lds.retry(err) // a port in use: try again on the next poll
			} else {
				lds.accept(fmt.Sprintf("%d listener(s)", len(listeners)))
			}
		}
		select {
		case <-ctx.Done():
			logf("shutting down (%v)", context.Cause(ctx))
			shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = server.Shutdown(shutdown)
			return nil
		case <-time.After(pollEvery):
		}
	}
}
