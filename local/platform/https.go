package platform

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// listenTLS opens the gateway's HTTPS address (Config.PublicTLSAddr) and
// keeps it: the token URI names its port before any function starts, and
// with port 0 the free port stays this platform's.
func (p *Platform) listenTLS() error {
	host, _, err := net.SplitHostPort(p.cfg.PublicTLSAddr)
	if err != nil {
		return fmt.Errorf("the HTTPS address %q: %w", p.cfg.PublicTLSAddr, err)
	}
	ln, err := net.Listen("tcp", p.cfg.PublicTLSAddr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("the gateway's HTTPS address %s is in use by another program; stop it or set another: %w", p.cfg.PublicTLSAddr, err)
	}
	if err != nil {
		return fmt.Errorf("cannot listen for HTTPS on %s: %w", p.cfg.PublicTLSAddr, err)
	}
	p.tlsListener, p.tlsAddr = ln, net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	// Until the supervisor takes it; closing it again then does no harm.
	p.closers = append(p.closers, func(context.Context) error { ln.Close(); return nil })
	return nil
}

// terminateTLS is the HTTPS address with the development certificate:
// the supervisor serves the gateway's front on it, so TLS ends before the
// gateway, as at Kourier in a cluster.
func (p *Platform) terminateTLS(certFile, keyFile string) (net.Listener, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("the development TLS certificate: %w", err)
	}
	return tls.NewListener(p.tlsListener, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}), nil
}
