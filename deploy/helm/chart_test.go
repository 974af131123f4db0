package helm

import (
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
)

// Case is one set of values the chart is rendered with.
type Case struct {
	Name  string
	Files []string
	Sets  []string
}

// everythingOn turns every optional part on, with values files aside.
var everythingOn = []string{
	"tls.enabled=true", "tls.controlPlaneSecret=cp-tls", "tls.dataPlaneSecret=dp-tls",
	"tls.nodeAgentSecret=agent-tls", "tls.rest=true", "dataPlane.tls.secretName=public-tls",
	"ingress.enabled=true", "metrics.serviceMonitor.enabled=true", "networkPolicy.enabled=true",
	"controlPlane.persistence.enabled=true", "nodeAgent.hostDriverPath=/usr/lib/x86_64-linux-gnu",
	"nodeAgent.perNodeSecrets=false", "nodeAgent.agentSecrets.shared=s3cret-agent",
	"controlPlane.seedBackends=gpu1=ollama:http://gpu1:11434", "dataPlane.autoscaling.enabled=false",
	"controlPlane.extraArgs={-max-queue=5}", "dataPlane.extraArgs={-max-attempts=2}",
}

var cases = []Case{
	{Name: "default"},
	{Name: "production", Files: []string{productionFile}},
	{Name: "everything-on", Sets: everythingOn},
	{Name: "single-sqlite", Sets: []string{"controlPlane.replicas=1", "database.driver=sqlite", "nodeAgent.enabled=false"}},
}

func TestLint(t *testing.T) {
	for _, c := range []Case{{Name: "default"}, {Name: "production", Files: []string{productionFile}}} {
		t.Run(c.Name, func(t *testing.T) {
			vals := map[string]any{}
			for _, f := range c.Files {
				vals = loadValuesFile(t, f)
			}
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = testNamespace
			lint.KubeVersion = kubeVersion
			res := lint.Run([]string{chartDir}, vals)
			for _, m := range res.Messages {
				t.Logf("lint: %s", m)
			}
			if res.TotalChartsLinted != 1 || len(res.Errors) > 0 {
				t.Fatalf("helm lint --strict: %d charts, errors %v", res.TotalChartsLinted, res.Errors)
			}
		})
	}
}

// TestTemplateDecodesStrictly renders every case; render decodes each manifest into its
// k8s.io/api type with unknown fields refused, so reaching the counts means all decoded.
func TestTemplateDecodesStrictly(t *testing.T) {
	want := map[string]map[string]int{
		"default":       {"StatefulSet": 1, "Deployment": 1, "DaemonSet": 1, "Service": 3, "PodDisruptionBudget": 2, "HorizontalPodAutoscaler": 1, "Secret": 1, "NetworkPolicy": 0, "ServiceMonitor": 0, "Ingress": 0},
		"production":    {"StatefulSet": 1, "Deployment": 1, "DaemonSet": 1, "Service": 3, "PodDisruptionBudget": 2, "HorizontalPodAutoscaler": 1, "Secret": 0, "NetworkPolicy": 3, "ServiceMonitor": 2, "PodMonitor": 1, "Ingress": 1},
		"everything-on": {"HorizontalPodAutoscaler": 0, "Secret": 2, "NetworkPolicy": 3, "ServiceMonitor": 2, "PodMonitor": 1, "Ingress": 1},
		"single-sqlite": {"StatefulSet": 1, "DaemonSet": 0, "NetworkPolicy": 0},
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := mustRender(t, c.Files, c.Sets...)
			got := map[string]int{}
			for _, o := range r.Objects {
				got[reflect.TypeOf(o).Elem().Name()]++
			}
			for kind, n := range want[c.Name] {
				if got[kind] != n {
					t.Errorf("%d %s rendered, want %d (all: %v)", got[kind], kind, n, got)
				}
			}
		})
	}
}

func TestStrictDecodeRefusesUnknownFields(t *testing.T) {
	_, err := decodeStrict("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n")
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
	if _, err := decodeStrict("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"); err == nil {
		t.Fatal("a kind the test does not know passed unchecked")
	}
}

func TestControlPlaneLeaderAndStandby(t *testing.T) {
	r := mustRender(t, nil)
	sts := one(t, r, "-controlplane", func(s *appsv1.StatefulSet) string { return s.Name })
	headless := one(t, r, "-controlplane-headless", func(s *corev1.Service) string { return s.Name })
	leader := one(t, r, "-controlplane", func(s *corev1.Service) string { return s.Name })
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 2 {
		t.Fatalf("control plane replicas %v, want 2", sts.Spec.Replicas)
	}
	if sts.Spec.ServiceName != headless.Name || headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Fatalf("headless Service %s (clusterIP %q, publishNotReady %v) for StatefulSet serviceName %s",
			headless.Name, headless.Spec.ClusterIP, headless.Spec.PublishNotReadyAddresses, sts.Spec.ServiceName)
	}
	podLabels := sts.Spec.Template.Labels
	for _, svc := range []*corev1.Service{headless, leader} {
		if !selects(svc.Spec.Selector, podLabels) {
			t.Errorf("Service %s selector %v misses the control-plane pods %v", svc.Name, svc.Spec.Selector, podLabels)
		}
	}
	c := container(t, sts.Spec.Template, "controlplane")
	wantArgs := []string{"-leader-election=true", "-leader-lease-ttl=5s",
		"-advertise-addr=$(POD_NAME)." + headless.Name + "." + testNamespace + ".svc:9090"}
	for _, a := range wantArgs {
		if !slices.Contains(c.Args, a) {
			t.Errorf("control plane args %v lack %s", c.Args, a)
		}
	}
	if env(c, "POD_NAME") == nil || env(c, "POD_NAME").ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Error("POD_NAME (used by -advertise-addr) is not the pod's name")
	}
	// /readyz is 200 on the leader only: as the readiness of a standby it would stall the
	// StatefulSet's rollout and leave the PodDisruptionBudget no eviction.
	probe(t, c.ReadinessProbe, "/healthz", "rest")
	probe(t, c.LivenessProbe, "/healthz", "rest")
	if v := env(c, "MINDROUTER_CP_DB_DRIVER"); v == nil || v.Value != "mysql" {
		t.Errorf("control plane db driver %v, want mysql", v)
	}

	pdb := one(t, r, "-controlplane", func(p *policyv1.PodDisruptionBudget) string { return p.Name })
	if !selects(pdb.Spec.Selector.MatchLabels, podLabels) || pdb.Spec.MaxUnavailable.IntValue() != 1 || sts.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		t.Errorf("control-plane PDB %+v does not keep one of the two replicas", pdb.Spec)
	}

	single := mustRender(t, nil, "controlPlane.replicas=1", "database.driver=sqlite")
	sc := container(t, one(t, single, "-controlplane", func(s *appsv1.StatefulSet) string { return s.Name }).Spec.Template, "controlplane")
	for _, a := range sc.Args {
		if strings.HasPrefix(a, "-leader") || strings.HasPrefix(a, "-advertise") {
			t.Errorf("one replica runs without leader election, got arg %s", a)
		}
	}
	probe(t, sc.ReadinessProbe, "/readyz", "rest")
	if env(sc, "MINDROUTER_CP_DB_DSN") != nil {
		t.Error("SQLite needs no DSN (it lives in the data volume)")
	}
}

func TestDataPlaneFindsEveryControlPlaneReplica(t *testing.T) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := mustRender(t, c.Files, c.Sets...)
			sts := one(t, r, "-controlplane", func(s *appsv1.StatefulSet) string { return s.Name })
			var want []string
			for i := range int(*sts.Spec.Replicas) {
				want = append(want, fmt.Sprintf("%s-%d.%s.%s.svc:%d", sts.Name, i, sts.Spec.ServiceName, testNamespace, 9090))
			}
			dp := container(t, one(t, r, "-dataplane", func(d *appsv1.Deployment) string { return d.Name }).Spec.Template, "dataplane")
			if got := env(dp, "MINDROUTER_CONTROLPLANE_ADDR"); got == nil || got.Value != strings.Join(want, ",") {
				t.Errorf("data plane control-plane addresses %v, want %s", got, strings.Join(want, ","))
			}
			for _, ds := range all[appsv1.DaemonSet](r) {
				ag := container(t, ds.Spec.Template, "nodeagent")
				if got := env(ag, "MINDROUTER_AGENT_CONTROL_PLANE"); got == nil || got.Value != strings.Join(want, ",") {
					t.Errorf("node agent control-plane addresses %v, want %s", got, strings.Join(want, ","))
				}
			}
		})
	}
}

func TestDataPlaneDrainsAndScales(t *testing.T) {
	r := mustRender(t, nil)
	d := one(t, r, "-dataplane", func(d *appsv1.Deployment) string { return d.Name })
	c := container(t, d.Spec.Template, "dataplane")
	probe(t, c.ReadinessProbe, "/readyz", "http")
	probe(t, c.LivenessProbe, "/healthz", "http")
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Fatalf("no preStop sleep: endpoints would still send to a stopping data plane: %+v", c.Lifecycle)
	}
	shutdown := env(c, "MINDROUTER_DP_SHUTDOWN_TIMEOUT")
	if shutdown == nil || shutdown.Value != "30s" {
		t.Fatalf("shutdown timeout %v", shutdown)
	}
	grace := *d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace <= c.Lifecycle.PreStop.Sleep.Seconds+30 {
		t.Errorf("terminationGracePeriodSeconds %d does not cover the preStop sleep (%d s) and the drain (30 s)", grace, c.Lifecycle.PreStop.Sleep.Seconds)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("a rollout may take a data plane away before its successor is ready: %+v", d.Spec.Strategy)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("replicas %d set while the autoscaler owns them", *d.Spec.Replicas)
	}
	hpa := one(t, r, "-dataplane", func(h *autoscalingv2.HorizontalPodAutoscaler) string { return h.Name })
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Name || *hpa.Spec.MinReplicas < 2 {
		t.Errorf("autoscaler %+v does not scale %s from 2", hpa.Spec, d.Name)
	}
	pdb := one(t, r, "-dataplane", func(p *policyv1.PodDisruptionBudget) string { return p.Name })
	if !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("data-plane PDB selector %v misses %v", pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	svc := one(t, r, "-dataplane", func(s *corev1.Service) string { return s.Name })
	if !selects(svc.Spec.Selector, d.Spec.Template.Labels) || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("data-plane Service %+v", svc.Spec)
	}

	fixed := mustRender(t, nil, "dataPlane.autoscaling.enabled=false", "dataPlane.replicas=3")
	if n := len(all[autoscalingv2.HorizontalPodAutoscaler](fixed)); n != 0 {
		t.Errorf("%d autoscalers with autoscaling off", n)
	}
	if d := one(t, fixed, "-dataplane", func(d *appsv1.Deployment) string { return d.Name }); d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", d.Spec.Replicas)
	}
}

func TestNodeAgentOnGPUNodes(t *testing.T) {
	r := mustRender(t, nil)
	ds := one(t, r, "-nodeagent", func(d *appsv1.DaemonSet) string { return d.Name })
	spec := ds.Spec.Template.Spec
	if spec.NodeSelector["nvidia.com/gpu.present"] != "true" {
		t.Errorf("node selector %v does not pick GPU nodes", spec.NodeSelector)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(t corev1.Toleration) bool { return t.Key == "nvidia.com/gpu" }) {
		t.Errorf("tolerations %v do not admit tainted GPU nodes", spec.Tolerations)
	}
	if spec.RuntimeClassName == nil || *spec.RuntimeClassName != "nvidia" {
		t.Errorf("runtime class %v: NVML would not be injected", spec.RuntimeClassName)
	}
	c := container(t, ds.Spec.Template, "nodeagent")
	if v := env(c, "NVIDIA_VISIBLE_DEVICES"); v == nil || v.Value != "all" {
		t.Errorf("NVIDIA_VISIBLE_DEVICES %v", v)
	}
	for name := range c.Resources.Limits {
		if strings.HasPrefix(string(name), "nvidia.com/") {
			t.Errorf("the agent takes a GPU (%s) from the engines", name)
		}
	}
	if v := env(c, "MINDROUTER_AGENT_NODE_NAME"); v == nil || v.ValueFrom == nil || v.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("node name %v is not the Kubernetes node's", v)
	}
	if v := env(c, "MINDROUTER_AGENT_SECRET_FILE"); v == nil || !strings.HasSuffix(v.Value, "/$(MINDROUTER_AGENT_NODE_NAME)") {
		t.Errorf("secret file %v is not per node", v)
	}
	probe(t, c.LivenessProbe, "/healthz", "metrics")

	host := mustRender(t, nil, "nodeAgent.hostDriverPath=/usr/lib64", "nodeAgent.runtimeClassName=")
	hc := container(t, one(t, host, "-nodeagent", func(d *appsv1.DaemonSet) string { return d.Name }).Spec.Template, "nodeagent")
	if v := env(hc, "MINDROUTER_AGENT_NVML_LIBRARY"); v == nil || v.Value != "/host-driver/libnvidia-ml.so.1" {
		t.Errorf("NVML library %v", v)
	}
	if n := len(all[appsv1.DaemonSet](mustRender(t, nil, "nodeAgent.enabled=false"))); n != 0 {
		t.Errorf("%d DaemonSets with the node agent off", n)
	}
}

// TestEnvAndFlagsExist: every MINDROUTER_* variable and every flag the chart sets is one the
// binary of that container knows (docs/configuration.md, kept complete by each binary's
// TestEveryVariableIsDocumented).
func TestEnvAndFlagsExist(t *testing.T) {
	docs, err := documentedSettings()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := mustRender(t, c.Files, c.Sets...)
			n := 0
			for _, w := range workloads(r) {
				// Service links would add MINDROUTER_CONTROLPLANE_PORT and the like for a release
				// named mindrouter: variables nobody set, under the binaries' prefix.
				if l := w.Pod.Spec.EnableServiceLinks; l == nil || *l {
					t.Errorf("%s %s: service links are on", w.Kind, w.Name)
				}
				for _, ctr := range w.Pod.Spec.Containers {
					known, ok := docs[ctr.Name]
					if !ok {
						t.Fatalf("%s %s: container %q runs no known binary", w.Kind, w.Name, ctr.Name)
					}
					for _, e := range ctr.Env {
						if strings.HasPrefix(e.Name, "MINDROUTER_") {
							n++
							if !known.Env[e.Name] {
								t.Errorf("%s %s sets %s, which %s does not read", w.Kind, w.Name, e.Name, ctr.Name)
							}
						}
					}
					for _, a := range append(slices.Clone(ctr.Command), ctr.Args...) {
						if f, ok := flagName(a); ok && !known.Flags[f] {
							t.Errorf("%s %s passes %s, a flag %s does not have", w.Kind, w.Name, a, ctr.Name)
						}
					}
				}
			}
			if n < 10 {
				t.Fatalf("only %d MINDROUTER_ variables checked", n)
			}
		})
	}
}

func TestEveryFileSettingIsMounted(t *testing.T) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := mustRender(t, c.Files, c.Sets...)
			for _, w := range workloads(r) {
				vols := map[string]bool{}
				for _, v := range w.Pod.Spec.Volumes {
					vols[v.Name] = true
				}
				for _, c := range w.Claims {
					vols[c] = true
				}
				for _, ctr := range w.Pod.Spec.Containers {
					for _, m := range ctr.VolumeMounts {
						if m.SubPath != "" {
							t.Errorf("%s mounts %s with subPath: a renewed Secret would never reach it", w.Name, m.Name)
						}
						if !vols[m.Name] {
							t.Errorf("%s mounts undefined volume %s", w.Name, m.Name)
						}
					}
					for _, e := range ctr.Env {
						if !strings.HasSuffix(e.Name, "_FILE") && !strings.HasSuffix(e.Name, "_DIR") && !strings.HasSuffix(e.Name, "_LIBRARY") {
							continue
						}
						if !slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool {
							return strings.HasPrefix(path.Clean(e.Value), m.MountPath+"/") || path.Clean(e.Value) == m.MountPath
						}) {
							t.Errorf("%s: %s=%s lies on no mounted volume", w.Name, e.Name, e.Value)
						}
					}
				}
			}
		})
	}
}

func TestNoContainerRunsAsRoot(t *testing.T) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := mustRender(t, c.Files, c.Sets...)
			for _, w := range workloads(r) {
				spec := w.Pod.Spec
				if spec.HostNetwork || spec.HostPID || spec.HostIPC {
					t.Errorf("%s shares host namespaces", w.Name)
				}
				if ps := spec.SecurityContext; ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
					t.Errorf("%s pod may run as root", w.Name)
				}
				if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
					t.Errorf("%s mounts a service account token it does not use", w.Name)
				}
				for _, v := range spec.Volumes {
					if v.HostPath != nil && !slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == v.Name && m.ReadOnly }) {
						t.Errorf("%s mounts host path %s writable", w.Name, v.HostPath.Path)
					}
				}
				for _, ctr := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
					sc := ctr.SecurityContext
					switch {
					case sc == nil:
						t.Errorf("%s/%s has no security context", w.Name, ctr.Name)
					case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0:
						t.Errorf("%s/%s may run as root", w.Name, ctr.Name)
					case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
						t.Errorf("%s/%s has a writable root file system", w.Name, ctr.Name)
					case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || (sc.Privileged != nil && *sc.Privileged):
						t.Errorf("%s/%s may escalate privileges", w.Name, ctr.Name)
					case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
						t.Errorf("%s/%s keeps capabilities: %+v", w.Name, ctr.Name, sc.Capabilities)
					}
					if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
						t.Errorf("%s/%s has no CPU request or memory limit", w.Name, ctr.Name)
					}
				}
			}
		})
	}
}

// TestSecretsNotInlined: secret values reach the Secret and nothing else; every variable that
// carries a secret comes from a secretKeyRef, or composes one by $(VAR) reference.
func TestSecretsNotInlined(t *testing.T) {
	secrets := map[string]string{
		"cluster-token": "tok-3f9a1c0b7e6d5a4f3e2d1c0b9a8f7e6d",
		"admin-api-key": "mr2_" + strings.Repeat("Ab9_", 10) + "xyz",
		"database-dsn":  "mindrouter:pw-7c1e0d@tcp(db.example:3306)/mindrouter?parseTime=true",
		"gpu1":          "agent-secret-58e2b1",
	}
	r := mustRender(t, nil, "secrets.clusterToken="+secrets["cluster-token"], "secrets.adminApiKey="+secrets["admin-api-key"],
		"database.dsn="+secrets["database-dsn"], "nodeAgent.agentSecrets.gpu1="+secrets["gpu1"])
	held := map[string]string{}
	for _, s := range all[corev1.Secret](r) {
		for k, v := range s.Data {
			held[k] = string(v)
		}
	}
	for k, v := range secrets {
		if held[k] != v {
			t.Errorf("Secret key %s holds %q, want %q", k, held[k], v)
		}
	}
	for _, o := range r.Objects {
		if _, ok := o.(*corev1.Secret); ok {
			continue
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range secrets {
			if strings.Contains(string(b), v) {
				t.Errorf("%T carries the %s in clear", o, k)
			}
		}
	}
	for _, c := range append(cases, Case{Name: "given", Sets: []string{"database.dsn=" + secrets["database-dsn"]}}) {
		t.Run(c.Name, func(t *testing.T) {
			r := mustRender(t, c.Files, c.Sets...)
			for _, w := range workloads(r) {
				for _, ctr := range w.Pod.Spec.Containers {
					fromSecret := map[string]bool{}
					for _, e := range ctr.Env {
						if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
							fromSecret[e.Name] = true
						}
					}
					for _, e := range ctr.Env {
						if !secretish.MatchString(e.Name) || strings.HasSuffix(e.Name, "_FILE") || e.ValueFrom != nil {
							continue
						}
						refs := varRef.FindAllStringSubmatch(e.Value, -1)
						if len(refs) == 0 {
							t.Errorf("%s/%s: %s is a literal value", w.Name, ctr.Name, e.Name)
						}
						for _, ref := range refs {
							if !fromSecret[ref[1]] {
								t.Errorf("%s/%s: %s refers to $(%s), which is not from a Secret", w.Name, ctr.Name, e.Name, ref[1])
							}
						}
					}
				}
			}
		})
	}

	gen := mustRender(t, nil)
	s := one(t, gen, "-secrets", func(s *corev1.Secret) string { return s.Name })
	if len(s.Data["cluster-token"]) != 48 {
		t.Errorf("generated cluster token %q, want 48 characters", s.Data["cluster-token"])
	}
	if _, ok := s.Data["admin-api-key"]; ok {
		t.Error("an admin key was made up; the control plane generates and prints one")
	}
}

var (
	secretish = regexp.MustCompile(`TOKEN|SECRET|DSN|API_KEY|PASSWORD`)
	varRef    = regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`)
)

func TestExistingSecrets(t *testing.T) {
	r := mustRender(t, nil, "secrets.existingSecret=mine", "nodeAgent.existingAgentSecret=agents", "database.dsnSecret.name=dbs")
	if n := len(all[corev1.Secret](r)); n != 0 {
		t.Fatalf("%d Secrets rendered although all are given", n)
	}
	for _, w := range workloads(r) {
		for _, v := range w.Pod.Spec.Volumes {
			if v.Secret != nil && (v.Name == "secrets" && v.Secret.SecretName != "mine" || v.Name == "agent-secrets" && v.Secret.SecretName != "agents") {
				t.Errorf("%s volume %s reads Secret %s", w.Name, v.Name, v.Secret.SecretName)
			}
		}
	}
	cp := container(t, one(t, r, "-controlplane", func(s *appsv1.StatefulSet) string { return s.Name }).Spec.Template, "controlplane")
	if v := env(cp, "MINDROUTER_CP_DB_DSN"); v == nil || v.ValueFrom.SecretKeyRef.Name != "dbs" || v.ValueFrom.SecretKeyRef.Key != "database-dsn" {
		t.Errorf("DSN %+v not from Secret dbs", v)
	}
	if v := env(cp, "MINDROUTER_CP_ADMIN_API_KEY"); v == nil || v.ValueFrom.SecretKeyRef.Name != "mine" || !*v.ValueFrom.SecretKeyRef.Optional {
		t.Errorf("admin key %+v not optional from Secret mine", v)
	}
}

func TestOptionalResourcesOnlyWhenEnabled(t *testing.T) {
	off := mustRender(t, nil)
	on := mustRender(t, nil, everythingOn...)
	for _, k := range []struct {
		name string
		n    func(*Rendered) int
	}{
		{"NetworkPolicy", func(r *Rendered) int { return len(all[networkingv1.NetworkPolicy](r)) }},
		{"Ingress", func(r *Rendered) int { return len(all[networkingv1.Ingress](r)) }},
		{"ServiceMonitor", func(r *Rendered) int { return len(all[monitoringv1.ServiceMonitor](r)) }},
		{"PersistentVolumeClaim template", func(r *Rendered) int {
			return len(one(t, r, "-controlplane", func(s *appsv1.StatefulSet) string { return s.Name }).Spec.VolumeClaimTemplates)
		}},
	} {
		if got := k.n(off); got != 0 {
			t.Errorf("%d %s with default values", got, k.name)
		}
		if got := k.n(on); got == 0 {
			t.Errorf("no %s when enabled", k.name)
		}
	}
	// The control plane's gRPC port admits the data planes and node agents only.
	np := one(t, on, "-controlplane", func(p *networkingv1.NetworkPolicy) string { return p.Name })
	dp := one(t, on, "-dataplane", func(d *appsv1.Deployment) string { return d.Name })
	ag := one(t, on, "-nodeagent", func(d *appsv1.DaemonSet) string { return d.Name })
	grpc := np.Spec.Ingress[0]
	if grpc.Ports[0].Port.String() != "grpc" || len(grpc.From) != 3 ||
		!selects(grpc.From[0].PodSelector.MatchLabels, dp.Spec.Template.Labels) || !selects(grpc.From[1].PodSelector.MatchLabels, ag.Spec.Template.Labels) {
		t.Errorf("gRPC ingress rule %+v", grpc)
	}
	if selects(grpc.From[0].PodSelector.MatchLabels, ag.Spec.Template.Labels) {
		t.Error("the data planes' peer selects the node agents too")
	}
}

func TestTLSBetweenPlanes(t *testing.T) {
	r := mustRender(t, []string{productionFile})
	sts := one(t, r, "-controlplane", func(s *appsv1.StatefulSet) string { return s.Name })
	dp := one(t, r, "-dataplane", func(d *appsv1.Deployment) string { return d.Name })
	ag := one(t, r, "-nodeagent", func(d *appsv1.DaemonSet) string { return d.Name })
	for _, w := range []struct {
		pod    corev1.PodTemplateSpec
		ctr    string
		secret string
		vars   []string
	}{
		{sts.Spec.Template, "controlplane", "mindrouter-controlplane-tls", []string{"MINDROUTER_CP_TLS_CERT_FILE", "MINDROUTER_CP_TLS_KEY_FILE", "MINDROUTER_CP_TLS_CLIENT_CA_FILE", "MINDROUTER_CP_REST_TLS_CERT_FILE"}},
		{dp.Spec.Template, "dataplane", "mindrouter-dataplane-client-tls", []string{"MINDROUTER_DP_CONTROLPLANE_CA_FILE", "MINDROUTER_DP_CONTROLPLANE_CERT_FILE", "MINDROUTER_DP_CONTROLPLANE_KEY_FILE"}},
		{ag.Spec.Template, "nodeagent", "mindrouter-nodeagent-client-tls", []string{"MINDROUTER_AGENT_TLS_CA_FILE", "MINDROUTER_AGENT_TLS_CERT_FILE", "MINDROUTER_AGENT_TLS_KEY_FILE"}},
	} {
		c := container(t, w.pod, w.ctr)
		for _, name := range w.vars {
			e := env(c, name)
			if e == nil {
				t.Errorf("%s: %s not set", w.ctr, name)
				continue
			}
			if vol := volumeOf(w.pod, c, e.Value); vol == nil || vol.Secret == nil || vol.Secret.SecretName != w.secret {
				t.Errorf("%s: %s=%s is not in Secret %s", w.ctr, name, e.Value, w.secret)
			}
		}
	}
	want := "mr-mindrouter-controlplane.ai.svc"
	for _, v := range []*corev1.EnvVar{env(container(t, dp.Spec.Template, "dataplane"), "MINDROUTER_DP_CONTROLPLANE_SERVER_NAME"),
		env(container(t, ag.Spec.Template, "nodeagent"), "MINDROUTER_AGENT_TLS_SERVER_NAME")} {
		if v == nil || v.Value != want {
			t.Errorf("server name %v, want %s", v, want)
		}
	}
	if p := container(t, sts.Spec.Template, "controlplane").ReadinessProbe; p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("REST port serves HTTPS but is probed over %s", p.HTTPGet.Scheme)
	}
}

func TestRefusedValues(t *testing.T) {
	for _, c := range []struct {
		sets []string
		want string
	}{
		{[]string{"database.driver=sqlite"}, "needs database.driver=mysql"},
		{[]string{"tls.enabled=true"}, "Secret is required when tls.enabled"},
		{[]string{"tls.enabled=true", "tls.controlPlaneSecret=a", "tls.nodeAgentSecret=c"}, "tls.dataPlaneSecret is required"},
		{[]string{"tls.enabled=true", "tls.dataPlaneSecret=b", "tls.nodeAgentSecret=c"}, "tls.controlPlaneSecret is required"},
		{[]string{"tls.enabled=true", "tls.controlPlaneSecret=a", "tls.dataPlaneSecret=b"}, "tls.nodeAgentSecret is required"},
		{[]string{"dataPlane.terminationGracePeriodSeconds=35"}, "must exceed"},
		{[]string{"controlPlane.replica=3"}, "replica"},
		{[]string{"secrets.adminApiKey=mr2_short"}, "adminApiKey"},
		{[]string{"logFormat=xml"}, "logFormat"},
		{[]string{"controlPlane.leaderLeaseTTL=5"}, "leaderLeaseTTL"},
	} {
		_, err := render(nil, c.sets...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %v: error %v, want one naming %q", c.sets, err, c.want)
		}
	}
	if _, err := render(nil, "tls.enabled=true", "tls.controlPlaneSecret=a", "tls.dataPlaneSecret=b", "nodeAgent.enabled=false"); err != nil {
		t.Fatalf("TLS without node agents needs no agent certificate: %v", err)
	}
}

func container(t *testing.T, pod corev1.PodTemplateSpec, name string) *corev1.Container {
	t.Helper()
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

func env(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func probe(t *testing.T, p *corev1.Probe, path, port string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != port {
		t.Errorf("probe %+v, want GET %s on port %s", p, path, port)
	}
}

// selects reports whether a selector's labels are all among a pod's labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// volumeOf returns the volume a file path of container c lies on.
func volumeOf(pod corev1.PodTemplateSpec, c *corev1.Container, file string) *corev1.Volume {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(file, m.MountPath+"/") {
			for i := range pod.Spec.Volumes {
				if pod.Spec.Volumes[i].Name == m.Name {
					return &pod.Spec.Volumes[i]
				}
			}
		}
	}
	return nil
}

// TestEnvReferencesResolve: Kubernetes expands $(VAR) in a variable only from variables defined
// before it (and in arguments from any of them); an unresolved reference stays literal text.
func TestEnvReferencesResolve(t *testing.T) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := mustRender(t, c.Files, c.Sets...)
			n := 0
			for _, w := range workloads(r) {
				for _, ctr := range w.Pod.Spec.Containers {
					defined := map[string]bool{}
					for _, e := range ctr.Env {
						for _, ref := range varRef.FindAllStringSubmatch(e.Value, -1) {
							n++
							if !defined[ref[1]] {
								t.Errorf("%s/%s: %s refers to $(%s), not defined before it", w.Name, ctr.Name, e.Name, ref[1])
							}
						}
						defined[e.Name] = true
					}
					for _, a := range ctr.Args {
						for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
							n++
							if !defined[ref[1]] {
								t.Errorf("%s/%s: argument %s refers to undefined $(%s)", w.Name, ctr.Name, a, ref[1])
							}
						}
					}
				}
			}
			if c.Name == "default" && n < 3 {
				t.Errorf("only %d references checked; the default values use three", n)
			}
		})
	}
}
