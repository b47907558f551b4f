package supervisor

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// environ composes the environment of a Service's process: the manifest's
// env with valueFrom resolved, then extra (sorted, for a stable order),
// then what Knative sets itself. exec.Cmd keeps the last of duplicate keys,
// so later entries win. PORT is appended by the caller for each process.
func environ(svc manifest.Service, extra map[string]string, secrets map[string]map[string]string) ([]string, error) {
	var (
		env  []string
		errs []error
	)
	for _, e := range svc.Env {
		if e.From == nil {
			env = append(env, e.Name+"="+e.Value)
			continue
		}
		v, err := lookup(e.From, secrets)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: Service %q: env %s: %w", svc.File, svc.Name, e.Name, err))
			continue
		}
		if v != nil {
			env = append(env, e.Name+"="+*v)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		env = append(env, k+"="+extra[k])
	}
	return append(env,
		"K_SERVICE="+svc.Name,
		"K_CONFIGURATION="+svc.Name,
		"K_REVISION="+svc.Name+"-local",
	), nil
}

// lookup resolves a Secret or ConfigMap key. A missing optional key gives
// nil: Kubernetes then leaves the variable unset.
func lookup(src *manifest.EnvSource, secrets map[string]map[string]string) (*string, error) {
	obj, ok := secrets[src.Kind+"/"+src.Name]
	if !ok {
		if src.Optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%s %q does not exist (it holds key %q)", src.Kind, src.Name, src.Key)
	}
	v, ok := obj[src.Key]
	if !ok {
		if src.Optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%s %q has no key %q", src.Kind, src.Name, src.Key)
	}
	return &v, nil
}

// portEnv is the PORT variable of a process listening on port.
func portEnv(port int) string { return "PORT=" + strconv.Itoa(port) }

// checkEnvNames rejects names that exec would turn into a different variable.
func checkEnvNames(env map[string]string) error {
	for k := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("supervisor: Config.Env: %q is not an environment variable name", k)
		}
	}
	return nil
}
