package manifest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Annotation and label keys of Knative Serving that the local runtime honours.
const (
	MinScaleAnnotation        = "autoscaling.knative.dev/min-scale"
	MaxScaleAnnotation        = "autoscaling.knative.dev/max-scale"
	RetentionPeriodAnnotation = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
	VisibilityLabel           = "networking.knative.dev/visibility"
	VisibilityClusterLocal    = "cluster-local"
	KoPrefix                  = "ko://"
)

// Service is a Knative Serving Service: one function.
type Service struct {
	Meta
	// Image is the container image, ko://<import path> for our functions.
	Image string
	// Package is the Go import path built for the image.
	Package string
	Env     []EnvVar
	// MinScale 0 means the function scales to zero when idle.
	MinScale int
	MaxScale int
	// RetentionPeriod is how long an idle instance is kept (0: platform default).
	RetentionPeriod time.Duration
	// ClusterLocal is false only for the one public Service (the gateway).
	ClusterLocal         bool
	ContainerConcurrency int
	TimeoutSeconds       int
	ReadinessPath        string
	LivenessPath         string
}

// EnvVar is a container environment variable: a literal value or a
// reference to a Secret or ConfigMap key.
type EnvVar struct {
	Name  string
	Value string
	From  *EnvSource
}

// EnvSource names a Secret or ConfigMap key.
type EnvSource struct {
	Kind     string // "Secret" or "ConfigMap"
	Name     string
	Key      string
	Optional bool
}

type serviceYAML struct {
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				ContainerConcurrency *int `json:"containerConcurrency"`
				TimeoutSeconds       *int `json:"timeoutSeconds"`
				Containers           []struct {
					Image string `json:"image"`
					Env   []struct {
						Name      string `json:"name"`
						Value     string `json:"value"`
						ValueFrom *struct {
							SecretKeyRef    *keyRef `json:"secretKeyRef"`
							ConfigMapKeyRef *keyRef `json:"configMapKeyRef"`
						} `json:"valueFrom"`
					} `json:"env"`
					ReadinessProbe *probe `json:"readinessProbe"`
					LivenessProbe  *probe `json:"livenessProbe"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type keyRef struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional bool   `json:"optional"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
	} `json:"httpGet"`
}

func (p *probe) path(def string) string {
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path == "" {
		return def
	}
	return p.HTTPGet.Path
}

func (y *serviceYAML) service(m Meta) (Service, error) {
	where := m.where("Service")
	tmpl := y.Spec.Template
	if len(tmpl.Spec.Containers) != 1 {
		return Service{}, fmt.Errorf("%s: spec.template.spec.containers: want exactly one container, found %d", where, len(tmpl.Spec.Containers))
	}
	c := tmpl.Spec.Containers[0]
	svc := Service{
		Meta:          m,
		Image:         c.Image,
		ClusterLocal:  m.Labels[VisibilityLabel] == VisibilityClusterLocal,
		ReadinessPath: c.ReadinessProbe.path("/health/readiness"),
		LivenessPath:  c.LivenessProbe.path("/health/liveness"),
	}
	if v := m.Labels[VisibilityLabel]; v != "" && v != VisibilityClusterLocal {
		return Service{}, fmt.Errorf("%s: metadata.labels[%s]: %q is not a visibility (only %q is)", where, VisibilityLabel, v, VisibilityClusterLocal)
	}
	if !strings.HasPrefix(c.Image, KoPrefix) || len(c.Image) == len(KoPrefix) {
		return Service{}, fmt.Errorf("%s: spec.template.spec.containers[0].image: %q is not a ko://<import path> image the local platform can build", where, c.Image)
	}
	svc.Package = strings.TrimPrefix(c.Image, KoPrefix)
	for i, e := range c.Env {
		field := fmt.Sprintf("spec.template.spec.containers[0].env[%d]", i)
		if e.Name == "" {
			return Service{}, fmt.Errorf("%s: %s.name is empty", where, field)
		}
		v := EnvVar{Name: e.Name, Value: e.Value}
		if e.ValueFrom != nil {
			switch {
			case e.ValueFrom.SecretKeyRef != nil:
				r := e.ValueFrom.SecretKeyRef
				v.From = &EnvSource{Kind: "Secret", Name: r.Name, Key: r.Key, Optional: r.Optional}
			case e.ValueFrom.ConfigMapKeyRef != nil:
				r := e.ValueFrom.ConfigMapKeyRef
				v.From = &EnvSource{Kind: "ConfigMap", Name: r.Name, Key: r.Key, Optional: r.Optional}
			default:
				return Service{}, fmt.Errorf("%s: %s.valueFrom: only secretKeyRef and configMapKeyRef are supported", where, field)
			}
			if v.From.Name == "" || v.From.Key == "" {
				return Service{}, fmt.Errorf("%s: %s.valueFrom: name and key are required", where, field)
			}
		}
		svc.Env = append(svc.Env, v)
	}
	ann := tmpl.Metadata.Annotations
	var err error
	if svc.MinScale, err = intAnnotation(ann, MinScaleAnnotation, 0); err != nil {
		return Service{}, fmt.Errorf("%s: spec.template.metadata.annotations: %w", where, err)
	}
	if svc.MaxScale, err = intAnnotation(ann, MaxScaleAnnotation, 0); err != nil {
		return Service{}, fmt.Errorf("%s: spec.template.metadata.annotations: %w", where, err)
	}
	if svc.MaxScale != 0 && svc.MinScale > svc.MaxScale {
		return Service{}, fmt.Errorf("%s: spec.template.metadata.annotations: %s (%d) is above %s (%d)", where, MinScaleAnnotation, svc.MinScale, MaxScaleAnnotation, svc.MaxScale)
	}
	if v, ok := ann[RetentionPeriodAnnotation]; ok {
		if svc.RetentionPeriod, err = time.ParseDuration(v); err != nil || svc.RetentionPeriod < 0 {
			return Service{}, fmt.Errorf("%s: spec.template.metadata.annotations[%s]: %q is not a duration such as 30s", where, RetentionPeriodAnnotation, v)
		}
	}
	if p := tmpl.Spec.ContainerConcurrency; p != nil {
		if *p < 0 {
			return Service{}, fmt.Errorf("%s: spec.template.spec.containerConcurrency: %d is negative", where, *p)
		}
		svc.ContainerConcurrency = *p
	}
	if p := tmpl.Spec.TimeoutSeconds; p != nil {
		if *p <= 0 {
			return Service{}, fmt.Errorf("%s: spec.template.spec.timeoutSeconds: %d must be positive", where, *p)
		}
		svc.TimeoutSeconds = *p
	}
	return svc, nil
}

func intAnnotation(ann map[string]string, key string, def int) (int, error) {
	v, ok := ann[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a whole number ≥ 0", key, v)
	}
	return n, nil
}
