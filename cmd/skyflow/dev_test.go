package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// `skyflow dev` (what `make run` runs) starts the platform, prints the
// summary, and stops cleanly on Ctrl-C.
func TestDevPrintsTheSummaryAndStopsOnInterrupt(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "skyflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// Free ports for HTTP and HTTPS: make run may hold 8080 and 8443.
	cmd := exec.Command(bin, "dev", "-dir", t.TempDir(), "-listen", "127.0.0.1:0", "-tls-listen", "127.0.0.1:0")
	// The test Redis is shared: this platform's keys go under a prefix of
	// its own, deleted when the test ends.
	_, redisPrefix := testenv.Redis(t)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+testenv.Database(t), "REDIS_URL="+testenv.RedisURL(t), "REDIS_PREFIX="+redisPrefix)
	stdout, _ := cmd.StdoutPipe()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	summary := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Press Ctrl-C to stop") {
				summary <- b.String()
				return
			}
		}
		summary <- b.String()
	}()
	var out string
	select {
	case out = <-summary:
	// The first start builds every function: minutes on a cold build
	// cache while the rest of the test suite compiles beside it.
	case <-time.After(15 * time.Minute):
		t.Fatalf("no summary within 15 minutes; stderr:\n%s", stderr.String())
	}
	for _, want := range []string{"Skyflow is running", "outbox-sweep", "knative-broker-skyflow-default", "PostgreSQL", "external (DATABASE_URL)", "Kafka"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary does not mention %q:\n%s", want, out)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("skyflow dev did not stop after SIGINT")
	}
	if !strings.Contains(stderr.String(), "skyflow: stopped") {
		t.Fatalf("no clean stop:\n%s", stderr.String())
	}
}

func TestUnknownCommandAndMissingDatabaseURL(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "skyflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "frobnicate").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), `unknown command "frobnicate"`) {
		t.Fatalf("exit %d: %s", code, out)
	}
	cmd := exec.Command(bin, "migrate")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err = cmd.CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "DATABASE_URL is not set") {
		t.Fatalf("exit %d: %s", code, out)
	}
	out, err = exec.Command(bin, "deps", "run").CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "no command given") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// lockedBuffer is a strings.Builder the command's output goroutine and the
// test can share.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
