package supervisor

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func TestCloseLeavesNoProcess(t *testing.T) {
	t.Parallel()
	h := start(t, Config{Services: []manifest.Service{
		fnService("gateway", minScale(1)),
		fnService("records-insert"),
		// Ignores SIGTERM: killed once its grace period (timeoutSeconds) is over.
		fnService("stubborn", withEnv("FN_IGNORE_TERM", "1"), func(s *manifest.Service) { s.TimeoutSeconds = 1 }),
		fnService("never-called"),
	}})
	h.mustGet(t, "records-insert", "/")
	h.mustGet(t, "stubborn", "/")
	var pids []int
	for _, st := range h.Status() {
		if st.PID != 0 {
			pids = append(pids, st.PID)
		}
	}
	if len(pids) != 3 {
		t.Fatalf("running pids %v, want 3: %+v", pids, h.Status())
	}
	urls := map[string]string{}
	for _, st := range h.Status() {
		urls[st.Name] = st.URL.String()
	}

	// A request in flight is drained, not cut.
	inflight := make(chan int, 1)
	go func() {
		resp, err := client.Get(urls["gateway"] + "/sleep?ms=300")
		if err != nil {
			inflight <- 0
			return
		}
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond)

	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close took %v", time.Since(begin))
	if code := <-inflight; code != http.StatusOK {
		t.Errorf("request in flight during Close: status %d, want 200", code)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d is still alive after Close", pid)
		}
	}
	for name, u := range urls {
		if resp, err := client.Get(u + "/"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers at %s after Close", name, u)
		}
	}
	for _, st := range h.Status() {
		if st.State != Stopped || st.PID != 0 {
			t.Errorf("after Close: %+v, want stopped", st)
		}
	}
	if !strings.Contains(h.events.String(), "stubborn did not exit within 1s of SIGTERM") {
		t.Errorf("the kill of stubborn is not logged:\n%s", h.events)
	}
	if !strings.Contains(h.logs.String(), "[gateway] stopped\n") {
		t.Errorf("gateway's last partial line is not flushed:\n%s", h.logs)
	}
	if err := h.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := h.Start(ctx); err == nil {
		t.Error("Start after Close: no error")
	}
}
