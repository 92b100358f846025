package main

// TCP proxying: each accepted connection goes to the next healthy host of the listener's
// cluster (round robin), with the cluster's connect_timeout and tcp_proxy's
// max_connect_attempts (Envoy's default: one attempt; a failed connect closes the client's
// connection, which then retries as kubectl and kubelet do).

import (
	"errors"
	"io"
	"net"
	"sync"
)

type listenerRun struct {
	cfg  Listener
	ln   net.Listener
	once sync.Once
}

func startListener(m *Manager, cfg Listener) (*listenerRun, error) {
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, err
	}
	run := &listenerRun{cfg: cfg, ln: ln}
	go run.serve(m)
	return run, nil
}

func (r *listenerRun) close() { r.once.Do(func() { r.ln.Close() }) }

func (r *listenerRun) serve(m *Manager) {
	for {
		conn, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			logf("listener %s: accept: %v", r.cfg.Name, err)
			continue
		}
		go proxy(m, r.cfg, conn)
	}
}

func proxy(m *Manager, cfg Listener, client net.Conn) {
	defer client.Close()
	cluster := m.Cluster(cfg.Cluster)
	if cluster == nil {
		logf("listener %s: cluster %s is not defined; closing %s", cfg.Name, cfg.Cluster, client.RemoteAddr())
		return
	}
	cluster.sawTraffic.Store(true)
	timeout := cluster.Config().ConnectTimeout
	for attempt := 0; attempt < cfg.MaxConnectAttempts; attempt++ {
		host := cluster.Pick()
		if host == nil {
			logf("listener %s: no healthy host in cluster %s; closing %s", cfg.Name, cfg.Cluster, client.RemoteAddr())
			return
		}
		host.CxTotal.Add(1)
		upstream, err := net.DialTimeout("tcp", host.Addr, timeout)
		if err != nil {
			host.CxConnectFail.Add(1)
			logf("listener %s: connect to %s failed: %v", cfg.Name, host.Addr, err)
			continue
		}
		host.CxActive.Add(1)
		pipe(client, upstream)
		host.CxActive.Add(-1)
		return
	}
}

// pipe copies both ways until both sides are done, passing half-closes on.
func pipe(a, b net.Conn) {
	defer b.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	copyHalf := func(dst, src net.Conn) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok && err == nil {
			_ = tc.CloseWrite()
		} else {
			// an error on one side ends the whole connection, as a reset does
			a.Close()
			b.Close()
		}
	}
	go copyHalf(b, a)
	go copyHalf(a, b)
	wg.Wait()
}
