package validate

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// pgbouncerName names the PgBouncer's ConfigMap, Deployment, Service and
// PodDisruptionBudget (knative/base/pgbouncer.yaml).
const pgbouncerName = "pgbouncer"

// pgbouncerObjects are the PgBouncer's objects of a render, decoded
// strictly: a misspelt field is an error, not a silently dropped setting.
type pgbouncerObjects struct {
	config     corev1.ConfigMap
	deployment appsv1.Deployment
	service    corev1.Service
	budget     policyv1.PodDisruptionBudget
}

func decodePgBouncer(t *testing.T, r *render) *pgbouncerObjects {
	t.Helper()
	var p pgbouncerObjects
	for _, want := range []struct {
		group, kind string
		into        any
	}{
		{"", "ConfigMap", &p.config},
		{"apps", "Deployment", &p.deployment},
		{"", "Service", &p.service},
		{"policy", "PodDisruptionBudget", &p.budget},
	} {
		o := r.find(want.group, want.kind, namespace, pgbouncerName)
		if o == nil {
			t.Fatalf("%s: no %s %s/%s in the render", r.overlay, want.kind, namespace, pgbouncerName)
		}
		if err := yaml.UnmarshalStrict(o.doc, want.into); err != nil {
			t.Fatalf("%s: %v", o, err)
		}
	}
	return &p
}

// checkRestricted fails unless a container runs as the functions do:
// non-root, read-only root filesystem, no privilege escalation, every
// capability dropped, the runtime's default seccomp profile (Kubernetes'
// restricted Pod Security Standard).
func checkRestricted(t *testing.T, where string, pod *corev1.PodSecurityContext, c corev1.Container) {
	t.Helper()
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	runAsNonRoot := sc.RunAsNonRoot
	if runAsNonRoot == nil {
		runAsNonRoot = pod.RunAsNonRoot
	}
	if runAsNonRoot == nil || !*runAsNonRoot {
		t.Errorf("%s: securityContext.runAsNonRoot is not true", where)
	}
	for _, uid := range []*int64{sc.RunAsUser, pod.RunAsUser} {
		if uid != nil && *uid == 0 {
			t.Errorf("%s: securityContext.runAsUser is 0", where)
		}
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: securityContext.readOnlyRootFilesystem is not true", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: securityContext.allowPrivilegeEscalation is not false", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: securityContext.privileged is true", where)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: securityContext.capabilities.drop does not have ALL", where)
	}
	if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: securityContext.capabilities.add %v", where, sc.Capabilities.Add)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: securityContext.seccompProfile.type is not RuntimeDefault", where)
	}
}

func reportField(t *testing.T, what string, errs field.ErrorList) {
	t.Helper()
	for _, err := range errs {
		t.Errorf("%s: %v", what, err)
	}
}

func reportStrings(t *testing.T, what string, errs []string) {
	t.Helper()
	for _, err := range errs {
		t.Errorf("%s: %s", what, err)
	}
}

// TestPgBouncerManifests checks the PgBouncer's plain Kubernetes objects
// with what of Kubernetes' own validation the API machinery carries (names,
// labels, selectors, ports, environment names), and the rest of what the
// API server would refuse or a pod would trip on: a selector that misses
// its pods, a Service port that names no container port, a volume mount
// without its volume, a ConfigMap or Secret key that no one creates.
func TestPgBouncerManifests(t *testing.T) {
	eachOverlay(t, func(t *testing.T, r *render) {
		p := decodePgBouncer(t, r)
		d, svc, pdb := &p.deployment, &p.service, &p.budget

		reportField(t, "ConfigMap "+pgbouncerName, apivalidation.ValidateObjectMeta(&p.config.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata")))
		for k := range p.config.Data {
			reportStrings(t, "ConfigMap "+pgbouncerName+" key "+k, utilvalidation.IsConfigMapKey(k))
		}
		reportField(t, "Deployment "+pgbouncerName, apivalidation.ValidateObjectMeta(&d.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata")))
		reportField(t, "Service "+pgbouncerName, apivalidation.ValidateObjectMeta(&svc.ObjectMeta, true, apivalidation.NameIsDNS1035Label, field.NewPath("metadata")))
		reportField(t, "PodDisruptionBudget "+pgbouncerName, apivalidation.ValidateObjectMeta(&pdb.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata")))

		// The Deployment's selector picks exactly its own pods.
		spec := d.Spec.Template.Spec
		if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels)+len(d.Spec.Selector.MatchExpressions) == 0 {
			t.Fatal("Deployment pgbouncer: no spec.selector (the API server requires one)")
		}
		reportField(t, "Deployment pgbouncer", metav1validation.ValidateLabelSelector(d.Spec.Selector, metav1validation.LabelSelectorValidationOptions{}, field.NewPath("spec", "selector")))
		reportField(t, "Deployment pgbouncer", metav1validation.ValidateLabels(d.Spec.Template.Labels, field.NewPath("spec", "template", "metadata", "labels")))
		podLabels := labels.Set(d.Spec.Template.Labels)
		if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(podLabels) {
			t.Errorf("Deployment pgbouncer: spec.selector %v does not match its pod template's labels %v (%v)", d.Spec.Selector, podLabels, err)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("Deployment pgbouncer: replicas %v: every function reaches PostgreSQL through it, so one replica would be a single point of failure", d.Spec.Replicas)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Error("Deployment pgbouncer: automountServiceAccountToken must be false (PgBouncer needs no Kubernetes API)")
		}

		volumes := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			reportStrings(t, "Deployment pgbouncer volume "+v.Name, utilvalidation.IsDNS1123Label(v.Name))
			volumes[v.Name] = v
		}
		if len(spec.Containers) != 1 || spec.Containers[0].Name != "pgbouncer" {
			t.Fatalf("Deployment pgbouncer: want one container named pgbouncer, got %d", len(spec.Containers))
		}
		main := spec.Containers[0]
		all := append(slices.Clone(spec.InitContainers), spec.Containers...)
		for _, c := range all {
			where := "Deployment pgbouncer container " + c.Name
			reportStrings(t, where, utilvalidation.IsDNS1123Label(c.Name))
			if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
				t.Errorf("%s: image %q is not pinned to a version", where, c.Image)
			}
			checkRestricted(t, where, spec.SecurityContext, c)
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[res]; !ok {
					t.Errorf("%s: no resources.requests.%s", where, res)
				}
				if _, ok := c.Resources.Limits[res]; !ok {
					t.Errorf("%s: no resources.limits.%s", where, res)
				}
			}
			for _, port := range c.Ports {
				reportStrings(t, where+" port", utilvalidation.IsValidPortNum(int(port.ContainerPort)))
				if port.Name != "" {
					reportStrings(t, where+" port name", utilvalidation.IsValidPortName(port.Name))
				}
			}
			for _, m := range c.VolumeMounts {
				if _, ok := volumes[m.Name]; !ok {
					t.Errorf("%s: mounts volume %q, which the pod does not have", where, m.Name)
				}
			}
			for _, e := range c.Env {
				reportStrings(t, where+" env "+e.Name, utilvalidation.IsEnvVarName(e.Name))
				if e.ValueFrom == nil {
					continue
				}
				if ref := e.ValueFrom.SecretKeyRef; ref != nil && !(ref.Optional != nil && *ref.Optional) {
					if keys, ok := handMadeSecrets[ref.Name]; !ok || !slices.Contains(keys, ref.Key) {
						t.Errorf("%s: env %s reads key %q of Secret %s, which the deployment guide does not create (it creates %v)", where, e.Name, ref.Key, ref.Name, keys)
					}
				}
				if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
					if data := r.configMap(t, namespace, ref.Name); data == nil || data[ref.Key] == "" {
						t.Errorf("%s: env %s reads key %q of ConfigMap %s, which is not in the render", where, e.Name, ref.Key, ref.Name)
					}
				}
			}
		}
		for _, probe := range []*corev1.Probe{main.ReadinessProbe, main.LivenessProbe} {
			if probe == nil {
				t.Error("Deployment pgbouncer: the pgbouncer container needs a readinessProbe and a livenessProbe")
			}
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil && r.configMap(t, namespace, v.ConfigMap.Name) == nil {
				t.Errorf("Deployment pgbouncer: volume %s is ConfigMap %s, which is not in the render", v.Name, v.ConfigMap.Name)
			}
			if v.Secret != nil {
				t.Errorf("Deployment pgbouncer: volume %s mounts Secret %s: the password reaches PgBouncer through configure.sh only", v.Name, v.Secret.SecretName)
			}
		}

		// The Service reaches those pods on a port the container opens.
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service pgbouncer: selector %v does not select the Deployment's pods %v", svc.Spec.Selector, podLabels)
		}
		for _, port := range svc.Spec.Ports {
			reportStrings(t, "Service pgbouncer port", utilvalidation.IsValidPortNum(int(port.Port)))
			opened := slices.ContainsFunc(main.Ports, func(cp corev1.ContainerPort) bool {
				if port.TargetPort.Type == intstr.String {
					return cp.Name == port.TargetPort.StrVal
				}
				return cp.ContainerPort == port.TargetPort.IntVal
			})
			if !opened {
				t.Errorf("Service pgbouncer: port %d targets %q, which the pgbouncer container does not open", port.Port, port.TargetPort.String())
			}
		}

		// The disruption budget covers the same pods and lets one go.
		if pdb.Spec.Selector == nil {
			t.Fatal("PodDisruptionBudget pgbouncer: no selector")
		}
		if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(podLabels) {
			t.Errorf("PodDisruptionBudget pgbouncer: selector %v does not match the Deployment's pods (%v)", pdb.Spec.Selector, err)
		}
		if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
			t.Error("PodDisruptionBudget pgbouncer: neither maxUnavailable nor minAvailable")
		}
	})
}

// ini reads pgbouncer.ini's [pgbouncer] settings and the %include lines.
func ini(text string) (settings map[string]string, includes []string, lastInclude bool) {
	settings = map[string]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	last := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "#") {
			continue
		}
		last = line
		switch {
		case strings.HasPrefix(line, "%include "):
			includes = append(includes, strings.TrimSpace(strings.TrimPrefix(line, "%include ")))
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		case section == "pgbouncer":
			k, v, _ := strings.Cut(line, "=")
			settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return settings, includes, strings.HasPrefix(last, "%include ")
}

// TestPgBouncerSettings: the settings the functions and docs/deploy.md's
// sizing rely on.
func TestPgBouncerSettings(t *testing.T) {
	p := decodePgBouncer(t, rendered(t, "prod"))
	settings, includes, lastInclude := ini(p.config.Data["pgbouncer.ini"])
	for k, want := range map[string]string{
		// runtime/db's cache_describe is built for it; session pooling
		// would pool nothing, with one server connection per client.
		"pool_mode": "transaction",
		// No password in the clear between the functions and PgBouncer.
		"auth_type":       "scram-sha-256",
		"unix_socket_dir": "",
		"listen_port":     "5432",
	} {
		if got, ok := settings[k]; !ok || got != want {
			t.Errorf("pgbouncer.ini: %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"max_client_conn", "default_pool_size"} {
		if n, err := strconv.Atoi(settings[k]); err != nil || n <= 0 {
			t.Errorf("pgbouncer.ini: %s = %q, want a number (docs/deploy.md sizes it)", k, settings[k])
		}
	}
	// The included file switches to [databases]: anything after it would
	// land there.
	if len(includes) != 1 || !lastInclude {
		t.Errorf("pgbouncer.ini: want one %%include, last; got %v (last: %v)", includes, lastInclude)
	}
	d := &p.deployment
	mounted := map[string]string{} // mount path -> volume
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, m := range c.VolumeMounts {
			mounted[m.MountPath] = m.Name
		}
	}
	for _, path := range append(includes, settings["auth_file"]) {
		dir := filepath.Dir(path)
		v, ok := mounted[dir]
		if !ok {
			t.Errorf("pgbouncer.ini reads %s, but the pgbouncer container mounts nothing at %s", path, dir)
			continue
		}
		written := false
		for _, c := range d.Spec.Template.Spec.InitContainers {
			for _, m := range c.VolumeMounts {
				written = written || (m.Name == v && !m.ReadOnly)
			}
		}
		if !written {
			t.Errorf("pgbouncer.ini reads %s from volume %s, which no init container writes", path, v)
		}
	}
	if !strings.Contains(strings.Join(d.Spec.Template.Spec.Containers[0].Command, " "), "/etc/pgbouncer/pgbouncer.ini") {
		t.Errorf("the pgbouncer container runs %v, not with /etc/pgbouncer/pgbouncer.ini", d.Spec.Template.Spec.Containers[0].Command)
	}
}

// configure runs the ConfigMap's configure.sh with /bin/sh (dash here, a
// POSIX shell as in the image) for one direct-url.
func configure(t *testing.T, script, directURL string, env ...string) (out string, stdout, stderr string, err error) {
	t.Helper()
	out = t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "OUT=" + out, "DIRECT_URL=" + directURL}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return out, o.String(), e.String(), err
}

func TestPgBouncerConfigureScript(t *testing.T) {
	script := decodePgBouncer(t, rendered(t, "prod")).config.Data["configure.sh"]
	if script == "" {
		t.Fatal("ConfigMap pgbouncer has no configure.sh")
	}
	good := []struct {
		url, server, users string
	}{
		{"postgres://skyflow:s3cret@db.example.com:5433/skyflow?sslmode=require",
			"server_tls_sslmode = require\n[databases]\n* = host=db.example.com port=5433\n",
			`"skyflow" "s3cret"` + "\n"},
		// Defaults: port 5432, sslmode prefer. Percent-encoding undone;
		// a quote doubled as the auth file wants it; a raw @ in the
		// password is taken up to the last @.
		{`postgresql://app%40corp:p%40ss%22w%3Ard%25@10.0.0.7/skyflow`,
			"server_tls_sslmode = prefer\n[databases]\n* = host=10.0.0.7 port=5432\n",
			`"app@corp" "p@ss""w:rd%"` + "\n"},
		{`postgres://app:a@b\c@[fd00::7]:6000/x?application_name=y&sslmode=disable`,
			"server_tls_sslmode = disable\n[databases]\n* = host=fd00::7 port=6000\n",
			`"app" "a@b\c"` + "\n"},
	}
	for _, tc := range good {
		out, stdout, stderr, err := configure(t, script, tc.url)
		if err != nil {
			t.Errorf("%s: %v\n%s", tc.url, err, stderr)
			continue
		}
		server, _ := os.ReadFile(filepath.Join(out, "server.ini"))
		users, _ := os.ReadFile(filepath.Join(out, "userlist.txt"))
		if body := strings.SplitN(string(server), "\n", 2)[1]; body != tc.server {
			t.Errorf("%s: server.ini\n%s\nwant\n%s", tc.url, body, tc.server)
		}
		if string(users) != tc.users {
			t.Errorf("%s: userlist.txt %q, want %q", tc.url, users, tc.users)
		}
		if fi, err := os.Stat(filepath.Join(out, "userlist.txt")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: userlist.txt mode %v (%v), want 0600", tc.url, fi.Mode(), err)
		}
		if strings.Contains(stdout+stderr, "s3cret") || strings.Contains(stdout+stderr, "p@ss") {
			t.Errorf("%s: configure.sh printed the password: %s%s", tc.url, stdout, stderr)
		}
	}
	// verify-full with the CA it names.
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("a CA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, stderr, err := configure(t, script, "postgres://u:pw@db.example.com/x?sslmode=verify-full", "SERVER_TLS_CA_FILE="+ca)
	server, _ := os.ReadFile(filepath.Join(out, "server.ini"))
	if err != nil || !strings.Contains(string(server), "server_tls_sslmode = verify-full\nserver_tls_ca_file = "+ca+"\n") {
		t.Errorf("verify-full: %v %s\n%s", err, stderr, server)
	}

	for _, tc := range []struct{ url, env, want string }{
		{"", "", "DIRECT_URL is empty"},
		{"mysql://u:secretpw@h/db", "", "not a postgres:// URL"},
		{"postgres://db.example.com/skyflow", "", "no user and password"},
		{"postgres://u@db.example.com/skyflow", "", "no password"},
		{"postgres://u:secretpw@db example/x", "", "not one host"},
		{"postgres://u:secretpw@a,b:5432/x", "", "not one host"},
		{"postgres://u:secretpw@h:54x2/x", "", "port is not a number"},
		{"postgres://u:secret%zzpw@h/x", "", "two hex digits"},
		{"postgres://u:secret%0Apw@h/x", "", "line break"},
		{"postgres://u:secretpw@h/x?sslmode=bogus", "", "sslmode is not one of"},
		{"postgres://u:secretpw@h/x?sslmode=verify-full", "SERVER_TLS_CA_FILE=/nonexistent/ca.crt", "needs the server's CA"},
	} {
		_, stdout, stderr, err := configure(t, script, tc.url, tc.env)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: want a failure saying %q, got %v: %s", tc.url, tc.want, err, stderr)
		}
		if strings.Contains(stdout+stderr, "secret") {
			t.Errorf("%q: configure.sh printed the password: %s%s", tc.url, stdout, stderr)
		}
	}
}

// TestPgBouncerLoadsTheConfig runs the PgBouncer installed here (Debian's
// 1.18, what `make run` uses; skipped without one) on the ConfigMap's
// pgbouncer.ini and configure.sh's output, on a free loopback port, and
// fails on any warning or error in its log: a setting it does not know or
// a value it refuses.
func TestPgBouncerLoadsTheConfig(t *testing.T) {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/pgbouncer"); err != nil {
			t.Skip("pgbouncer is not installed (apt-get install pgbouncer)")
		}
		bin = "/usr/sbin/pgbouncer"
	}
	cm := decodePgBouncer(t, rendered(t, "prod")).config.Data
	dir := t.TempDir()
	// PgBouncer refuses to run as root: as root, run it as nobody, who
	// must reach the files.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
		if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/bin/sh", "-c", cm["configure.sh"])
	cmd.Env = []string{"PATH=/usr/bin:/bin", "OUT=" + dir, "DIRECT_URL=postgres://skyflow:pw@127.0.0.1:1/skyflow?sslmode=disable"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("configure.sh: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := strings.NewReplacer(
		"/var/run/pgbouncer/", dir+"/",
		"listen_addr = *", "listen_addr = 127.0.0.1",
		"listen_port = 5432", "listen_port = "+strconv.Itoa(port),
	).Replace(cm["pgbouncer.ini"])
	confFile := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		for _, f := range []string{"server.ini", "userlist.txt"} {
			if err := os.Chown(filepath.Join(dir, f), 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
	}

	// A file, not a buffer: the test reads it while pgbouncer writes.
	logFile := filepath.Join(dir, "pgbouncer.log")
	logf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	readLog := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	pb := exec.Command(bin, confFile)
	pb.Dir = "/"
	pb.Stdout, pb.Stderr = logf, logf
	pb.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := pb.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pb.Wait() }()
	defer func() {
		_ = pb.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = pb.Process.Kill()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("pgbouncer exited on the ConfigMap's config (%v):\n%s", err, readLog())
		case <-ctx.Done():
			t.Fatalf("pgbouncer did not listen on port %d:\n%s", port, readLog())
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond) // anything it says after listening
	for _, line := range strings.Split(readLog(), "\n") {
		if strings.Contains(line, " WARNING ") || strings.Contains(line, " ERROR ") || strings.Contains(line, " FATAL ") {
			// The descriptor limit of the test's environment is not the pod's.
			if strings.Contains(line, "file descriptor limit") {
				continue
			}
			t.Errorf("pgbouncer says: %s", line)
		}
	}
	if !strings.Contains(readLog(), "process up") {
		t.Errorf("pgbouncer did not say it is up:\n%s", readLog())
	}
	t.Logf("%s", strings.TrimSpace(readLog()))
}
