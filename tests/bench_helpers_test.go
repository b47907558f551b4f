package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// Helpers of the benchmarks in bench_test.go: building and running function
// binaries and a plain Go HTTP server as the baseline, and the statistics.

// Import paths of the function packages the benchmarks run.
const (
	echoPackage        = "github.com/skyflow-oss/skyflow/tests/functions/echo"
	outboxSweepPackage = "github.com/skyflow-oss/skyflow/functions/outbox-sweep"
)

// plainServerSource is the baseline: the smallest Go net/http server that
// answers 200 on /, listening where a function would (SKYFLOW_BIND_HOST,
// PORT) and shutting down on SIGTERM as a function does. It is written to a
// temporary module rather than kept under testdata so that the benchmarks
// stay self-contained.
const plainServerSource = `package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	addr := net.JoinHostPort(os.Getenv("SKYFLOW_BIND_HOST"), os.Getenv("PORT"))
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		os.Exit(1)
	}
}
`

// goCommand runs go with args in dir and fails the benchmark with its output.
func goCommand(b *testing.B, dir string, args ...string) {
	b.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// buildFunctions builds the function packages into a temporary directory,
// each as a binary named after its last path element, as the supervisor does.
func buildFunctions(b *testing.B, pkgs ...string) map[string]string {
	b.Helper()
	dir := b.TempDir()
	goCommand(b, root(b), append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	bins := map[string]string{}
	for _, p := range pkgs {
		bins[p] = filepath.Join(dir, filepath.Base(p))
	}
	return bins
}

// buildPlainServer builds plainServerSource as a module of its own with the
// project's go directive (same language version, same GODEBUG defaults).
func buildPlainServer(b *testing.B) string {
	b.Helper()
	src := b.TempDir()
	goLine := "go 1.26"
	if mod, err := os.ReadFile(filepath.Join(root(b), "go.mod")); err == nil {
		for line := range strings.Lines(string(mod)) {
			if strings.HasPrefix(line, "go ") {
				goLine = strings.TrimSpace(line)
				break
			}
		}
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module skyflowbench/plainserver\n\n"+goLine+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(plainServerSource), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "plainserver")
	goCommand(b, src, "build", "-o", bin, ".")
	return bin
}

// freeLoopbackPort is a port that was free a moment ago.
func freeLoopbackPort(b *testing.B) int {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// benchClient sends every request on a new connection (a process that just
// started has none to reuse) and ignores any proxy settings.
var benchClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

// process is a started binary.
type process struct {
	cmd     *exec.Cmd
	started time.Time     // just before exec
	done    chan struct{} // closed when the process has exited
	port    int
}

// startProcess execs bin on a free loopback port with only the given
// environment (plus PORT and SKYFLOW_BIND_HOST), as the supervisor does.
func startProcess(b *testing.B, bin string, env ...string) *process {
	b.Helper()
	port := freeLoopbackPort(b)
	cmd := exec.Command(bin)
	cmd.Env = append(slices.Clone(env), "PORT="+strconv.Itoa(port), "SKYFLOW_BIND_HOST=127.0.0.1",
		"SKYFLOW_TRUSTED_SENDERS="+sender.NewVerifier(benchGateway).Trusted())
	started := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("exec %s: %v", bin, err)
	}
	p := &process{cmd: cmd, started: started, done: make(chan struct{}), port: port}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	b.Cleanup(func() { p.stop(b) })
	return p
}

func (p *process) url(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(p.port) + path
}

// waitFor polls newRequest on path every 0.5 ms until it is answered 200
// and returns how long after exec that answer arrived. It may run on any
// goroutine: it returns errors rather than failing the benchmark.
func (p *process) waitFor(newRequest func(url string) *http.Request, path string) (time.Duration, error) {
	const pollEvery = 500 * time.Microsecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := benchClient.Do(newRequest(p.url(path)))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started), nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case <-p.done:
			return 0, fmt.Errorf("%s exited before answering 200 (%v)", filepath.Base(p.cmd.Path), p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s did not answer 200 on %s within 30s (last: %w)", filepath.Base(p.cmd.Path), path, err)
		}
		time.Sleep(pollEvery)
	}
}

// stop sends SIGTERM and waits for the exit, killing after 10s.
func (p *process) stop(b *testing.B) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		b.Errorf("%s ignored SIGTERM for 10s; killing it", filepath.Base(p.cmd.Path))
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// rssMiB is the process's resident set size (VmRSS) in MiB.
func (p *process) rssMiB(b *testing.B) float64 {
	b.Helper()
	name := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		b.Skipf("no %s: the RSS benchmark needs Linux's /proc", name)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == "VmRSS:" && fields[2] == "kB" {
			kb, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				b.Fatalf("%s: %q: %v", name, sc.Text(), err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("%s has no VmRSS line", name)
	return 0
}

// binaryEvent is a binary-mode CloudEvent POST of the given type and id,
// signed as the gateway signs for the echo function.
func binaryEvent(ctx context.Context, url, typ, id string) *http.Request {
	body := []byte(`{"bench":true}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Source", "/tests/bench")
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Content-Type", "application/json")
	return signedAsGateway(req, body, "echo")
}

// benchGateway signs the benchmarks' requests; the processes they start trust it.
var benchGateway, _ = sender.GenerateSigner(sender.Gateway)

// signedAsGateway adds the gateway's assertion for function to a
// binary-mode event request whose body is body.
func signedAsGateway(req *http.Request, body []byte, function string) *http.Request {
	e, err := binding.ToEvent(req.Context(), cehttp.NewMessage(req.Header, io.NopCloser(bytes.NewReader(body))))
	if err != nil {
		panic(err)
	}
	if err := benchGateway.Authorize(req, *e, function); err != nil {
		panic(err)
	}
	return req
}

// percentile is the nearest-rank percentile q (0 < q ≤ 1) of ds, in ms.
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return float64(s[max(i, 0)]) / float64(time.Millisecond)
}

// median of vs.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// reportLatencies reports p50 and p99 of measured and baseline in ms, the
// ratio of the p50s under ratioUnit, and suppresses ns/op, which here would
// only be the time of a whole iteration (several measurements plus setup).
func reportLatencies(b *testing.B, measured, baseline []time.Duration, ratioUnit string) {
	b.Helper()
	p50, base50 := percentile(measured, 0.50), percentile(baseline, 0.50)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(percentile(measured, 0.99), "p99-ms")
	b.ReportMetric(base50, "baseline-p50-ms")
	b.ReportMetric(percentile(baseline, 0.99), "baseline-p99-ms")
	if base50 > 0 {
		b.ReportMetric(p50/base50, ratioUnit)
	}
	b.ReportMetric(float64(len(measured)), "samples")
	b.ReportMetric(0, "ns/op")
}
