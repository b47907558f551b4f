package funcyaml

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Skyflow's renderer directives, carried in deploy.annotations. They are
// read by the manifest renderer and not copied to the Service (except
// Emits, which is informational and copied like any other annotation).
const (
	// VisibilityAnnotation "public" makes the one externally visible
	// Service (the gateway); every other Service is cluster-local.
	VisibilityAnnotation = "skyflow.dev/visibility"
	// TimeoutAnnotation is spec.template.spec.timeoutSeconds.
	TimeoutAnnotation = "skyflow.dev/timeout-seconds"
	// Delivery settings of the Triggers rendered from deploy.subscriptions.
	DeliveryRetryAnnotation         = "skyflow.dev/delivery-retry"
	DeliveryBackoffPolicyAnnotation = "skyflow.dev/delivery-backoff-policy"
	DeliveryBackoffDelayAnnotation  = "skyflow.dev/delivery-backoff-delay"
	DeliveryTimeoutAnnotation       = "skyflow.dev/delivery-timeout"
	DeliveryOrderAnnotation         = "skyflow.dev/delivery-order"
	// DeadLetterSinkAnnotation names the Service that gets what still fails
	// after the retries (DefaultDeadLetterSink), or NoDeadLetterSink.
	DeadLetterSinkAnnotation = "skyflow.dev/dead-letter-sink"
	// EmitsAnnotation lists the event types the function emits,
	// comma-separated (checked against eventing/catalog by the tests).
	EmitsAnnotation = "skyflow.dev/emits"

	// SkyflowPrefix is the prefix of Skyflow's annotations.
	SkyflowPrefix = "skyflow.dev/"

	DefaultDeadLetterSink = "dead-letters"
	NoDeadLetterSink      = "none"
	PublicVisibility      = "public"
	ClusterLocal          = "cluster-local"
)

// Directives are the skyflow.dev/* annotations the renderer consumes.
var Directives = []string{
	VisibilityAnnotation, TimeoutAnnotation,
	DeliveryRetryAnnotation, DeliveryBackoffPolicyAnnotation, DeliveryBackoffDelayAnnotation,
	DeliveryTimeoutAnnotation, DeliveryOrderAnnotation, DeadLetterSinkAnnotation,
}

// scaleAnnotations are the Knative annotations rendered from
// deploy.options.scale (and their old spellings), by scale field.
var scaleAnnotations = map[string]string{
	"autoscaling.knative.dev/min-scale":                     "min",
	"autoscaling.knative.dev/minScale":                      "min",
	"autoscaling.knative.dev/max-scale":                     "max",
	"autoscaling.knative.dev/maxScale":                      "max",
	"autoscaling.knative.dev/metric":                        "metric",
	"autoscaling.knative.dev/target":                        "target",
	"autoscaling.knative.dev/target-utilization-percentage": "utilization",
}

// knownSkyflow are every skyflow.dev/* annotation there is: any other is a typo.
var knownSkyflow = append(slices.Clone(Directives), EmitsAnnotation)

var (
	// From the func JSON schema.
	namePattern       = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envNamePattern    = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	quantitySchema    = regexp.MustCompile(`^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`)
	labelKeyPattern   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	labelValuePattern = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)

	// Kubernetes' own grammars, stricter than the schema's patterns.
	quantityGrammar  = regexp.MustCompile(`^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1035Label     = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	configKeyPattern = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	// CloudEvents attribute names as Knative Eventing accepts them in filters.
	attributePattern = regexp.MustCompile(`^[a-z][a-z0-9]*$`)
	// ISO-8601 durations as Knative's delivery spec takes them (PT0.5S).
	isoDuration = regexp.MustCompile(`^P(?:[0-9]+W)?(?:[0-9]+D)?(?:T(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+(?:\.[0-9]+)?S)?)?$`)
	specVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

	// templatePattern is any {{ … }} in an env value.
	templatePattern = regexp.MustCompile(`\{\{.*?\}\}`)
	// refTemplate is the one form the renderer supports: the whole value is
	// {{ secret:<name>:<key> }} or {{ configMap:<name>:<key> }}.
	refTemplate = regexp.MustCompile(`^\{\{\s*(secret|configMap):([^:\s{}]+):([^:\s{}]+)\s*\}\}$`)
)

// EnvRef is an environment variable taken from a Secret or ConfigMap key.
type EnvRef struct {
	Kind string // "secret" or "configMap"
	Name string
	Key  string
}

// Ref parses a {{ secret:<name>:<key> }} or {{ configMap:<name>:<key> }}
// value; ok is false for a literal.
func (e Env) Ref() (ref EnvRef, ok bool) {
	m := refTemplate.FindStringSubmatch(e.Value)
	if m == nil {
		return EnvRef{}, false
	}
	return EnvRef{Kind: m[1], Name: m[2], Key: m[3]}, true
}

// validator collects every problem of one Function.
type validator struct {
	f    *Function
	errs []*FieldError
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, v.f.fieldError(path, format, args...))
}

func (v *validator) pattern(path, value string, re *regexp.Regexp, what string) {
	if value != "" && !re.MatchString(value) {
		v.errorf(path, "%q is not %s", value, what)
	}
}

func (v *validator) oneOf(path, value string, allowed ...string) {
	if value != "" && !slices.Contains(allowed, value) {
		v.errorf(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
}

// Validate checks f against the func schema's rules and Skyflow's
// conventions, and reports every problem at once, each naming the file,
// the line and the field.
func (f *Function) Validate() error {
	v := &validator{f: f}
	if f.SpecVersion == "" {
		v.errorf("specVersion", "is required (0.36.0)")
	} else {
		v.pattern("specVersion", f.SpecVersion, specVersion, "a version such as 0.36.0")
	}
	if f.Created == "" {
		v.errorf("created", "is required (an RFC 3339 date-time such as 2026-01-02T15:04:05Z)")
	} else if _, err := time.Parse(time.RFC3339Nano, f.Created); err != nil {
		v.errorf("created", "%q is not an RFC 3339 date-time such as 2026-01-02T15:04:05Z", f.Created)
	}
	v.pattern("name", f.Name, namePattern, "a function name (lower-case letters, digits and '-', starting and ending with a letter or digit)")
	v.pattern("namespace", f.Namespace, dns1123Label, "a namespace name")
	v.oneOf("invoke", f.Invoke, "http", "cloudevent")
	v.build()
	v.run()
	v.deploy()
	// In file order, so that a report reads top to bottom.
	slices.SortStableFunc(v.errs, func(a, b *FieldError) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Error(), b.Error())
	})
	errs := make([]error, len(v.errs))
	for i, e := range v.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func (v *validator) build() {
	b := v.f.Build
	v.oneOf("build.builder", b.Builder, "pack", "s2i")
	v.envs("build.buildEnvs", b.BuildEnvs, false)
	if b.PVCSize != "" {
		v.quantity("build.pvcSize", b.PVCSize)
	}
}

func (v *validator) run() {
	r := v.f.Run
	v.envs("run.envs", r.Envs, true)
	if r.StartTimeout != nil && *r.StartTimeout < 0 {
		v.errorf("run.startTimeout", "%d is negative", *r.StartTimeout)
	}
	paths := map[string]int{}
	for i, vol := range r.Volumes {
		path := fmt.Sprintf("run.volumes[%d]", i)
		n := 0
		for _, set := range []bool{vol.Secret != "", vol.ConfigMap != "", vol.PersistentVolumeClaim != nil, vol.EmptyDir != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			v.errorf(path, "sets %d of secret, configMap, persistentVolumeClaim and emptyDir; exactly one is required", n)
		}
		v.pattern(path+".secret", vol.Secret, dns1123Subdomain, "a Secret name")
		v.pattern(path+".configMap", vol.ConfigMap, dns1123Subdomain, "a ConfigMap name")
		if c := vol.PersistentVolumeClaim; c != nil {
			if c.ClaimName == "" {
				v.errorf(path+".persistentVolumeClaim.claimName", "is required")
			}
			v.pattern(path+".persistentVolumeClaim.claimName", c.ClaimName, dns1123Subdomain, "a PersistentVolumeClaim name")
		}
		if e := vol.EmptyDir; e != nil {
			v.oneOf(path+".emptyDir.medium", e.Medium, "Memory")
			if e.SizeLimit != "" {
				v.quantity(path+".emptyDir.sizeLimit", e.SizeLimit)
			}
		}
		switch {
		case vol.Path == "":
			v.errorf(path+".path", "is required (where the volume is mounted)")
		case !strings.HasPrefix(vol.Path, "/"):
			v.errorf(path+".path", "%q is not an absolute path", vol.Path)
		default:
			if j, ok := paths[vol.Path]; ok {
				v.errorf(path+".path", "%q is also the path of run.volumes[%d]", vol.Path, j)
			}
			paths[vol.Path] = i
		}
	}
	if p := r.PodSecurityContext; p != nil {
		for name, id := range map[string]*int64{"RunAsUser": p.RunAsUser, "RunAsGroup": p.RunAsGroup, "FSGroup": p.FSGroup} {
			if id != nil && *id < 0 {
				v.errorf("run.podSecurityContext."+name, "%d is negative", *id)
			}
		}
	}
}

// envs checks a list of environment variables; refs allows the
// {{ secret:… }} and {{ configMap:… }} templates.
func (v *validator) envs(path string, envs []Env, refs bool) {
	seen := map[string]int{}
	for i, e := range envs {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case e.Name == "":
			v.errorf(p+".name", "is required (the whole-Secret form {{ secret:<name> }} is not supported: name each variable)")
		case !envNamePattern.MatchString(e.Name):
			v.errorf(p+".name", "%q is not an environment variable name (letters, digits, '-', '.', '_', not starting with a digit)", e.Name)
		default:
			if j, ok := seen[e.Name]; ok {
				v.errorf(p+".name", "%s is also set by %s[%d]", e.Name, path, j)
			}
			seen[e.Name] = i
		}
		if !templatePattern.MatchString(e.Value) {
			continue
		}
		ref, ok := e.Ref()
		if !refs || !ok {
			v.errorf(p+".value", "%q is not a template the renderer supports: use {{ secret:<name>:<key> }} or {{ configMap:<name>:<key> }} as the whole value, or a literal", e.Value)
			continue
		}
		v.pattern(p+".value", ref.Name, dns1123Subdomain, "a "+ref.Kind+" name")
		v.pattern(p+".value", ref.Key, configKeyPattern, "a "+ref.Kind+" key")
	}
}

// quantity checks a Kubernetes quantity by the schema's pattern and by
// Kubernetes' own grammar (which the pattern is looser than).
func (v *validator) quantity(path, q string) {
	if !quantitySchema.MatchString(q) || !quantityGrammar.MatchString(q) {
		v.errorf(path, "%q is not a Kubernetes quantity ≥ 0 such as 250m, 0.5, 128Mi or 1Gi", q)
	}
}

func (v *validator) deploy() {
	d := v.f.Deploy
	v.pattern("deploy.namespace", d.Namespace, dns1123Label, "a namespace name")
	v.pattern("deploy.serviceAccountName", d.ServiceAccountName, dns1123Subdomain, "a ServiceAccount name")
	v.annotations(d.Annotations)

	s := d.Options.Scale
	if s.Min != nil && *s.Min < 0 {
		v.errorf("deploy.options.scale.min", "%d is negative", *s.Min)
	}
	if s.Max != nil && *s.Max < 0 {
		v.errorf("deploy.options.scale.max", "%d is negative (0 is no limit)", *s.Max)
	}
	if s.Min != nil && s.Max != nil && *s.Max > 0 && *s.Min > *s.Max {
		v.errorf("deploy.options.scale.min", "%d is above deploy.options.scale.max (%d)", *s.Min, *s.Max)
	}
	v.oneOf("deploy.options.scale.metric", s.Metric, "concurrency", "rps")
	if s.Target != nil && *s.Target < 0 {
		v.errorf("deploy.options.scale.target", "%g is negative", *s.Target)
	}
	if s.Utilization != nil && (*s.Utilization < 1 || *s.Utilization > 100) {
		v.errorf("deploy.options.scale.utilization", "%g is not a percentage from 1 to 100", *s.Utilization)
	}

	res := d.Options.Resources
	for path, q := range map[string]string{
		"deploy.options.resources.requests.cpu":    res.Requests.CPU,
		"deploy.options.resources.requests.memory": res.Requests.Memory,
		"deploy.options.resources.limits.cpu":      res.Limits.CPU,
		"deploy.options.resources.limits.memory":   res.Limits.Memory,
	} {
		if q == "" {
			continue
		}
		v.quantity(path, q)
		if strings.HasSuffix(path, ".memory") && strings.HasSuffix(q, "m") {
			v.errorf(path, "%q is in thousandths of a byte: write Mi (mebibytes) or M (megabytes)", q)
		}
	}
	if c := res.Limits.Concurrency; c != nil && *c < 0 {
		v.errorf("deploy.options.resources.limits.concurrency", "%d is negative (0 is no limit)", *c)
	}

	keys := map[string]int{}
	for i, l := range d.Labels {
		p := fmt.Sprintf("deploy.labels[%d]", i)
		switch {
		case l.Key == "":
			v.errorf(p+".key", "is required")
		case !validQualifiedName(l.Key):
			v.errorf(p+".key", "%q is not a label key ([prefix/]name: name at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit; prefix a DNS subdomain)", l.Key)
		case l.Key == "networking.knative.dev/visibility":
			v.errorf(p+".key", "is set by the renderer: use the annotation %s: public for the one public Service", VisibilityAnnotation)
		case l.Key == "app.kubernetes.io/name" || l.Key == "app.kubernetes.io/part-of":
			v.errorf(p+".key", "%s is set by the renderer", l.Key)
		default:
			if j, ok := keys[l.Key]; ok {
				v.errorf(p+".key", "%s is also set by deploy.labels[%d]", l.Key, j)
			}
			keys[l.Key] = i
		}
		if !labelValuePattern.MatchString(l.Value) || len(l.Value) > 63 {
			v.errorf(p+".value", "%q is not a label value (at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)", l.Value)
		}
	}

	for name, path := range map[string]string{"liveness": d.HealthEndpoints.Liveness, "readiness": d.HealthEndpoints.Readiness} {
		if path != "" && !strings.HasPrefix(path, "/") {
			v.errorf("deploy.healthEndpoints."+name, "%q is not an absolute path such as /health/%s", path, name)
		}
	}

	for i, sub := range d.Subscriptions {
		p := fmt.Sprintf("deploy.subscriptions[%d]", i)
		if sub.Source == "" {
			v.errorf(p+".source", "is required (the name of the Broker, e.g. default)")
		} else {
			v.pattern(p+".source", sub.Source, dns1123Subdomain, "a Broker name")
		}
		for attr, value := range sub.Filters {
			fp := p + ".filters[" + attr + "]"
			switch {
			case !attributePattern.MatchString(attr):
				v.errorf(fp, "%q is not a CloudEvents attribute name (lower-case letters and digits, starting with a letter)", attr)
			case value == "":
				v.errorf(fp, "the value is empty: leave the attribute out to match any value")
			case value == "*":
				v.errorf(fp, "\"*\" matches every value: leave the attribute out")
			case strings.Contains(strings.TrimSuffix(value, "*"), "*"):
				v.errorf(fp, "%q: '*' is only allowed at the end (a prefix match)", value)
			}
		}
	}
}

// validQualifiedName is Kubernetes' rule for label and annotation keys.
func validQualifiedName(key string) bool {
	if !labelKeyPattern.MatchString(key) {
		return false
	}
	prefix, name, ok := strings.Cut(key, "/")
	if !ok {
		name, prefix = prefix, ""
	}
	return len(name) <= 63 && len(prefix) <= 253
}

func (v *validator) annotations(ann map[string]string) {
	for key, value := range ann {
		p := "deploy.annotations[" + key + "]"
		if !validQualifiedName(key) {
			v.errorf(p, "%q is not an annotation key ([prefix/]name)", key)
			continue
		}
		if field, ok := scaleAnnotations[key]; ok {
			v.errorf(p, "is rendered from deploy.options.scale.%s: set that instead", field)
			continue
		}
		if !strings.HasPrefix(key, SkyflowPrefix) {
			continue
		}
		switch key {
		case VisibilityAnnotation:
			v.oneOf(p, value, PublicVisibility, ClusterLocal)
		case TimeoutAnnotation:
			if n, err := strconv.Atoi(value); err != nil || n <= 0 {
				v.errorf(p, "%q is not a whole number of seconds > 0", value)
			}
		case DeliveryRetryAnnotation:
			if n, err := strconv.Atoi(value); err != nil || n < 0 {
				v.errorf(p, "%q is not a whole number ≥ 0", value)
			}
		case DeliveryBackoffPolicyAnnotation:
			v.oneOf(p, value, "exponential", "linear")
		case DeliveryBackoffDelayAnnotation, DeliveryTimeoutAnnotation:
			if !isoDuration.MatchString(value) || value == "P" || value == "PT" {
				v.errorf(p, "%q is not an ISO-8601 duration such as PT0.5S or PT1M", value)
			}
		case DeliveryOrderAnnotation:
			v.oneOf(p, value, "ordered", "unordered")
		case DeadLetterSinkAnnotation:
			if value != NoDeadLetterSink && !dns1035Label.MatchString(value) {
				v.errorf(p, "%q is neither a Service name nor %q", value, NoDeadLetterSink)
			}
		case EmitsAnnotation:
			for t := range strings.SplitSeq(value, ",") {
				if strings.TrimSpace(t) == "" {
					v.errorf(p, "%q has an empty event type (comma-separated types)", value)
					break
				}
			}
		default:
			v.errorf(p, "unknown Skyflow annotation (known: %s)", strings.Join(knownSkyflow, ", "))
		}
	}
}
