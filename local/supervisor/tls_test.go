package supervisor

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/local/devcert"
	"github.com/skyflow-oss/skyflow/local/manifest"
)

// publicTLS opens a TLS listener on a free port with a development
// certificate, and a client that trusts it.
func publicTLS(t *testing.T) (net.Listener, *http.Client) {
	t.Helper()
	certFile, keyFile, err := devcert.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}), client
}

// The public Service's front terminates TLS, as Kourier does in a
// cluster: the process serves plain HTTP and learns the client's scheme
// from X-Forwarded-Proto.
func TestPublicFrontTerminatesTLS(t *testing.T) {
	t.Parallel()
	ln, client := publicTLS(t)
	h := start(t, Config{PublicTLS: ln, Services: []manifest.Service{
		fnService("records-get", minScale(1)),
		fnService("gateway", minScale(1), func(s *manifest.Service) { s.ClusterLocal = false }),
	}})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	resp, err := client.Get("https://localhost:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r reply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET over HTTPS: %d %v", resp.StatusCode, err)
	}
	if r.PID != h.mustGet(t, "gateway", "/").PID {
		t.Error("the HTTPS address does not lead to the public Service")
	}
	if r.TLS || r.Proto != "https" || r.Host != "localhost:"+port {
		t.Errorf("the process saw TLS %v, X-Forwarded-Proto %q, Host %q; want plain HTTP, https, localhost:%s", r.TLS, r.Proto, r.Host, port)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("HTTPS answered in %s, want HTTP/2 as the client offered", resp.Proto)
	}
	if plain := h.mustGet(t, "gateway", "/"); plain.Proto != "http" {
		t.Errorf("over plain HTTP the process saw X-Forwarded-Proto %q", plain.Proto)
	}
}

// The supervisor owns PublicTLS from New on: a failed New closes it.
func TestPublicTLSClosedWhenNewFails(t *testing.T) {
	t.Parallel()
	ln, _ := publicTLS(t)
	_, err := New(Config{BinDir: binDir, PublicAddr: "127.0.0.1:0", PublicTLS: ln, Services: []manifest.Service{
		fnService("gateway", func(s *manifest.Service) { s.ClusterLocal = false; s.Package = "" }),
	}})
	if err == nil {
		t.Fatal("New without a package: no error")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the HTTPS listener is still open after New failed: %v", err)
	}
}
