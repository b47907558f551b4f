package devcert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestEnsureMakesACertificateForLocalhostOnceAndKeepsIt(t *testing.T) {
	dir := t.TempDir()
	cert, key, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(cert)
	if _, _, err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(cert)
	if string(before) != string(after) {
		t.Fatal("a valid certificate was remade")
	}
	os.WriteFile(cert, []byte("garbage"), 0o644)
	if _, _, err := Ensure(dir); err != nil || !valid(cert, leaf.NotBefore) {
		t.Fatalf("a broken certificate was not remade: %v", err)
	}
}
