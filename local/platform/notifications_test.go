package platform

import (
	"os"
	"path/filepath"
	"testing"
)

func TestVAPIDKeysAreMadeOnceAndKeptPrivate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dev", VAPIDFile)
	v, err := ensureVAPID(file)
	if err != nil || v.PublicKey == "" || v.PrivateKey == "" || v.Subject == "" {
		t.Fatalf("ensureVAPID = %+v, %v", v, err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", file, st.Mode(), err)
	}
	again, err := ensureVAPID(file)
	if err != nil || *again != *v {
		t.Fatalf("a second run made another pair: %+v, %v", again, err)
	}
	os.WriteFile(file, []byte("{}"), 0o600)
	if _, err := ensureVAPID(file); err == nil {
		t.Fatal("a broken file was taken")
	}
}

func TestPublicURLNamesTheGatewayAsABrowserWould(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://localhost:8080",
		"0.0.0.0:8080":   "http://localhost:8080",
		":8080":          "http://localhost:8080",
		"10.1.2.3:80":    "http://10.1.2.3:80",
	} {
		p := &Platform{cfg: Config{PublicAddr: addr}}
		if got := p.publicURL(); got != want {
			t.Errorf("publicURL(%s) = %s, want %s", addr, got, want)
		}
	}
	p := &Platform{cfg: Config{PublicAddr: "127.0.0.1:0"}}
	if err := p.settlePublicAddr(); err != nil || p.cfg.PublicAddr == "127.0.0.1:0" {
		t.Fatalf("settlePublicAddr = %v, %s", err, p.cfg.PublicAddr)
	}
}
