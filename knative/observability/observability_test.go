package observability_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// metricSource says where a metric that rules and panels may use comes from.
type metricSource struct {
	from      string
	histogram bool // also allows <name>_bucket, _count and _sum
	planned   bool // Skyflow metric of a function not written yet
}

// knownMetrics is the allow-list of every metric name the alert rules and
// the dashboard may query. A name that is not here is a typo, or a metric
// nobody exports. Add a name only with its source.
var knownMetrics = map[string]metricSource{
	// Skyflow, runtime/host/metrics.go: every function.
	"skyflow_function_events_received_total":  {from: "runtime/host"},
	"skyflow_function_event_errors_total":     {from: "runtime/host"},
	"skyflow_function_event_duration_seconds": {from: "runtime/host", histogram: true},
	"skyflow_function_events_in_flight":       {from: "runtime/host"},
	"skyflow_function_panics_total":           {from: "runtime/host"},
	// Skyflow, runtime/outbox/metrics.go: every process that publishes events.
	"skyflow_outbox_pending_events":         {from: "runtime/outbox"},
	"skyflow_outbox_publish_failures_total": {from: "runtime/outbox"},
	"skyflow_outbox_events_published_total": {from: "runtime/outbox"},
	"skyflow_outbox_sweep_resends_total":    {from: "runtime/outbox"},
	// Skyflow, functions/dead-letters: the Broker's dead-letter sink.
	"skyflow_dead_letters_total": {from: "functions/dead-letters"},
	// Skyflow, domain/webhooks/metrics.go: notify-webhook.
	"skyflow_webhook_deliveries_total":         {from: "domain/webhooks"},
	"skyflow_webhook_endpoints_disabled_total": {from: "domain/webhooks"},
	"skyflow_webhook_pending_deliveries":       {from: "domain/webhooks"},
	// Skyflow, functions/gateway: announced names; checked against the
	// source once the gateway exists (TestSkyflowMetricNamesExist).
	"skyflow_gateway_requests_total":           {from: "functions/gateway", planned: true},
	"skyflow_gateway_request_duration_seconds": {from: "functions/gateway", planned: true, histogram: true},
	"skyflow_gateway_rate_limited_total":       {from: "functions/gateway", planned: true},
	"skyflow_gateway_upstream_errors_total":    {from: "functions/gateway", planned: true},
	// Knative Kafka broker dispatcher, Knative 1.21+ (OpenTelemetry names;
	// Kafka components kept milliseconds).
	"kn_eventing_dispatch_latency_ms": {from: "Knative Kafka broker (1.21+)", histogram: true},
	// Knative Kafka broker dispatcher before 1.21 (Micrometer names).
	"event_dispatch_latencies_ms": {from: "Knative Kafka broker (< 1.21)", histogram: true},
	"event_count_1_total":         {from: "Knative Kafka broker (< 1.21)"},
	// Strimzi's Kafka Exporter: consumer-group lag of the Triggers.
	"kafka_consumergroup_lag": {from: "Kafka Exporter"},
	// Prometheus itself: one per scrape target.
	"up": {from: "Prometheus"},
	// client_golang's Go and process collectors (runtime/metrics registers them).
	"go_goroutines":                 {from: "Go runtime"},
	"process_resident_memory_bytes": {from: "process collector"},
	"process_cpu_seconds_total":     {from: "process collector"},
}

// allowed reports whether name is in knownMetrics, with histogram suffixes.
func allowed(name string) bool {
	if _, ok := knownMetrics[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if m, ok := knownMetrics[base]; ok && m.histogram {
				return true
			}
		}
	}
	return false
}

// metricNames returns the metric names an expression selects.
func metricNames(expr parser.Expr) []string {
	var names []string
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		names = append(names, name)
		return nil
	})
	return names
}

func selects(expr parser.Expr, name string) bool {
	return slices.Contains(metricNames(expr), name)
}

// quantileOver reports whether expr has histogram_quantile(q, …) over bucket.
func quantileOver(expr parser.Expr, q float64, bucket string) bool {
	found := false
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		call, ok := node.(*parser.Call)
		if !ok || call.Func.Name != "histogram_quantile" || len(call.Args) != 2 {
			return nil
		}
		lit, ok := call.Args[0].(*parser.NumberLiteral)
		if ok && lit.Val == q && selects(call.Args[1], bucket) {
			found = true
		}
		return nil
	})
	return found
}

// matches reports whether expr selects name with a matcher label=~value.
func matches(expr parser.Expr, name, label, value string) bool {
	found := false
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok || vs.Name != name {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == label && m.Type == labels.MatchRegexp && m.Value == value {
				found = true
			}
		}
		return nil
	})
	return found
}

// checkExpr applies what holds for every query, in rules and panels alike.
func checkExpr(t *testing.T, where string, expr parser.Expr) {
	t.Helper()
	for _, name := range metricNames(expr) {
		if name == "" {
			t.Errorf("%s: a selector without a metric name", where)
		} else if !allowed(name) {
			t.Errorf("%s: metric %q is not in the allow-list (knownMetrics)", where, name)
		}
	}
	// Only the outbox sweep sets the pending gauge; other publishers export
	// 0. A sum would be right by accident only.
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if agg, ok := node.(*parser.AggregateExpr); ok && agg.Op == parser.SUM && selects(agg.Expr, "skyflow_outbox_pending_events") {
			t.Errorf("%s: skyflow_outbox_pending_events must be combined with max, not sum", where)
		}
		// rate() and friends need two samples: at least twice the 30s scrape interval.
		if ms, ok := node.(*parser.MatrixSelector); ok && ms.Range < time.Minute {
			t.Errorf("%s: range %s is shorter than two scrape intervals (1m)", where, ms.Range)
		}
		return nil
	})
}

// readManifests reads a file of one or more YAML documents.
func readManifests(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return splitManifests(t, path, data)
}

func splitManifests(t *testing.T, name string, data []byte) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for i, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(part), &doc); err != nil {
			t.Fatalf("%s: document %d: %v", name, i+1, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

// decode turns a generic YAML/JSON value into out.
func decode(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(out); err != nil {
		t.Fatal(err)
	}
}

func find(docs []map[string]any, kind, name string) map[string]any {
	for _, d := range docs {
		md, _ := d["metadata"].(map[string]any)
		if d["kind"] == kind && md["name"] == name {
			return d
		}
	}
	return nil
}

type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Groups []any `json:"groups"`
	} `json:"spec"`
}

// loadRules parses prometheus-rules.yaml and validates its groups with
// Prometheus's own rule-file parser, strictly (unknown fields are errors).
func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	docs := readManifests(t, "prometheus-rules.yaml")
	if len(docs) != 1 {
		t.Fatalf("prometheus-rules.yaml: %d documents, want 1", len(docs))
	}
	var pr prometheusRule
	decode(t, docs[0], &pr)
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Fatalf("prometheus-rules.yaml is %s %s, want monitoring.coreos.com/v1 PrometheusRule", pr.APIVersion, pr.Kind)
	}
	if len(pr.Spec.Groups) == 0 {
		t.Fatal("prometheus-rules.yaml: no spec.groups")
	}
	ruleFile, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(ruleFile, false)
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

func TestPrometheusRules(t *testing.T) {
	groups := loadRules(t)
	names := map[string]bool{}
	type alert struct {
		name string
		expr parser.Expr
	}
	var alerts []alert
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			where := g.Name + "/" + r.Alert + r.Record
			expr, err := parser.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			checkExpr(t, where, expr)
			if r.Record != "" {
				continue
			}
			if names[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			names[r.Alert] = true
			if !regexp.MustCompile(`^Skyflow[A-Z][A-Za-z]+$`).MatchString(r.Alert) {
				t.Errorf("%s: alert names are SkyflowCamelCase", where)
			}
			if r.For <= 0 {
				t.Errorf("%s: no 'for'", where)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q, want critical, warning or info", where, s)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			alerts = append(alerts, alert{r.Alert, expr})
		}
	}

	// What the alerts must cover.
	required := []struct {
		what string
		ok   func(parser.Expr) bool
	}{
		{"function 5xx ratio", func(e parser.Expr) bool {
			return matches(e, "skyflow_function_event_errors_total", "code", "5..") && selects(e, "skyflow_function_events_received_total")
		}},
		{"function p99 latency", func(e parser.Expr) bool {
			return quantileOver(e, 0.99, "skyflow_function_event_duration_seconds_bucket")
		}},
		{"panics", func(e parser.Expr) bool { return selects(e, "skyflow_function_panics_total") }},
		{"dead letters", func(e parser.Expr) bool { return selects(e, "skyflow_dead_letters_total") }},
		{"outbox backlog", func(e parser.Expr) bool { return selects(e, "skyflow_outbox_pending_events") }},
		{"outbox publish failures", func(e parser.Expr) bool { return selects(e, "skyflow_outbox_publish_failures_total") }},
		{"gateway rate limiting", func(e parser.Expr) bool { return selects(e, "skyflow_gateway_rate_limited_total") }},
	}
	for _, req := range required {
		var by []string
		for _, a := range alerts {
			if req.ok(a.expr) {
				by = append(by, a.name)
			}
		}
		if len(by) == 0 {
			t.Errorf("no alert covers %s", req.what)
		}
	}

	// Counters created on their first increment: the alert must also catch
	// a series that is new in the window (see the file's header).
	for _, a := range alerts {
		for _, lazy := range []string{"skyflow_function_panics_total", "skyflow_dead_letters_total"} {
			if selects(a.expr, lazy) && !strings.Contains(a.expr.String(), "unless") {
				t.Errorf("%s: %s is created on its first increment; catch new series too (unless … offset)", a.name, lazy)
			}
		}
	}
}

// grafanaVar matches a dashboard variable in a query: $name, ${name} or
// ${name:format}.
var grafanaVar = regexp.MustCompile(`\$(\{([A-Za-z0-9_]+)(:[a-z]+)?\}|[A-Za-z0-9_]+)`)

// promqlFromGrafana replaces dashboard variables with values PromQL can parse
// and returns the names of the user-defined variables it used.
func promqlFromGrafana(q string) (string, []string) {
	q = strings.NewReplacer(
		"$__rate_interval", "5m", "${__rate_interval}", "5m",
		"$__range", "1h", "${__range}", "1h",
		"$__interval", "1m", "${__interval}", "1m",
	).Replace(q)
	var used []string
	q = grafanaVar.ReplaceAllStringFunc(q, func(v string) string {
		m := grafanaVar.FindStringSubmatch(v)
		name := m[1]
		if m[2] != "" {
			name = m[2]
		}
		used = append(used, name)
		return "x"
	})
	return q, used
}

type dashPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

type dashboard struct {
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	SchemaVersion int         `json:"schemaVersion"`
	Panels        []dashPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatal("grafana-dashboard.json is not valid JSON")
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard needs uid, title and schemaVersion (got %q, %q, %d)", d.UID, d.Title, d.SchemaVersion)
	}

	// Variables: each query variable reads label values of a known metric.
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		var q string
		switch query := v.Query.(type) {
		case string:
			q = query
		case map[string]any:
			q, _ = query["query"].(string)
		}
		m := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`).FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, q)
		} else if !allowed(m[1]) {
			t.Errorf("variable %s: metric %q is not in the allow-list", v.Name, m[1])
		}
	}
	if !vars["datasource"] {
		t.Error("no datasource variable: the dashboard would be tied to one Prometheus")
	}

	var all []dashPanel
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	ids := map[int]string{}
	var exprs []parser.Expr
	for _, p := range all {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			t.Errorf("%s: id must be positive", where)
		}
		if other, dup := ids[p.ID]; dup {
			t.Errorf("%s: id also used by %q", where, other)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: gridPos x=%d w=%d does not fit 24 columns", where, p.GridPos.X, p.GridPos.W)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("%s: a panel needs a title and at least one query", where)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: datasource must be ${datasource}", where)
		}
		refs := map[string]bool{}
		for _, target := range p.Targets {
			if refs[target.RefID] {
				t.Errorf("%s: refId %s twice", where, target.RefID)
			}
			refs[target.RefID] = true
			q, used := promqlFromGrafana(target.Expr)
			for _, v := range used {
				if !vars[v] {
					t.Errorf("%s: query uses undefined variable $%s", where, v)
				}
			}
			expr, err := parser.ParseExpr(q)
			if err != nil {
				t.Errorf("%s: %q: %v", where, target.Expr, err)
				continue
			}
			checkExpr(t, where, expr)
			exprs = append(exprs, expr)
		}
	}

	required := []struct {
		what string
		ok   func(parser.Expr) bool
	}{
		{"function rate", func(e parser.Expr) bool { return selects(e, "skyflow_function_events_received_total") }},
		{"function errors", func(e parser.Expr) bool { return selects(e, "skyflow_function_event_errors_total") }},
		{"function duration p50", func(e parser.Expr) bool {
			return quantileOver(e, 0.5, "skyflow_function_event_duration_seconds_bucket")
		}},
		{"function duration p99", func(e parser.Expr) bool {
			return quantileOver(e, 0.99, "skyflow_function_event_duration_seconds_bucket")
		}},
		{"gateway requests", func(e parser.Expr) bool { return selects(e, "skyflow_gateway_requests_total") }},
		{"gateway latency", func(e parser.Expr) bool {
			return quantileOver(e, 0.99, "skyflow_gateway_request_duration_seconds_bucket")
		}},
		{"gateway rate limiting", func(e parser.Expr) bool { return selects(e, "skyflow_gateway_rate_limited_total") }},
		{"broker dispatch latency", func(e parser.Expr) bool {
			return quantileOver(e, 0.99, "kn_eventing_dispatch_latency_ms_bucket")
		}},
		{"broker consumer lag", func(e parser.Expr) bool { return selects(e, "kafka_consumergroup_lag") }},
		{"dead letters", func(e parser.Expr) bool { return selects(e, "skyflow_dead_letters_total") }},
		{"outbox pending", func(e parser.Expr) bool { return selects(e, "skyflow_outbox_pending_events") }},
		{"outbox publish failures", func(e parser.Expr) bool { return selects(e, "skyflow_outbox_publish_failures_total") }},
	}
	for _, req := range required {
		if !slices.ContainsFunc(exprs, req.ok) {
			t.Errorf("no panel shows %s", req.what)
		}
	}
}

// TestSkyflowMetricNamesExist keeps the allow-list honest: every skyflow_*
// name in it is registered by the code, unless it belongs to a function not
// written yet.
func TestSkyflowMetricNamesExist(t *testing.T) {
	root := filepath.Join("..", "..")
	registered := map[string]bool{}
	re := regexp.MustCompile(`Name:\s+"(skyflow_[a-z0-9_]+)"`)
	for _, dir := range []string{"runtime", "domain", "functions"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				registered[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for name := range knownMetrics {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m := knownMetrics[name]
		if !strings.HasPrefix(name, "skyflow_") || registered[name] {
			continue
		}
		if m.planned {
			if _, err := os.Stat(filepath.Join(root, m.from)); err == nil {
				t.Errorf("%s exists but does not register %s: align the rules and dashboard with its real names", m.from, name)
			}
			continue
		}
		t.Errorf("%s: no Go code in runtime/, domain/ or functions/ registers it (from %s)", name, m.from)
	}
}

func TestPodMonitor(t *testing.T) {
	docs := readManifests(t, "podmonitor.yaml")
	pm := find(docs, "PodMonitor", "skyflow-functions")
	if pm == nil {
		t.Fatal("podmonitor.yaml: no PodMonitor skyflow-functions")
	}
	var spec struct {
		APIVersion string `json:"apiVersion"`
		Spec       struct {
			Selector struct {
				MatchLabels      map[string]string `json:"matchLabels"`
				MatchExpressions []struct {
					Key      string `json:"key"`
					Operator string `json:"operator"`
				} `json:"matchExpressions"`
			} `json:"selector"`
			Endpoints []struct {
				Port        string `json:"port"`
				Path        string `json:"path"`
				Relabelings []struct {
					TargetLabel string `json:"targetLabel"`
				} `json:"relabelings"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	decode(t, pm, &spec)
	if spec.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersion %s", spec.APIVersion)
	}
	sel := spec.Spec.Selector
	if !slices.ContainsFunc(sel.MatchExpressions, func(e struct {
		Key      string `json:"key"`
		Operator string `json:"operator"`
	}) bool {
		return e.Key == "serving.knative.dev/service" && e.Operator == "Exists"
	}) || len(sel.MatchLabels) > 0 {
		t.Errorf("selector must pick every Knative Service pod (serving.knative.dev/service Exists) and nothing narrower: %+v", sel)
	}
	if len(spec.Spec.Endpoints) != 1 || spec.Spec.Endpoints[0].Port != "user-port" || spec.Spec.Endpoints[0].Path != "/metrics" {
		t.Fatalf("want one endpoint, port user-port, path /metrics: %+v", spec.Spec.Endpoints)
	}
	for _, r := range spec.Spec.Endpoints[0].Relabelings {
		// The host's metrics carry these labels; a target label of the same
		// name would rename them to exported_*.
		if slices.Contains([]string{"function", "type", "code"}, r.TargetLabel) {
			t.Errorf("relabeling writes %q, a label of the host's metrics", r.TargetLabel)
		}
	}
}

type collectorConfig struct {
	Receivers  map[string]map[string]any `json:"receivers"`
	Processors map[string]map[string]any `json:"processors"`
	Exporters  map[string]map[string]any `json:"exporters"`
	Extensions map[string]map[string]any `json:"extensions"`
	Service    struct {
		Telemetry  any      `json:"telemetry"`
		Extensions []string `json:"extensions"`
		Pipelines  map[string]struct {
			Receivers  []string `json:"receivers"`
			Processors []string `json:"processors"`
			Exporters  []string `json:"exporters"`
		} `json:"pipelines"`
	} `json:"service"`
}

// componentType is the type part of a component id "type[/name]".
func componentType(id string) string {
	typ, _, _ := strings.Cut(id, "/")
	return typ
}

func TestOTelCollector(t *testing.T) {
	docs := readManifests(t, "otel-collector.yaml")
	cm := find(docs, "ConfigMap", "otel-collector")
	if cm == nil {
		t.Fatal("no ConfigMap otel-collector")
	}
	data, _ := cm["data"].(map[string]any)
	raw, _ := data["collector.yaml"].(string)
	if raw == "" {
		t.Fatal("ConfigMap otel-collector has no collector.yaml")
	}
	var cfg collectorConfig
	if err := yaml.UnmarshalStrict([]byte(raw), &cfg); err != nil {
		t.Fatalf("collector.yaml: %v", err)
	}

	// Every component a pipeline names is defined.
	for id, p := range cfg.Service.Pipelines {
		for _, r := range p.Receivers {
			if _, ok := cfg.Receivers[r]; !ok {
				t.Errorf("pipeline %s: receiver %s not defined", id, r)
			}
		}
		for _, r := range p.Processors {
			if _, ok := cfg.Processors[r]; !ok {
				t.Errorf("pipeline %s: processor %s not defined", id, r)
			}
		}
		for _, r := range p.Exporters {
			if _, ok := cfg.Exporters[r]; !ok {
				t.Errorf("pipeline %s: exporter %s not defined", id, r)
			}
		}
	}
	for _, e := range cfg.Service.Extensions {
		if _, ok := cfg.Extensions[e]; !ok {
			t.Errorf("extension %s not defined", e)
		}
	}

	traces, ok := cfg.Service.Pipelines["traces"]
	if !ok {
		t.Fatal("no traces pipeline")
	}
	var otlp map[string]any
	for _, r := range traces.Receivers {
		if componentType(r) == "otlp" {
			otlp = cfg.Receivers[r]
		}
	}
	if otlp == nil {
		t.Fatal("traces pipeline has no otlp receiver")
	}
	var protocols struct {
		Protocols struct {
			GRPC struct{ Endpoint string } `json:"grpc"`
			HTTP struct{ Endpoint string } `json:"http"`
		} `json:"protocols"`
	}
	decode(t, otlp, &protocols)
	if !strings.HasSuffix(protocols.Protocols.GRPC.Endpoint, ":4317") || !strings.HasSuffix(protocols.Protocols.HTTP.Endpoint, ":4318") {
		t.Errorf("otlp receiver must listen on gRPC :4317 and HTTP :4318 (all interfaces): %+v", protocols.Protocols)
	}
	// memory_limiter first, so that it refuses data before anything else
	// holds it; batch after it.
	limiter := slices.IndexFunc(traces.Processors, func(p string) bool { return componentType(p) == "memory_limiter" })
	batch := slices.IndexFunc(traces.Processors, func(p string) bool { return componentType(p) == "batch" })
	if limiter != 0 || batch < 0 {
		t.Errorf("traces processors %v: want memory_limiter first, then batch", traces.Processors)
	}
	jaeger := false
	for _, e := range traces.Exporters {
		typ := componentType(e)
		if typ != "otlp" && typ != "otlp_grpc" {
			continue
		}
		if ep, _ := cfg.Exporters[e]["endpoint"].(string); ep == "jaeger-collector.observability:4317" {
			jaeger = true
		}
	}
	if !jaeger {
		t.Errorf("traces pipeline has no OTLP/gRPC exporter to jaeger-collector.observability:4317: %v", traces.Exporters)
	}

	// The Deployment runs this config and the Service exposes both OTLP
	// ports under the name the functions are told to use.
	dep := find(docs, "Deployment", "otel-collector")
	svc := find(docs, "Service", "otel-collector")
	if dep == nil || svc == nil {
		t.Fatal("want a Deployment and a Service named otel-collector")
	}
	var d struct {
		Spec struct {
			Template struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
				Spec struct {
					Containers []struct {
						Args         []string `json:"args"`
						VolumeMounts []struct {
							Name      string `json:"name"`
							MountPath string `json:"mountPath"`
						} `json:"volumeMounts"`
					} `json:"containers"`
					Volumes []struct {
						Name      string `json:"name"`
						ConfigMap struct {
							Name string `json:"name"`
						} `json:"configMap"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	decode(t, dep, &d)
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	configPath := ""
	for _, v := range pod.Volumes {
		if v.ConfigMap.Name != "otel-collector" {
			continue
		}
		for _, m := range pod.Containers[0].VolumeMounts {
			if m.Name == v.Name {
				configPath = m.MountPath + "/collector.yaml"
			}
		}
	}
	if configPath == "" || !slices.Contains(pod.Containers[0].Args, "--config="+configPath) {
		t.Errorf("the collector must run with --config=<mount of ConfigMap otel-collector>/collector.yaml (args %v)", pod.Containers[0].Args)
	}
	var s struct {
		Spec struct {
			Selector map[string]string `json:"selector"`
			Ports    []struct {
				Port int `json:"port"`
			} `json:"ports"`
		} `json:"spec"`
	}
	decode(t, svc, &s)
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the collector's pods", k, v)
		}
	}
	for _, port := range []int{4317, 4318} {
		if !slices.ContainsFunc(s.Spec.Ports, func(p struct {
			Port int `json:"port"`
		}) bool {
			return p.Port == port
		}) {
			t.Errorf("Service otel-collector does not expose %d", port)
		}
	}
	src, err := os.ReadFile("otel-collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector.skyflow:4318") {
		t.Error("otel-collector.yaml must tell which OTEL_EXPORTER_OTLP_ENDPOINT the functions get")
	}
}

// TestKustomize renders the directory with kubectl's built-in kustomize.
func TestKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not on PATH")
	}
	out, err := exec.Command(kubectl, "kustomize", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	docs := splitManifests(t, "kubectl kustomize output", out)
	kinds := map[string]bool{}
	for _, d := range docs {
		md, _ := d["metadata"].(map[string]any)
		kinds[fmt.Sprint(d["kind"], "/", md["name"])] = true
		if md["namespace"] != "skyflow" {
			t.Errorf("%s/%s: namespace %v, want skyflow", d["kind"], md["name"], md["namespace"])
		}
	}
	for _, want := range []string{
		"PodMonitor/skyflow-functions", "PrometheusRule/skyflow", "ConfigMap/otel-collector",
		"Deployment/otel-collector", "Service/otel-collector", "ConfigMap/skyflow-grafana-dashboard",
	} {
		if !kinds[want] {
			t.Errorf("rendered output has no %s", want)
		}
	}
	cm := find(docs, "ConfigMap", "skyflow-grafana-dashboard")
	if cm == nil {
		t.FailNow()
	}
	md, _ := cm["metadata"].(map[string]any)
	lbls, _ := md["labels"].(map[string]any)
	if lbls["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v: want grafana_dashboard: \"1\"", lbls)
	}
	dashJSON, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := cm["data"].(map[string]any)
	if data["skyflow.json"] != string(dashJSON) {
		t.Error("the dashboard ConfigMap does not hold grafana-dashboard.json as skyflow.json")
	}
}
