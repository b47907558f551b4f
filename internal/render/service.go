package render

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/skyflow-oss/skyflow/internal/funcyaml"
)

// The Knative Service as rendered: only the fields Skyflow sets.

type objectMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type service struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   objectMeta  `json:"metadata"`
	Spec       serviceSpec `json:"spec"`
}

type serviceSpec struct {
	Template revisionTemplate `json:"template"`
}

type revisionTemplate struct {
	Metadata templateMeta `json:"metadata,omitzero"`
	Spec     revisionSpec `json:"spec"`
}

type templateMeta struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type revisionSpec struct {
	ContainerConcurrency *int        `json:"containerConcurrency,omitempty"`
	TimeoutSeconds       *int        `json:"timeoutSeconds,omitempty"`
	ServiceAccountName   string      `json:"serviceAccountName,omitempty"`
	Containers           []container `json:"containers"`
	Volumes              []volume    `json:"volumes,omitempty"`
}

type container struct {
	Image           string          `json:"image"`
	Env             []envVar        `json:"env,omitempty"`
	Resources       resources       `json:"resources,omitzero"`
	ReadinessProbe  probe           `json:"readinessProbe"`
	LivenessProbe   probe           `json:"livenessProbe"`
	SecurityContext securityContext `json:"securityContext"`
	VolumeMounts    []volumeMount   `json:"volumeMounts,omitempty"`
}

type envVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *envVarSource `json:"valueFrom,omitempty"`
}

type envVarSource struct {
	SecretKeyRef    *keyRef `json:"secretKeyRef,omitempty"`
	ConfigMapKeyRef *keyRef `json:"configMapKeyRef,omitempty"`
}

type keyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

type resources struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

type probe struct {
	HTTPGet httpGet `json:"httpGet"`
}

// httpGet has no port: Knative probes the container's port.
type httpGet struct {
	Path string `json:"path"`
}

// securityContext is the restricted Pod Security Standard, on the
// container (Knative allows it there without a feature flag).
type securityContext struct {
	AllowPrivilegeEscalation bool           `json:"allowPrivilegeEscalation"`
	Capabilities             capabilities   `json:"capabilities"`
	ReadOnlyRootFilesystem   bool           `json:"readOnlyRootFilesystem"`
	RunAsNonRoot             bool           `json:"runAsNonRoot"`
	RunAsUser                *int64         `json:"runAsUser,omitempty"`
	RunAsGroup               *int64         `json:"runAsGroup,omitempty"`
	SeccompProfile           seccompProfile `json:"seccompProfile"`
}

type capabilities struct {
	Drop []string `json:"drop"`
}

type seccompProfile struct {
	Type string `json:"type"`
}

type volume struct {
	Name      string           `json:"name"`
	Secret    *secretVolume    `json:"secret,omitempty"`
	ConfigMap *configMapVolume `json:"configMap,omitempty"`
	EmptyDir  *emptyDirVolume  `json:"emptyDir,omitempty"`
}

type secretVolume struct {
	SecretName string `json:"secretName"`
}

type configMapVolume struct {
	Name string `json:"name"`
}

type emptyDirVolume struct {
	Medium    string `json:"medium,omitempty"`
	SizeLimit string `json:"sizeLimit,omitempty"`
}

type volumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// number prints a scale number as Knative's annotations take it (50, 0.5).
func number(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func (fn *function) service() (*service, error) {
	m := fn.merged
	d := m.Deploy
	name := m.Name

	labels := map[string]string{
		nameLabel:   name,
		partOfLabel: partOf,
	}
	if d.Annotations[funcyaml.VisibilityAnnotation] != funcyaml.PublicVisibility {
		labels[visibilityLabel] = funcyaml.ClusterLocal
	}
	for _, l := range d.Labels {
		labels[l.Key] = l.Value
	}

	// Template annotations: the scale options, then every annotation that
	// is not a renderer directive.
	ann := map[string]string{}
	s := d.Options.Scale
	if s.Min != nil {
		ann["autoscaling.knative.dev/min-scale"] = strconv.Itoa(*s.Min)
	}
	if s.Max != nil {
		ann["autoscaling.knative.dev/max-scale"] = strconv.Itoa(*s.Max)
	}
	if s.Metric != "" {
		ann["autoscaling.knative.dev/metric"] = s.Metric
	}
	if s.Target != nil {
		ann["autoscaling.knative.dev/target"] = number(*s.Target)
	}
	if s.Utilization != nil {
		ann["autoscaling.knative.dev/target-utilization-percentage"] = number(*s.Utilization)
	}
	for k, v := range d.Annotations {
		if !isDirective(k) {
			ann[k] = v
		}
	}

	spec := revisionSpec{
		ContainerConcurrency: d.Options.Resources.Limits.Concurrency,
		ServiceAccountName:   d.ServiceAccountName,
	}
	if v := d.Annotations[funcyaml.TimeoutAnnotation]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%s: deploy.annotations[%s]: %q is not a whole number", fn.file, funcyaml.TimeoutAnnotation, v)
		}
		spec.TimeoutSeconds = &n
	}

	c := container{
		Image:          "ko://" + Module + "/" + FunctionsDir + "/" + fn.dir,
		ReadinessProbe: probe{httpGet{orDefault(d.HealthEndpoints.Readiness, defaultReadiness)}},
		LivenessProbe:  probe{httpGet{orDefault(d.HealthEndpoints.Liveness, defaultLiveness)}},
		SecurityContext: securityContext{
			AllowPrivilegeEscalation: false,
			Capabilities:             capabilities{Drop: []string{"ALL"}},
			ReadOnlyRootFilesystem:   true,
			RunAsNonRoot:             true,
			SeccompProfile:           seccompProfile{Type: "RuntimeDefault"},
		},
	}
	if p := m.Run.PodSecurityContext; p != nil {
		c.SecurityContext.RunAsUser = p.RunAsUser
		c.SecurityContext.RunAsGroup = p.RunAsGroup
	}
	for _, e := range m.Run.Envs {
		v := envVar{Name: e.Name, Value: e.Value}
		if ref, ok := e.Ref(); ok {
			v.Value = ""
			kr := &keyRef{Name: ref.Name, Key: ref.Key}
			if ref.Kind == "secret" {
				v.ValueFrom = &envVarSource{SecretKeyRef: kr}
			} else {
				v.ValueFrom = &envVarSource{ConfigMapKeyRef: kr}
			}
		}
		c.Env = append(c.Env, v)
	}
	r := d.Options.Resources
	c.Resources.Requests = quantities(r.Requests.CPU, r.Requests.Memory)
	c.Resources.Limits = quantities(r.Limits.CPU, r.Limits.Memory)

	for i, v := range m.Run.Volumes {
		var vol volume
		readOnly := true
		switch {
		case v.Secret != "":
			vol = volume{Name: "secret-" + v.Secret, Secret: &secretVolume{SecretName: v.Secret}}
		case v.ConfigMap != "":
			vol = volume{Name: "config-map-" + v.ConfigMap, ConfigMap: &configMapVolume{Name: v.ConfigMap}}
		case v.EmptyDir != nil:
			vol = volume{Name: fmt.Sprintf("empty-dir-%d", i), EmptyDir: &emptyDirVolume{Medium: v.EmptyDir.Medium, SizeLimit: v.EmptyDir.SizeLimit}}
			readOnly = false
		default:
			continue // refused by checkMerged
		}
		spec.Volumes = append(spec.Volumes, vol)
		c.VolumeMounts = append(c.VolumeMounts, volumeMount{Name: vol.Name, MountPath: v.Path, ReadOnly: readOnly})
	}
	spec.Containers = []container{c}

	return &service{
		APIVersion: "serving.knative.dev/v1",
		Kind:       "Service",
		Metadata:   objectMeta{Name: name, Labels: labels},
		Spec: serviceSpec{Template: revisionTemplate{
			Metadata: templateMeta{
				// Pods carry only the template's labels (knative/serving#4591).
				Labels:      map[string]string{nameLabel: name, partOfLabel: partOf},
				Annotations: nilIfEmpty(ann),
			},
			Spec: spec,
		}},
	}, nil
}

func isDirective(key string) bool {
	return slices.Contains(funcyaml.Directives, key)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func quantities(cpu, memory string) map[string]string {
	out := map[string]string{}
	if cpu != "" {
		out["cpu"] = cpu
	}
	if memory != "" {
		out["memory"] = memory
	}
	return nilIfEmpty(out)
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
