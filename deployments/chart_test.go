package deployments

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const chartDir = "helm/leakwatch"

// imageUser is the image's numeric user (deployments/Dockerfile).
const imageUser = 65532

// rendered is one value set's output, decoded.
type rendered struct {
	deployments     map[string]*appsv1.Deployment // by role
	jobs            []*batchv1.Job
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	netpols         []*networkingv1.NetworkPolicy
	ingresses       []*networkingv1.Ingress
	serviceMonitors []*unstructured.Unstructured
}

// everythingOn turns on every optional object and sets every list.
var everythingOn = map[string]any{
	"image":            map[string]any{"repository": "registry.example.com/leakwatch", "tag": "1.2.3"},
	"imagePullSecrets": []any{map[string]any{"name": "regcred"}},
	"env":              map[string]any{"LEAKWATCH_OIDC_ISSUER": "https://id.example.com", "LEAKWATCH_WORKERS_SCAN": 8},
	"worker": map[string]any{"autoscaling": map[string]any{
		"queueDepth": map[string]any{"enabled": true},
	}},
	"networkPolicy": map[string]any{
		"web": map[string]any{"from": []any{map[string]any{"namespaceSelector": map[string]any{
			"matchLabels": map[string]any{"kubernetes.io/metadata.name": "ingress-nginx"}}}}},
		"ops": map[string]any{"from": []any{map[string]any{"namespaceSelector": map[string]any{
			"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}}},
		"egress": map[string]any{
			"postgres": map[string]any{"to": []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.20.0.0/16"}}}},
			"https":    map[string]any{"except": []any{"169.254.0.0/16"}},
			"extra": []any{map[string]any{"ports": []any{map[string]any{"port": 8443, "protocol": "TCP"}},
				"to": []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.30.0.0/16"}}}}},
		},
	},
	"ingress": map[string]any{
		"enabled": true, "className": "nginx", "host": "leakwatch.corp.example",
		"annotations": map[string]any{"cert-manager.io/cluster-issuer": "letsencrypt"},
		"tls":         []any{map[string]any{"secretName": "leakwatch-tls", "hosts": []any{"leakwatch.corp.example"}}},
	},
	"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
	"serviceAccount": map[string]any{"annotations": map[string]any{"iam.example.com/role": "leakwatch"}},
	"nodeSelector":   map[string]any{"kubernetes.io/os": "linux"},
	"tolerations":    []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "leakwatch", "effect": "NoSchedule"}},
	"podAnnotations": map[string]any{"example.com/team": "security"},
	"web":            map[string]any{"annotations": map[string]any{"example.com/tier": "frontend"}},
}

// externalSecrets reads every secret, under other key names, from a Secret
// managed elsewhere.
var externalSecrets = map[string]any{
	"secrets": map[string]any{
		"existingSecret": "leakwatch-prod",
		"keys": map[string]any{
			"databaseURL": "DB_URL", "githubTokens": "GH_TOKENS", "encryptionKey": "ENC_KEY",
			"webhookSigningKey": "WEBHOOK_KEY", "oidcClientSecret": "OIDC_SECRET",
		},
	},
}

// everythingOff turns off each object that is on by default.
var everythingOff = map[string]any{
	"web":            map[string]any{"pdb": map[string]any{"enabled": false}},
	"worker":         map[string]any{"replicas": 3, "pdb": map[string]any{"enabled": false}, "autoscaling": map[string]any{"enabled": false}},
	"networkPolicy":  map[string]any{"enabled": false},
	"serviceAccount": map[string]any{"create": false},
}

func TestChartRenders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		values map[string]any
		check  func(t *testing.T, r *rendered)
	}{
		{"defaults", nil, func(t *testing.T, r *rendered) {
			// Safe by default: budgets, autoscaling, network policy and an
			// identity without API access are on; public exposure is opt-in.
			if len(r.pdbs) != 2 || len(r.hpas) != 1 || len(r.netpols) == 0 || len(r.serviceAccounts) != 2 {
				t.Fatalf("pdbs %d, hpas %d, network policies %d, service accounts %d; want 2, 1, >0, 2",
					len(r.pdbs), len(r.hpas), len(r.netpols), len(r.serviceAccounts))
			}
			if len(r.ingresses) != 0 || len(r.serviceMonitors) != 0 {
				t.Fatalf("ingresses %d, service monitors %d; want none by default", len(r.ingresses), len(r.serviceMonitors))
			}
			if r.deployments["worker"].Spec.Replicas != nil {
				t.Error("worker Deployment sets replicas while its HPA is on: every upgrade would fight the autoscaler")
			}
			hpa := r.hpas[0]
			if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
				t.Errorf("HPA metrics = %+v, want CPU only", hpa.Spec.Metrics)
			}
			requireSecretFiles(t, r, "leakwatch", map[string]string{
				"DATABASE_URL_FILE": "database-url", "LEAKWATCH_GITHUB_TOKENS_FILE": "github-tokens",
				"LEAKWATCH_ENCRYPTION_KEY_FILE": "encryption-key",
			})
			for _, sa := range r.serviceAccounts {
				if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					t.Errorf("ServiceAccount %s mounts an API token; Leakwatch never calls the API", sa.Name)
				}
			}
		}},
		{"everything on", everythingOn, func(t *testing.T, r *rendered) {
			if len(r.ingresses) != 1 || len(r.serviceMonitors) != 1 {
				t.Fatalf("ingresses %d, service monitors %d; want 1 each", len(r.ingresses), len(r.serviceMonitors))
			}
			ing := r.ingresses[0]
			be := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
			if ing.Spec.Rules[0].Host != "leakwatch.corp.example" || be.Port.Name != "http" || len(ing.Spec.TLS) != 1 {
				t.Errorf("ingress = %+v", ing.Spec)
			}
			requireServiceRoutesTo(t, r, be.Name, "http", "web")
			if env := envOf(r.deployments["web"]); env["LEAKWATCH_BASE_URL"] != "https://leakwatch.corp.example" ||
				env["LEAKWATCH_OIDC_ISSUER"] != "https://id.example.com" || env["LEAKWATCH_WORKERS_SCAN"] != "8" {
				t.Errorf("web env = %v", env)
			}
			sm := r.serviceMonitors[0]
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			if len(eps) != 1 || eps[0].(map[string]any)["port"] != "ops" || sm.GetLabels()["release"] != "prometheus" {
				t.Errorf("ServiceMonitor = %v", sm.Object)
			}
			// The ServiceMonitor's Service reaches every role's ops port, and
			// is headless: in-cluster discovery, not a load-balanced address.
			var opsSvc *corev1.Service
			for _, s := range r.services {
				if labels.SelectorFromSet(sel).Matches(labels.Set(s.Labels)) {
					opsSvc = s
				}
			}
			if opsSvc == nil || opsSvc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Fatalf("no headless Service for the ServiceMonitor (selector %v)", sel)
			}
			for role := range r.deployments {
				requireServiceRoutesTo(t, r, opsSvc.Name, "ops", role)
			}
			hpa := r.hpas[0]
			var ext *autoscalingv2.ExternalMetricSource
			for _, m := range hpa.Spec.Metrics {
				if m.Type == autoscalingv2.ExternalMetricSourceType {
					ext = m.External
				}
			}
			if ext == nil || ext.Metric.Name != "leakwatch_river_queue_available_jobs" || ext.Metric.Selector.MatchLabels["queue"] != "scan" ||
				ext.Target.Type != autoscalingv2.AverageValueMetricType || ext.Target.AverageValue.String() != "500" {
				t.Errorf("HPA has no queue depth metric: %+v", hpa.Spec.Metrics)
			}
			for _, d := range r.deployments {
				c := d.Spec.Template.Spec.Containers[0]
				if c.Image != "registry.example.com/leakwatch:1.2.3" || d.Spec.Template.Spec.ImagePullSecrets[0].Name != "regcred" ||
					d.Spec.Template.Spec.NodeSelector["kubernetes.io/os"] != "linux" || len(d.Spec.Template.Spec.Tolerations) != 1 {
					t.Errorf("%s: image, pull secrets or placement not applied", d.Name)
				}
			}
			// The ops port is opened to the monitoring namespace only.
			for _, np := range r.netpols {
				for _, rule := range np.Spec.Ingress {
					for _, p := range rule.Ports {
						if p.Port != nil && p.Port.String() == "ops" && (len(rule.From) != 1 || rule.From[0].NamespaceSelector == nil) {
							t.Errorf("%s opens the ops port to %+v", np.Name, rule.From)
						}
					}
				}
			}
		}},
		{"external secrets", externalSecrets, func(t *testing.T, r *rendered) {
			requireSecretFiles(t, r, "leakwatch-prod", map[string]string{
				"DATABASE_URL_FILE": "DB_URL", "LEAKWATCH_GITHUB_TOKENS_FILE": "GH_TOKENS",
				"LEAKWATCH_ENCRYPTION_KEY_FILE": "ENC_KEY", "LEAKWATCH_WEBHOOK_SIGNING_KEY_FILE": "WEBHOOK_KEY",
				"LEAKWATCH_OIDC_CLIENT_SECRET_FILE": "OIDC_SECRET",
			})
		}},
		{"everything off", everythingOff, func(t *testing.T, r *rendered) {
			if len(r.pdbs) != 0 || len(r.hpas) != 0 || len(r.netpols) != 0 {
				t.Fatalf("pdbs %d, hpas %d, network policies %d; want none", len(r.pdbs), len(r.hpas), len(r.netpols))
			}
			if len(r.serviceAccounts) != 1 { // the migration hook's own
				t.Fatalf("service accounts = %d, want the hook's only", len(r.serviceAccounts))
			}
			if n := r.deployments["worker"].Spec.Replicas; n == nil || *n != 3 {
				t.Fatalf("worker replicas = %v without an HPA, want 3", n)
			}
			if sa := r.deployments["web"].Spec.Template.Spec.ServiceAccountName; sa != "default" {
				t.Fatalf("web runs as service account %q, want default", sa)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, tc.values)
			requireInvariants(t, r)
			tc.check(t, r)
		})
	}
}

// TestChartRefusesMissingSecret: without a Secret for the database URL the
// chart does not render, rather than render pods that crash.
func TestChartRefusesMissingSecret(t *testing.T) {
	t.Parallel()
	for _, values := range []map[string]any{
		{"secrets": map[string]any{"existingSecret": ""}},
		{"secrets": map[string]any{"keys": map[string]any{"databaseURL": ""}}},
	} {
		_, err := renderRaw(values)
		if err == nil || !strings.Contains(err.Error(), "is required") {
			t.Errorf("render with %v: err = %v, want a required-value error", values, err)
		}
	}
}

// TestPlainManifestsAreGone: the hand-written manifests did not parse and
// drifted from the image; the chart replaced them.
func TestPlainManifestsAreGone(t *testing.T) {
	t.Parallel()
	if _, err := loader.LoadDir(chartDir); err != nil {
		t.Fatal(err)
	}
	if _, err := renderRaw(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("kubernetes/leakwatch.yaml"); err == nil {
		t.Fatal("deployments/kubernetes/leakwatch.yaml is back; generate it from the chart and test it, or leave it out")
	}
}

// requireInvariants holds for every value set: hardened, probed, sized pods,
// the migration hook, and references that resolve.
func requireInvariants(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.deployments) != 3 {
		t.Fatalf("deployments = %v, want web, worker, crawler", keys(r.deployments))
	}
	var pods []podOf
	for role, d := range r.deployments {
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", d.Name, len(d.Spec.Template.Spec.Containers))
		}
		c := d.Spec.Template.Spec.Containers[0]
		if want := []string{"serve", "--roles", role}; !slices.Equal(c.Args, want) {
			t.Errorf("%s args = %v, want %v", d.Name, c.Args, want)
		}
		if sel := d.Spec.Selector.MatchLabels; len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %v does not match its pod labels %v", d.Name, sel, d.Spec.Template.Labels)
		}
		for _, probe := range []struct {
			name string
			p    *corev1.Probe
			path string
		}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
			if probe.p == nil || probe.p.HTTPGet == nil || probe.p.HTTPGet.Path != probe.path {
				t.Errorf("%s: %s probe = %+v, want GET %s", d.Name, probe.name, probe.p, probe.path)
				continue
			}
			if port := containerPort(c, probe.p.HTTPGet.Port.String()); port != 9090 {
				t.Errorf("%s: %s probe on port %s = %d, want the ops port 9090", d.Name, probe.name, probe.p.HTTPGet.Port.String(), port)
			}
		}
		env := envOf(d)
		if env["LEAKWATCH_AUTO_MIGRATE"] != "false" || env["LEAKWATCH_OPS_ADDR"] != ":9090" {
			t.Errorf("%s env = %v: replicas must not migrate, and must serve the ops port", d.Name, env)
		}
		if (containerPort(c, "http") != 0) != (role == "web") {
			t.Errorf("%s: only web opens the web port", d.Name)
		}
		if d.Spec.Template.Spec.AutomountServiceAccountToken == nil || *d.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Errorf("%s mounts a Kubernetes API token", d.Name)
		}
		pods = append(pods, podOf{d.Name, d.Spec.Template.Labels, d.Spec.Template.Spec})
	}

	// The migration hook: before install and upgrade, replaced on re-apply,
	// removed after a while.
	if len(r.jobs) != 1 {
		t.Fatalf("jobs = %d, want the migration hook", len(r.jobs))
	}
	job := r.jobs[0]
	ann := job.Annotations
	if ann["helm.sh/hook"] != "pre-install,pre-upgrade" || !strings.Contains(ann["helm.sh/hook-delete-policy"], "before-hook-creation") {
		t.Errorf("migration Job hook annotations = %v", ann)
	}
	if job.Spec.TTLSecondsAfterFinished == nil || *job.Spec.TTLSecondsAfterFinished <= 0 {
		t.Error("migration Job has no TTL")
	}
	js := job.Spec.Template.Spec
	if len(js.Containers) != 1 || !slices.Equal(js.Containers[0].Args, []string{"migrate"}) || js.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("migration Job runs %+v", js.Containers)
	}
	// Pre-install runs before the chart's own objects exist: its service
	// account must be a hook too, created first.
	var hookSA *corev1.ServiceAccount
	for _, sa := range r.serviceAccounts {
		if sa.Name == js.ServiceAccountName {
			hookSA = sa
		}
	}
	if hookSA == nil || hookSA.Annotations["helm.sh/hook"] != ann["helm.sh/hook"] ||
		hookWeight(t, hookSA.Annotations) >= hookWeight(t, ann) {
		t.Errorf("migration Job's service account %q is not a hook created before it", js.ServiceAccountName)
	}
	pods = append(pods, podOf{job.Name, job.Spec.Template.Labels, js})

	saNames := map[string]bool{"default": true}
	for _, sa := range r.serviceAccounts {
		saNames[sa.Name] = true
	}
	for _, p := range pods {
		requireHardened(t, p)
		if !saNames[p.spec.ServiceAccountName] {
			t.Errorf("%s runs as service account %q, which the chart does not create", p.name, p.spec.ServiceAccountName)
		}
	}

	// Budgets and the autoscaler point at pods that exist.
	for _, pdb := range r.pdbs {
		if n := matching(pdb.Spec.Selector.MatchLabels, pods); n != 1 {
			t.Errorf("PDB %s selects %d workloads, want 1", pdb.Name, n)
		}
	}
	for _, hpa := range r.hpas {
		if d := r.deployments["worker"]; hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Name {
			t.Errorf("HPA %s targets %+v, want the worker Deployment", hpa.Name, hpa.Spec.ScaleTargetRef)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
			t.Errorf("HPA %s may scale workers below 2, which the PDB then blocks", hpa.Name)
		}
	}
	// The public Service carries the web port only: the ops port (readiness
	// detail, River UI) is never behind a load-balanced address.
	for _, s := range r.services {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.String() != "http" {
				t.Errorf("Service %s exposes port %s", s.Name, p.TargetPort.String())
			}
		}
		requireServiceRoutesTo(t, r, s.Name, "http", "web")
	}
	// Network policies: every Leakwatch pod is covered by an egress policy
	// that allows DNS, PostgreSQL and HTTPS, and by an ingress policy.
	if len(r.netpols) > 0 {
		for _, p := range pods {
			var egress, ingress bool
			var ports []string
			for _, np := range r.netpols {
				s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
				if err != nil {
					t.Fatalf("%s: %v", np.Name, err)
				}
				if !s.Matches(labels.Set(p.labels)) {
					continue
				}
				for _, typ := range np.Spec.PolicyTypes {
					egress = egress || typ == networkingv1.PolicyTypeEgress
					ingress = ingress || typ == networkingv1.PolicyTypeIngress
				}
				for _, rule := range np.Spec.Egress {
					for _, port := range rule.Ports {
						ports = append(ports, port.Port.String())
					}
				}
			}
			for _, want := range []string{"53", "5432", "443"} {
				if !slices.Contains(ports, want) {
					t.Errorf("%s: no egress to port %s (has %v)", p.name, want, ports)
				}
			}
			if !egress || !ingress {
				t.Errorf("%s: egress policy %v, ingress policy %v", p.name, egress, ingress)
			}
		}
	}
}

type podOf struct {
	name   string
	labels map[string]string
	spec   corev1.PodSpec
}

// requireHardened: what the "restricted" Pod Security Standard asks, with a
// numeric user that runAsNonRoot can verify, plus sized containers.
func requireHardened(t *testing.T, p podOf) {
	t.Helper()
	ps := p.spec.SecurityContext
	if ps == nil {
		t.Errorf("%s: no pod security context", p.name)
		return
	}
	vols := map[string]corev1.Volume{}
	for _, v := range p.spec.Volumes {
		vols[v.Name] = v
	}
	for _, c := range p.spec.Containers {
		cs := c.SecurityContext
		if cs == nil {
			t.Errorf("%s/%s: no security context", p.name, c.Name)
			continue
		}
		nonRoot := firstBool(cs.RunAsNonRoot, ps.RunAsNonRoot)
		user := firstInt(cs.RunAsUser, ps.RunAsUser)
		group := firstInt(cs.RunAsGroup, ps.RunAsGroup)
		seccomp := cs.SeccompProfile
		if seccomp == nil {
			seccomp = ps.SeccompProfile
		}
		switch {
		case nonRoot == nil || !*nonRoot:
			t.Errorf("%s/%s: runAsNonRoot not set", p.name, c.Name)
		case user == nil || *user != imageUser || group == nil || *group != imageUser:
			t.Errorf("%s/%s: user %s group %s, want numeric %d", p.name, c.Name, show(user), show(group), imageUser)
		case cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: privilege escalation allowed", p.name, c.Name)
		case cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: writable root filesystem", p.name, c.Name)
		case cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cs.Capabilities.Add) > 0:
			t.Errorf("%s/%s: capabilities %+v, want all dropped", p.name, c.Name, cs.Capabilities)
		case seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("%s/%s: seccomp %+v, want RuntimeDefault", p.name, c.Name, seccomp)
		case cs.Privileged != nil && *cs.Privileged:
			t.Errorf("%s/%s: privileged", p.name, c.Name)
		}
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[name]; !ok || q.IsZero() {
				t.Errorf("%s/%s: no %s request", p.name, c.Name, name)
			}
		}
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
			t.Errorf("%s/%s: no memory limit", p.name, c.Name)
		}
		// Every mount has its volume, and the only writable one is /tmp.
		for _, m := range c.VolumeMounts {
			v, ok := vols[m.Name]
			if !ok {
				t.Errorf("%s/%s: mount %s has no volume", p.name, c.Name, m.Name)
			}
			if !m.ReadOnly && v.EmptyDir == nil {
				t.Errorf("%s/%s: %s is writable", p.name, c.Name, m.MountPath)
			}
		}
		// Secrets are files from the Secret volume, never values in the
		// pod spec.
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("%s/%s: %s from a secret as an environment variable; mount it as a file", p.name, c.Name, e.Name)
			}
			for _, secret := range []string{"DATABASE_URL", "LEAKWATCH_GITHUB_TOKENS", "LEAKWATCH_ENCRYPTION_KEY",
				"LEAKWATCH_WEBHOOK_SIGNING_KEY", "LEAKWATCH_OIDC_CLIENT_SECRET"} {
				if e.Name == secret {
					t.Errorf("%s/%s: %s set in the pod spec", p.name, c.Name, secret)
				}
			}
		}
	}
}

// requireSecretFiles: each _FILE setting points into the mounted Secret,
// at the key the values name, in every Leakwatch container.
func requireSecretFiles(t *testing.T, r *rendered, secretName string, want map[string]string) {
	t.Helper()
	specs := map[string]corev1.PodSpec{}
	for _, d := range r.deployments {
		specs[d.Name] = d.Spec.Template.Spec
	}
	for name, spec := range specs {
		c := spec.Containers[0]
		mount := ""
		for _, m := range c.VolumeMounts {
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == secretName {
					mount = m.MountPath
				}
			}
		}
		if mount == "" {
			t.Errorf("%s does not mount Secret %s", name, secretName)
			continue
		}
		got := map[string]string{}
		for k, v := range envOf(&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}) {
			if strings.HasSuffix(k, "_FILE") {
				got[k] = strings.TrimPrefix(v, mount+"/")
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s secret files = %v, want %v", name, got, want)
		}
	}
	job := r.jobs[0].Spec.Template.Spec
	if job.Volumes[0].Secret == nil || job.Volumes[0].Secret.SecretName != secretName ||
		job.Containers[0].Env[0].Value != "/secrets/"+want["DATABASE_URL_FILE"] {
		t.Errorf("migration Job reads the database URL from %+v, %v", job.Volumes[0], job.Containers[0].Env)
	}
}

// requireServiceRoutesTo: Service name has a port whose target is the named
// container port of role's pods, and selects them.
func requireServiceRoutesTo(t *testing.T, r *rendered, name, port, role string) {
	t.Helper()
	d := r.deployments[role]
	for _, s := range r.services {
		if s.Name != name {
			continue
		}
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Service %s does not select %s pods", name, role)
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.String() == port && containerPort(d.Spec.Template.Spec.Containers[0], port) != 0 {
				return
			}
		}
		t.Errorf("Service %s has no port to %s's %s", name, role, port)
		return
	}
	t.Errorf("no Service %s", name)
}

// render renders the chart with values over values.yaml, as `helm install`
// would, and decodes every object strictly into its Kubernetes API type.
func render(t *testing.T, values map[string]any) *rendered {
	t.Helper()
	out, err := renderRaw(values)
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{deployments: map[string]*appsv1.Deployment{}}
	names := map[string]bool{}
	for _, file := range sortedKeys(out) {
		if !strings.HasSuffix(file, ".yaml") {
			continue
		}
		docs := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out[file])))
		for {
			doc, err := docs.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			kind, name := decode(t, file, doc, r)
			if names[kind+"/"+name] {
				t.Errorf("%s %s rendered twice", kind, name)
			}
			names[kind+"/"+name] = true
			for _, msg := range validation.IsDNS1123Subdomain(name) {
				t.Errorf("%s %s: name: %s", kind, name, msg)
			}
			if len(name) > 63 && (kind == "Service" || kind == "Deployment") {
				t.Errorf("%s %s: name longer than 63", kind, name)
			}
		}
	}
	return r
}

func renderRaw(values map[string]any) (map[string]string, error) {
	chrt, err := loader.LoadDir(chartDir)
	if err != nil {
		return nil, err
	}
	vals, err := util.ToRenderValues(chrt, values, common.ReleaseOptions{
		Name: "prod", Namespace: "security", Revision: 1, IsInstall: true,
	}, nil)
	if err != nil {
		return nil, err
	}
	// Strict: a template reading a value values.yaml lacks fails.
	return (&engine.Engine{Strict: true}).RenderWithContext(context.Background(), chrt, vals)
}

// decode reads one object into its typed struct; an unknown field, a
// misspelt one or a wrong type fails, as the API server would refuse it.
func decode(t *testing.T, file string, doc []byte, r *rendered) (kind, name string) {
	t.Helper()
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		t.Fatalf("%s: %v\n%s", file, err, doc)
	}
	strict := func(v any) {
		if err := yaml.UnmarshalStrict(doc, v); err != nil {
			t.Fatalf("%s: %s %s does not decode strictly into %T: %v\n%s", file, head.Kind, head.Metadata.Name, v, err, doc)
		}
	}
	for k, v := range head.Metadata.Labels {
		for _, msg := range validation.IsValidLabelValue(v) {
			t.Errorf("%s %s: label %s=%q: %s", head.Kind, head.Metadata.Name, k, v, msg)
		}
	}
	want := map[string]string{
		"Deployment": "apps/v1", "Job": "batch/v1", "Service": "v1", "ServiceAccount": "v1",
		"PodDisruptionBudget": "policy/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
		"NetworkPolicy": "networking.k8s.io/v1", "Ingress": "networking.k8s.io/v1",
		"ServiceMonitor": "monitoring.coreos.com/v1",
	}[head.Kind]
	if want == "" || head.APIVersion != want {
		t.Fatalf("%s: %s %s has apiVersion %q, want %q", file, head.Kind, head.Metadata.Name, head.APIVersion, want)
	}
	switch head.Kind {
	case "Deployment":
		var d appsv1.Deployment
		strict(&d)
		r.deployments[d.Spec.Template.Labels["app.kubernetes.io/component"]] = &d
	case "Job":
		var j batchv1.Job
		strict(&j)
		r.jobs = append(r.jobs, &j)
	case "Service":
		var s corev1.Service
		strict(&s)
		r.services = append(r.services, &s)
	case "ServiceAccount":
		var s corev1.ServiceAccount
		strict(&s)
		r.serviceAccounts = append(r.serviceAccounts, &s)
	case "PodDisruptionBudget":
		var p policyv1.PodDisruptionBudget
		strict(&p)
		r.pdbs = append(r.pdbs, &p)
	case "HorizontalPodAutoscaler":
		var h autoscalingv2.HorizontalPodAutoscaler
		strict(&h)
		r.hpas = append(r.hpas, &h)
	case "NetworkPolicy":
		var n networkingv1.NetworkPolicy
		strict(&n)
		r.netpols = append(r.netpols, &n)
	case "Ingress":
		var i networkingv1.Ingress
		strict(&i)
		r.ingresses = append(r.ingresses, &i)
	case "ServiceMonitor":
		// The Prometheus Operator's types are not worth their module here;
		// the test reads the few fields it checks.
		var u unstructured.Unstructured
		strict(&u.Object)
		r.serviceMonitors = append(r.serviceMonitors, &u)
	}
	return head.Kind, head.Metadata.Name
}

func matching(sel map[string]string, pods []podOf) int {
	n := 0
	for _, p := range pods {
		if labels.SelectorFromSet(sel).Matches(labels.Set(p.labels)) {
			n++
		}
	}
	return n
}

func hookWeight(t *testing.T, ann map[string]string) int {
	t.Helper()
	w, err := strconv.Atoi(ann["helm.sh/hook-weight"])
	if err != nil {
		t.Fatalf("hook weight: %v", err)
	}
	return w
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func envOf(d *appsv1.Deployment) map[string]string {
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	return env
}

func show(p *int64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatInt(*p, 10)
}

func firstBool(a, b *bool) *bool {
	if a != nil {
		return a
	}
	return b
}

func firstInt(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
