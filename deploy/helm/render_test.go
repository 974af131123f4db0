// Package helm tests the MindRouter Helm chart (deploy/helm/mindrouter) with Helm's own Go
// module: `helm lint` and `helm template` as the helm binary runs them, then every rendered
// manifest decoded strictly into the Kubernetes API types. It is a module of its own, outside
// go.work, so that Helm's and Kubernetes' dependency trees stay out of the product modules.
package helm

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli/values"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir        = "mindrouter"
	productionFile  = "values-production.yaml"
	testReleaseName = "mr"
	testNamespace   = "ai"
)

// kubeVersion is the cluster version templates render for (helm template --kube-version); the
// default would come from the build's client-go and is not what a cluster runs.
var kubeVersion = func() *common.KubeVersion {
	v, err := common.ParseKubeVersion("v1.33.0")
	if err != nil {
		panic(err)
	}
	return v
}()

// Rendered is one `helm template` output, decoded.
type Rendered struct {
	// Raw is the whole manifest stream.
	Raw string
	// Objects are the decoded manifests in order, each a pointer to its k8s.io/api type.
	Objects []any
}

// newObject returns an empty typed object for an apiVersion and kind the chart may render; an
// unexpected kind fails the test rather than passing unchecked.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}, nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	case "monitoring.coreos.com/v1/PodMonitor":
		return &monitoringv1.PodMonitor{}, nil
	}
	return nil, fmt.Errorf("unexpected kind %s %s", apiVersion, kind)
}

// render runs `helm template mr deploy/helm/mindrouter -n ai -f files... --set sets...`.
func render(files []string, sets ...string) (*Rendered, error) {
	opts := values.Options{ValueFiles: files, Values: sets}
	vals, err := opts.MergeValues(nil)
	if err != nil {
		return nil, err
	}
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = testReleaseName
	install.Namespace = testNamespace
	install.Replace = true
	install.IncludeCRDs = true
	install.KubeVersion = kubeVersion
	rel, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("release of type %T", rel)
	}
	out := &Rendered{Raw: r.Manifest}
	out.Objects, err = decodeStrict(r.Manifest)
	return out, err
}

// decodeStrict splits a manifest stream and decodes each document into its k8s.io/api type; an
// unknown or duplicate field is an error, as is a document without apiVersion and kind.
func decodeStrict(stream string) ([]any, error) {
	var objs []any
	for i, doc := range splitDocuments(stream) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
		obj, err := newObject(head.APIVersion, head.Kind)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w\n%s", i, head.Kind, err, doc)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// splitDocuments returns the non-empty YAML documents of a stream (comments alone are empty).
func splitDocuments(stream string) []string {
	var docs []string
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(stream, -1) {
		empty := true
		sc := bufio.NewScanner(strings.NewReader(d))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, d)
		}
	}
	return docs
}

// mustRender renders or fails the test.
func mustRender(t *testing.T, files []string, sets ...string) *Rendered {
	t.Helper()
	r, err := render(files, sets...)
	if err != nil {
		t.Fatalf("helm template %v %v: %v", files, sets, err)
	}
	return r
}

// all returns the rendered objects of type T.
func all[T any](r *Rendered) []*T {
	var out []*T
	for _, o := range r.Objects {
		if v, ok := o.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// one returns the only rendered object of type T whose name ends in suffix.
func one[T any](t *testing.T, r *Rendered, suffix string, name func(*T) string) *T {
	t.Helper()
	var found *T
	for _, v := range all[T](r) {
		if strings.HasSuffix(name(v), suffix) {
			if found != nil {
				t.Fatalf("two %T named *%s", v, suffix)
			}
			found = v
		}
	}
	if found == nil {
		t.Fatalf("no %T named *%s", found, suffix)
	}
	return found
}

// Workload is a pod template, with the names of its StatefulSet's volume claim templates.
type Workload struct {
	Kind, Name string
	Pod        corev1.PodTemplateSpec
	Claims     []string
}

// workloads returns every pod template the chart renders.
func workloads(r *Rendered) []Workload {
	var out []Workload
	for _, s := range all[appsv1.StatefulSet](r) {
		w := Workload{Kind: "StatefulSet", Name: s.Name, Pod: s.Spec.Template}
		for _, c := range s.Spec.VolumeClaimTemplates {
			w.Claims = append(w.Claims, c.Name)
		}
		out = append(out, w)
	}
	for _, d := range all[appsv1.Deployment](r) {
		out = append(out, Workload{Kind: "Deployment", Name: d.Name, Pod: d.Spec.Template})
	}
	for _, d := range all[appsv1.DaemonSet](r) {
		out = append(out, Workload{Kind: "DaemonSet", Name: d.Name, Pod: d.Spec.Template})
	}
	return out
}

// loadValuesFile reads a values file for the lint action.
func loadValuesFile(t *testing.T, path string) map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := loader.LoadValues(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// docPath is docs/configuration.md of the repository.
var docPath = filepath.Join("..", "..", "docs", "configuration.md")
