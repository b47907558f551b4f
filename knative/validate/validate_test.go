package validate

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/apis/feature"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	netcfg "knative.dev/networking/pkg/config"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/ptr"
	servingconfig "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	autoscalercfg "knative.dev/serving/pkg/autoscaler/config"
	routecfg "knative.dev/serving/pkg/reconciler/route/config"
	"sigs.k8s.io/yaml"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// knativeServing is the namespace of Knative Serving's own settings.
const knativeServing = "knative-serving"

// configMap returns the data of a ConfigMap of the render, or nil when the
// render has none of that name.
func (r *render) configMap(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	o := r.find("", "ConfigMap", ns, name)
	if o == nil {
		return nil
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(o.doc, &cm); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	if cm.Data == nil {
		return map[string]string{}
	}
	return cm.Data
}

// servingContext is what Knative Serving's webhook validates with on a
// create: the cluster's config-features, config-defaults and
// config-autoscaler, as far as the render sets them (Knative's defaults
// otherwise).
func servingContext(t *testing.T, r *render) context.Context {
	t.Helper()
	features, err := servingconfig.NewFeaturesConfigFromMap(r.configMap(t, knativeServing, "config-features"))
	if err != nil {
		t.Fatalf("config-features: %v", err)
	}
	defaults, err := servingconfig.NewDefaultsConfigFromMap(r.configMap(t, knativeServing, "config-defaults"))
	if err != nil {
		t.Fatalf("config-defaults: %v", err)
	}
	autoscaler, err := autoscalercfg.NewConfigFromMap(r.configMap(t, knativeServing, "config-autoscaler"))
	if err != nil {
		t.Fatalf("config-autoscaler: %v", err)
	}
	ctx := servingconfig.ToContext(context.Background(), &servingconfig.Config{
		Defaults: defaults, Features: features, Autoscaler: autoscaler,
	})
	return apis.WithinCreate(ctx)
}

// eventingContext is Knative Eventing's validation context with the
// features our Broker and Triggers use: delivery.timeout is behind the
// delivery-timeout feature (enabled by default in Eventing 1.15's
// config-features, but the validation code reads it from the context).
func eventingContext() context.Context {
	return apis.WithinCreate(feature.ToContext(context.Background(),
		feature.Flags{feature.DeliveryTimeout: feature.Enabled}))
}

// resolveImages does what `ko resolve --base-import-paths` does to the
// images before kubectl apply (make deploy), so that Knative validates the
// Service the cluster gets. (Knative's weak reference parsing happens to
// accept a ko:// string as well.)
func resolveImages(svc *servingv1.Service) {
	for i, c := range svc.Spec.Template.Spec.Containers {
		if path, ok := strings.CutPrefix(c.Image, "ko://"); ok {
			svc.Spec.Template.Spec.Containers[i].Image = "registry.example.com/skyflow/" +
				filepath.Base(path) + "@sha256:" + strings.Repeat("0", 64)
		}
	}
}

// report fails on the errors of a Knative validation and logs its warnings.
func report(t *testing.T, what string, fe *apis.FieldError) {
	t.Helper()
	if errs := fe.Filter(apis.ErrorLevel); errs != nil {
		t.Errorf("%s: Knative rejects it:\n%v", what, errs)
	}
	if warnings := fe.Filter(apis.WarningLevel); warnings != nil {
		t.Logf("%s: Knative warns:\n%v", what, warnings)
	}
}

// services decodes every Knative Service of the render.
func services(t *testing.T, r *render) map[string]*servingv1.Service {
	t.Helper()
	out := map[string]*servingv1.Service{}
	for _, o := range r.all("serving.knative.dev/v1", "Service") {
		svc := &servingv1.Service{}
		if err := yaml.UnmarshalStrict(o.doc, svc); err != nil {
			t.Errorf("%s: not a serving.knative.dev/v1 Service: %v", o, err)
			continue
		}
		out[svc.Name] = svc
	}
	if len(out) == 0 {
		t.Fatalf("%s: the render has no serving.knative.dev/v1 Service", r.overlay)
	}
	return out
}

func eachOverlay(t *testing.T, test func(t *testing.T, r *render)) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) { test(t, rendered(t, overlay)) })
	}
}

func TestKnativeServingAcceptsTheServices(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		ctx := servingContext(t, r)
		for name, svc := range services(t, r) {
			svc = svc.DeepCopy()
			resolveImages(svc)
			svc.SetDefaults(ctx)
			report(t, "Service "+name, svc.Validate(ctx))
		}
	})
}

func TestKnativeEventingAcceptsTheEventing(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		ctx := eventingContext()
		var unchecked []string
		for _, o := range r.objects {
			var obj interface {
				SetDefaults(context.Context)
				Validate(context.Context) *apis.FieldError
			}
			switch o.APIVersion + "/" + o.Kind {
			case "eventing.knative.dev/v1/Broker":
				obj = &eventingv1.Broker{}
			case "eventing.knative.dev/v1/Trigger":
				obj = &eventingv1.Trigger{}
			case "sources.knative.dev/v1/PingSource":
				obj = &sourcesv1.PingSource{}
			case "sources.knative.dev/v1/SinkBinding":
				obj = &sourcesv1.SinkBinding{}
			default:
				if strings.Contains(o.group(), "knative.dev") && o.group() != "serving.knative.dev" {
					unchecked = append(unchecked, o.String())
				}
				continue
			}
			if err := yaml.UnmarshalStrict(o.doc, obj); err != nil {
				t.Errorf("%s: %v", o, err)
				continue
			}
			obj.SetDefaults(ctx)
			report(t, o.String(), obj.Validate(ctx))
		}
		if len(r.all("eventing.knative.dev/v1", "Broker")) == 0 {
			t.Error("the render has no Broker")
		}
		if len(unchecked) > 0 {
			t.Logf("not validated with Knative's code (their API is not in knative.dev/eventing): %s",
				strings.Join(unchecked, ", "))
		}
	})
}

// TestDeliveryTimeoutNeedsTheFeatureContext makes sure that the eventing
// context really is what Knative's validation reads: without the
// delivery-timeout feature, a Broker's delivery.timeout is rejected.
func TestDeliveryTimeoutNeedsTheFeatureContext(t *testing.T) {
	r := rendered(t, "prod")
	brokers := r.all("eventing.knative.dev/v1", "Broker")
	if len(brokers) == 0 {
		t.Fatal("the render has no Broker")
	}
	b := &eventingv1.Broker{}
	if err := yaml.UnmarshalStrict(brokers[0].doc, b); err != nil {
		t.Fatal(err)
	}
	if b.Spec.Delivery == nil {
		b.Spec.Delivery = &eventingduckv1.DeliverySpec{}
	}
	if b.Spec.Delivery.Timeout == nil {
		b.Spec.Delivery.Timeout = ptr.String("PT30S")
	}
	without := apis.WithinCreate(context.Background())
	b.SetDefaults(without)
	errs := b.Validate(without).Filter(apis.ErrorLevel)
	if errs == nil || !strings.Contains(errs.Error(), "timeout") {
		t.Errorf("without the delivery-timeout feature Knative should reject spec.delivery.timeout, got: %v", errs)
	}
	if errs := b.Validate(eventingContext()).Filter(apis.ErrorLevel); errs != nil {
		t.Errorf("with the delivery-timeout feature: %v", errs)
	}
}

func TestEveryFunctionHasOneService(t *testing.T) {
	fns := functions(t)
	eachOverlay(t, func(t *testing.T, r *render) {
		svcs := services(t, r)
		images := map[string]string{} // image -> function name
		for _, f := range fns {
			images["ko://"+module+"/functions/"+f.Dir] = f.Name
			var with []string
			for name, svc := range svcs {
				for _, c := range svc.Spec.Template.Spec.Containers {
					if c.Image == "ko://"+module+"/functions/"+f.Dir {
						with = append(with, name)
					}
				}
			}
			switch {
			case len(with) != 1:
				t.Errorf("function %s: want exactly one Service with image ko://%s/functions/%s, got %v",
					f.Dir, module, f.Dir, with)
			case with[0] != f.Name:
				t.Errorf("function %s: its Service is named %q, want %q (func.yaml name)", f.Dir, with[0], f.Name)
			}
		}
		for name, svc := range svcs {
			if n := len(svc.Spec.Template.Spec.Containers); n != 1 {
				t.Errorf("Service %s: %d containers, want 1", name, n)
			}
			for _, c := range svc.Spec.Template.Spec.Containers {
				if _, ok := images[c.Image]; !ok {
					t.Errorf("Service %s: image %q is not ko://%s/functions/<a function directory>", name, c.Image, module)
				}
			}
		}
	})
}

func TestOnlyTheGatewayIsPublic(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		for name, svc := range services(t, r) {
			if svc.Labels[visibilityLabel] == "cluster-local" {
				continue
			}
			if name != publicService {
				t.Errorf("Service %s is reachable from outside the cluster: only %s may be; label it %s: cluster-local",
					name, publicService, visibilityLabel)
			}
		}
	})
}

// trigger is the part of a Trigger that says what it delivers to whom.
func triggers(t *testing.T, r *render) []*eventingv1.Trigger {
	t.Helper()
	var out []*eventingv1.Trigger
	for _, o := range r.all("eventing.knative.dev/v1", "Trigger") {
		tr := &eventingv1.Trigger{}
		if err := yaml.UnmarshalStrict(o.doc, tr); err != nil {
			t.Errorf("%s: %v", o, err)
			continue
		}
		out = append(out, tr)
	}
	return out
}

// triggerFilters is what a Trigger filters on, in func.yaml's notation
// (deploy.subscriptions[].filters): attribute -> value, where a value
// ending in '*' is a prefix match. It reads the legacy spec.filter
// attributes and the exact and prefix dialects of the Subscriptions API
// filters (a list: all must match); ok is false when the Trigger uses
// anything else, which no func.yaml subscription renders to.
func triggerFilters(tr *eventingv1.Trigger) (out map[string]string, ok bool) {
	out = map[string]string{}
	if tr.Spec.Filter != nil {
		for k, v := range tr.Spec.Filter.Attributes {
			out[k] = v
		}
	}
	for _, f := range tr.Spec.Filters {
		if len(f.Suffix) > 0 || len(f.All) > 0 || len(f.Any) > 0 || f.Not != nil || f.CESQL != "" {
			return nil, false
		}
		for k, v := range f.Exact {
			out[k] = v
		}
		for k, v := range f.Prefix {
			out[k] = v + "*"
		}
	}
	return out, true
}

func TestEverySubscriptionHasATrigger(t *testing.T) {
	fns := functions(t)
	eachOverlay(t, func(t *testing.T, r *render) {
		trs := triggers(t, r)
		for _, f := range fns {
			for i, sub := range f.Deploy.Subscriptions {
				broker := sub.Source
				if broker == "" {
					broker = "default"
				}
				found := false
				for _, tr := range trs {
					ref := tr.Spec.Subscriber.Ref
					if ref == nil || ref.Kind != "Service" || ref.Name != f.Name ||
						!strings.HasPrefix(ref.APIVersion, "serving.knative.dev/") {
						continue
					}
					if tr.Spec.Broker != broker {
						continue
					}
					filters, ok := triggerFilters(tr)
					if ok && maps.Equal(filters, sub.Filters) {
						found = true
					}
				}
				if !found {
					t.Errorf("function %s: deploy.subscriptions[%d] (broker %s, filters %v) has no Trigger with subscriber Service %s and exactly those filters ('*' at the end: a prefix filter)",
						f.Dir, i, broker, sub.Filters, f.Name)
				}
			}
		}
	})
}

// destinations are the keys under which Knative objects name where events go.
var destinations = []string{"subscriber", "deadLetterSink", "sink"}

// refs finds every destination ref below a decoded object, with its path.
func refs(path string, v any, found func(path string, ref map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if m, ok := child.(map[string]any); ok && slices.Contains(destinations, k) {
				if ref, ok := m["ref"].(map[string]any); ok {
					found(path+"."+k+".ref", ref)
				}
			}
			refs(path+"."+k, child, found)
		}
	case []any:
		for i, child := range v {
			refs(path+"["+strconv.Itoa(i)+"]", child, found)
		}
	}
}

func TestEveryDestinationIsInTheRender(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		n := 0
		for _, o := range r.objects {
			var doc map[string]any
			if err := yaml.Unmarshal(o.doc, &doc); err != nil {
				t.Fatal(err)
			}
			refs("", doc["spec"], func(path string, ref map[string]any) {
				n++
				apiVersion, _ := ref["apiVersion"].(string)
				kind, _ := ref["kind"].(string)
				name, _ := ref["name"].(string)
				ns, _ := ref["namespace"].(string)
				if ns == "" {
					ns = o.Namespace
				}
				group, _, _ := strings.Cut(apiVersion, "/")
				if r.find(group, kind, ns, name) == nil {
					t.Errorf("%s: spec%s names %s %s/%s (%s), which is not in the render", o, path, kind, ns, name, apiVersion)
				}
			})
		}
		for _, tr := range triggers(t, r) {
			if tr.Spec.Subscriber.Ref == nil {
				t.Errorf("Trigger %s: its subscriber is a URI, not a Service of the render", tr.Name)
			} else if tr.Spec.Subscriber.Ref.Kind != "Service" {
				t.Errorf("Trigger %s: subscriber is a %s, want a Knative Service", tr.Name, tr.Spec.Subscriber.Ref.Kind)
			}
			if d := tr.Spec.Delivery; d != nil && d.DeadLetterSink != nil && d.DeadLetterSink.Ref == nil {
				t.Errorf("Trigger %s: dead-letter sink is a URI, not a Service of the render", tr.Name)
			}
		}
		for _, o := range r.all("eventing.knative.dev/v1", "Broker") {
			b := &eventingv1.Broker{}
			if err := yaml.UnmarshalStrict(o.doc, b); err != nil {
				t.Fatal(err)
			}
			if d := b.Spec.Delivery; d == nil || d.DeadLetterSink == nil || d.DeadLetterSink.Ref == nil {
				t.Errorf("Broker %s: no dead-letter sink Service: what fails after the retries would be lost", b.Name)
			}
			if c := b.Spec.Config; c == nil {
				t.Errorf("Broker %s: no spec.config (the Kafka broker's ConfigMap)", b.Name)
			} else if r.find("", c.Kind, c.Namespace, c.Name) == nil {
				t.Errorf("Broker %s: spec.config names %s %s/%s, which is not in the render", b.Name, c.Kind, c.Namespace, c.Name)
			}
		}
		for _, o := range r.all("sources.knative.dev/v1", "SinkBinding") {
			sb := &sourcesv1.SinkBinding{}
			if err := yaml.UnmarshalStrict(o.doc, sb); err != nil {
				t.Fatal(err)
			}
			subject := sb.Spec.Subject
			if subject.Selector == nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(subject.Selector)
			if err != nil {
				t.Errorf("%s: %v", o, err)
				continue
			}
			matched := 0
			for _, svc := range r.all(subject.APIVersion, subject.Kind) {
				if sel.Matches(labels.Set(svc.Labels)) {
					matched++
				}
			}
			if matched == 0 {
				t.Errorf("%s selects no %s of the render (selector %v): no function gets K_SINK", o, subject.Kind, subject.Selector)
			}
		}
		if n == 0 {
			t.Error("no destination ref found in the render: the walk is broken")
		}
	})
}

// Restricted securityContext: what every function container must run with.
func TestServicesAreHardened(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		for name, svc := range services(t, r) {
			spec := svc.Spec.Template.Spec
			if spec.ServiceAccountName != serviceAccount {
				t.Errorf("Service %s: serviceAccountName %q, want %s (Vault's Kubernetes auth)", name, spec.ServiceAccountName, serviceAccount)
			}
			for i, c := range spec.Containers {
				where := fmt.Sprintf("Service %s containers[%d]", name, i)
				if c.ReadinessProbe == nil {
					t.Errorf("%s: no readinessProbe", where)
				}
				if c.LivenessProbe == nil {
					t.Errorf("%s: no livenessProbe", where)
				}
				for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					if _, ok := c.Resources.Requests[res]; !ok {
						t.Errorf("%s: no resources.requests.%s", where, res)
					}
					if _, ok := c.Resources.Limits[res]; !ok {
						t.Errorf("%s: no resources.limits.%s", where, res)
					}
				}
				checkRestricted(t, where, spec.SecurityContext, c)
			}
		}
		sa := r.find("", "ServiceAccount", namespace, serviceAccount)
		if sa == nil {
			t.Fatalf("no ServiceAccount %s/%s in the render", namespace, serviceAccount)
		}
		var account corev1.ServiceAccount
		if err := yaml.UnmarshalStrict(sa.doc, &account); err != nil {
			t.Fatal(err)
		}
		if account.AutomountServiceAccountToken == nil || !*account.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s: automountServiceAccountToken must be true (Vault's Kubernetes auth reads the token)", serviceAccount)
		}
	})
}

func TestEveryObjectIsInNamespaceSkyflow(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		if r.find("", "Namespace", "", namespace) == nil {
			t.Errorf("no Namespace %s in the render", namespace)
		}
		for _, o := range r.objects {
			want := namespace
			if clusterScoped[o.Kind] {
				want = ""
			} else if ns, ok := elsewhere[o.Kind+"/"+o.Name]; ok {
				want = ns
			}
			if o.Namespace != want {
				t.Errorf("%s %s: namespace %q, want %q", o.Kind, o.Name, o.Namespace, want)
			}
		}
	})
}

func TestKafkaTopics(t *testing.T) {
	want := map[string]struct{ replication, partitions string }{
		"dev":  {"1", "4"},
		"prod": {"3", "12"},
	}
	eachOverlay(t, func(t *testing.T, r *render) {
		data := r.configMap(t, namespace, "kafka-broker-config")
		if data == nil {
			t.Fatalf("no ConfigMap %s/kafka-broker-config in the render", namespace)
		}
		w := want[r.overlay]
		if got := data["default.topic.replication.factor"]; got != w.replication {
			t.Errorf("default.topic.replication.factor = %q, want %q", got, w.replication)
		}
		if got := data["default.topic.partitions"]; got != w.partitions {
			t.Errorf("default.topic.partitions = %q, want %q", got, w.partitions)
		}
		if data["bootstrap.servers"] == "" {
			t.Error("kafka-broker-config has no bootstrap.servers")
		}
	})
}

func TestServingConfig(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		network := r.configMap(t, knativeServing, "config-network")
		if network == nil {
			t.Fatal("no ConfigMap knative-serving/config-network in the render")
		}
		cfg, err := netcfg.NewConfigFromMap(network)
		if err != nil {
			t.Errorf("config-network: Knative rejects it: %v", err)
		} else if cfg.DefaultIngressClass != "kourier.ingress.networking.knative.dev" {
			t.Errorf("config-network: ingress class %q, want Kourier", cfg.DefaultIngressClass)
		}
		domain := r.configMap(t, knativeServing, "config-domain")
		if domain == nil {
			t.Fatal("no ConfigMap knative-serving/config-domain in the render")
		}
		d, err := routecfg.NewDomainFromConfigMap(&corev1.ConfigMap{Data: domain})
		if err != nil {
			t.Errorf("config-domain: Knative rejects it: %v", err)
		} else if len(d.Domains) == 0 {
			t.Error("config-domain sets no domain")
		}
		if _, err := servingconfig.NewFeaturesConfigFromMap(r.configMap(t, knativeServing, "config-features")); err != nil {
			t.Errorf("config-features: Knative rejects it: %v", err)
		}
	})
}

// The public gateway never scales to zero in production.
func TestProdGatewayMinScale(t *testing.T) {
	r := rendered(t, "prod")
	svc := services(t, r)[publicService]
	if svc == nil {
		t.Skipf("no %s Service yet", publicService)
	}
	v := svc.Spec.Template.Annotations["autoscaling.knative.dev/min-scale"]
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 {
		t.Errorf("Service %s: autoscaling.knative.dev/min-scale %q, want at least 2 in prod", publicService, v)
	}
	// The prod overlay's patch sets 2: it must not lower what func.yaml asks for.
	for _, f := range functions(t) {
		if f.Name == publicService && f.Deploy.Options.Scale.Min != nil && *f.Deploy.Options.Scale.Min > n {
			t.Errorf("Service %s: min-scale %d in prod, but functions/%s/func.yaml asks for %d: raise the prod overlay's patch",
				publicService, n, f.Dir, *f.Deploy.Options.Scale.Min)
		}
	}
}

// The local platform (skyflow dev) reads the same Services and Triggers
// from the render as the cluster gets.
func TestLocalPlatformReadsTheRender(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "render.yaml"), r.yaml, 0o644); err != nil {
			t.Fatal(err)
		}
		set, err := manifest.Load(dir)
		if err != nil {
			t.Fatalf("local/manifest rejects the render: %v", err)
		}
		if got, want := len(set.Services), len(r.all("serving.knative.dev/v1", "Service")); got != want {
			t.Errorf("local/manifest read %d Services, the render has %d", got, want)
		}
		if got, want := len(set.Triggers), len(r.all("eventing.knative.dev/v1", "Trigger")); got != want {
			t.Errorf("local/manifest read %d Triggers, the render has %d", got, want)
		}
		if got, want := len(set.Brokers), len(r.all("eventing.knative.dev/v1", "Broker")); got != want {
			t.Errorf("local/manifest read %d Brokers, the render has %d", got, want)
		}
	})
}

// handMadeSecrets are the Secrets an operator creates in namespace skyflow
// before the first deploy (docs/deploy.md, "Deploying to a cluster", step 1, which
// TestTheDeploymentGuideListsEveryHandMadeSecret keeps equal to this): they
// hold credentials, so no manifest carries them.
var handMadeSecrets = map[string][]string{
	// url: through PgBouncer, for the functions; direct-url: the server,
	// for PgBouncer itself and `skyflow migrate`.
	"skyflow-postgres": {"url", "direct-url"},
	"skyflow-redis":    {"url"},
	"skyflow-gateway":  {"sender-key"}, // `skyflow sender-key gateway`
	// notify-email's mail relay: url (smtp:// or smtps://), from, ca-file
	// (empty, or /etc/skyflow/smtp/ca.crt with the CA in key ca.crt).
	"skyflow-smtp": {"url", "from", "ca-file"},
	// The VAPID key pair and contact (`skyflow vapid-keys`).
	"skyflow-vapid": {"public-key", "private-key", "subject"},
}

// The deployment guide's step 1 names exactly these Secrets with exactly
// these keys, each as a bullet "- `name`, key(s) `k1`, `k2`, …", and says
// how to make each: an operator who follows it must not meet a pod stuck
// on a Secret it never mentioned.
func TestTheDeploymentGuideListsEveryHandMadeSecret(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, guide, ok := strings.Cut(string(readme), "## Deploying to a cluster")
	_, step, ok2 := strings.Cut(guide, "\n1. Create the Secrets")
	step, _, ok3 := strings.Cut(step, "\n2. ")
	if !ok || !ok2 || !ok3 {
		t.Fatal(`docs/deploy.md has no "Deploying to a cluster" section with a step "1. Create the Secrets" followed by a step 2`)
	}
	listed := map[string][]string{}
	for _, line := range strings.Split(step, "\n") {
		bullet, isBullet := strings.CutPrefix(strings.TrimSpace(line), "- `")
		if !isBullet {
			continue
		}
		name, rest, _ := strings.Cut(bullet, "`")
		head, _, _ := strings.Cut(rest, ":") // the keys come before the colon
		var keys []string
		for i, part := range strings.Split(head, "`") {
			if i%2 == 1 {
				keys = append(keys, part)
			}
		}
		listed[name] = keys
	}
	if !maps.EqualFunc(listed, handMadeSecrets, slices.Equal) {
		t.Errorf("docs/deploy.md step 1 lists the Secrets %v; handMadeSecrets is %v", listed, handMadeSecrets)
	}
	// Each comes with the command that makes it.
	for name := range handMadeSecrets {
		if !strings.Contains(step, "create secret generic "+name) {
			t.Errorf("docs/deploy.md step 1 does not say how to make Secret %s (kubectl -n skyflow create secret generic %s …)", name, name)
		}
	}
}

// Every ConfigMap a function reads is in the render with the keys it
// reads, and every Secret is one the deployment guide tells to create: a
// missing one leaves the pods in CreateContainerConfigError.
func TestEveryConfigMapAndSecretExists(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		for name, svc := range services(t, r) {
			spec := svc.Spec.Template.Spec
			configMap := func(where, cm, key string, optional *bool) {
				if optional != nil && *optional {
					return
				}
				data := r.configMap(t, svc.Namespace, cm)
				if data == nil {
					t.Errorf("Service %s: %s reads ConfigMap %s, which is not in the render", name, where, cm)
				} else if _, ok := data[key]; key != "" && !ok {
					t.Errorf("Service %s: %s reads key %q of ConfigMap %s, which has no such key", name, where, key, cm)
				}
			}
			secret := func(where, s, key string, optional *bool) {
				if optional != nil && *optional || r.find("", "Secret", svc.Namespace, s) != nil {
					return
				}
				keys, ok := handMadeSecrets[s]
				if !ok {
					t.Errorf("Service %s: %s reads Secret %s, which is neither in the render nor in the deployment guide's list", name, where, s)
				} else if key != "" && !slices.Contains(keys, key) {
					t.Errorf("Service %s: %s reads key %q of Secret %s; the deployment guide creates only %v", name, where, key, s, keys)
				}
			}
			for _, c := range spec.Containers {
				for _, e := range c.Env {
					if e.ValueFrom == nil {
						continue
					}
					if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
						configMap("env "+e.Name, ref.Name, ref.Key, ref.Optional)
					}
					if ref := e.ValueFrom.SecretKeyRef; ref != nil {
						secret("env "+e.Name, ref.Name, ref.Key, ref.Optional)
					}
				}
				for _, from := range c.EnvFrom {
					if ref := from.ConfigMapRef; ref != nil {
						configMap("envFrom", ref.Name, "", ref.Optional)
					}
					if ref := from.SecretRef; ref != nil {
						secret("envFrom", ref.Name, "", ref.Optional)
					}
				}
			}
			for _, v := range spec.Volumes {
				if v.ConfigMap != nil {
					configMap("volume "+v.Name, v.ConfigMap.Name, "", v.ConfigMap.Optional)
				}
				if v.Secret != nil {
					secret("volume "+v.Name, v.Secret.SecretName, "", v.Secret.Optional)
				}
			}
		}
	})
}
