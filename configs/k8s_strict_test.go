package configs_test

// Strict decoding of the Kubernetes manifests with the official API types
// (k8s.io/api), then cross-checks between the objects. There is no cluster
// here, so this is what stands in for `kubectl apply --dry-run=server`: a
// misspelt or misplaced field, a Service pointing at a port no container
// opens, an autoscaler scaling nothing, a probe on a path the program does
// not serve, all fail here instead of on the operator's cluster.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/novashop/edge/internal/stack"
	"github.com/novashop/edge/proxy/config"
)

// k8sDir holds the manifests.
var k8sDir = filepath.Join(root, "configs", "k8s")

// onPurpose are the manifests kustomization.yaml leaves out because they are
// applied by hand (the Secret's real values, a load campaign).
var onPurpose = []string{"secret.example.yaml", "loadgen-job.yaml"}

// newTyped returns an empty object of the API type for apiVersion and kind:
// only the kinds the manifests use; another kind is an error, so a new kind
// gets its type here before it can pass unchecked.
func newTyped(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "batch/v1 Job":
		return &batchv1.Job{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	}
	return nil, fmt.Errorf("apiVersion %q kind %q: no API type known to this test", apiVersion, kind)
}

// decodeStrict decodes one YAML document into its typed object. Refused:
// fields the type does not have (encoding/json's DisallowUnknownFields on
// the JSON form), duplicate keys (YAMLToJSONStrict), trailing data, and
// keys whose case differs from the type's (encoding/json would accept
// "containerport"; the API server, which decodes with sigs.k8s.io/json,
// drops it, so it is checked the server's way too). A document of comments
// only returns nil, nil.
func decodeStrict(doc []byte) (any, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, fmt.Errorf("not an object: %w", err)
	}
	obj, err := newTyped(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: trailing data", tm.Kind)
	}
	again, _ := newTyped(tm.APIVersion, tm.Kind)
	strict, err := k8sjson.UnmarshalStrict(js, again, k8sjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s: %w", tm.Kind, errors.Join(strict...))
	}
	return obj, nil
}

// decodeFile decodes every document of one manifest file.
func decodeFile(name string, b []byte) ([]any, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []any
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		obj, err := decodeStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("%s document %d: %w", name, i+1, err)
		}
		if obj != nil {
			out = append(out, obj)
		}
	}
}

// kustomization is kustomization.yaml, decoded as strictly as the rest.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images"`
}

// podTemplate is one pod the manifests run, with where it comes from.
type podTemplate struct {
	owner    string // Kind/name
	replicas int32
	labels   map[string]string
	spec     corev1.PodSpec
}

// fleet is every object of configs/k8s, typed.
type fleet struct {
	kust     kustomization
	objs     map[string]any // Kind/name
	pods     []podTemplate
	services []*corev1.Service
}

// loadFleet decodes the kustomization's resources and the manifests applied
// on purpose; every .yaml file in the folder must be one or the other.
func loadFleet(t *testing.T, files map[string][]byte) fleet {
	t.Helper()
	var f fleet
	js, err := yaml.YAMLToJSONStrict(files["kustomization.yaml"])
	if err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f.kust); err != nil || f.kust.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: kind %q: %v", f.kust.Kind, err)
	}
	listed := append(slices.Clone(f.kust.Resources), onPurpose...)
	for name := range files {
		if name != "kustomization.yaml" && !slices.Contains(listed, name) {
			t.Errorf("%s is neither a kustomization resource nor applied on purpose", name)
		}
	}
	f.objs = map[string]any{}
	for _, name := range listed {
		b, ok := files[name]
		if !ok {
			t.Errorf("kustomization names %s, which does not exist", name)
			continue
		}
		objs, err := decodeFile(name, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			key := objKey(o)
			if _, dup := f.objs[key]; dup {
				t.Errorf("%s: %s defined twice", name, key)
			}
			f.objs[key] = o
			f.collect(o)
		}
	}
	return f
}

func objKey(o any) string {
	m := o.(metav1.Object)
	kind := strings.TrimPrefix(fmt.Sprintf("%T", o), "*")
	kind = kind[strings.LastIndex(kind, ".")+1:]
	return kind + "/" + m.GetName()
}

func (f *fleet) collect(o any) {
	one := int32(1)
	add := func(owner string, r *int32, tmpl corev1.PodTemplateSpec) {
		if r == nil {
			r = &one
		}
		f.pods = append(f.pods, podTemplate{owner: owner, replicas: *r, labels: tmpl.Labels, spec: tmpl.Spec})
	}
	switch o := o.(type) {
	case *appsv1.Deployment:
		add(objKey(o), o.Spec.Replicas, o.Spec.Template)
	case *appsv1.StatefulSet:
		add(objKey(o), o.Spec.Replicas, o.Spec.Template)
	case *batchv1.Job:
		add(objKey(o), o.Spec.Parallelism, o.Spec.Template)
	case *corev1.Service:
		f.services = append(f.services, o)
	}
}

// selected returns the pod templates a label selector picks.
func (f *fleet) selected(t *testing.T, where string, sel *metav1.LabelSelector) []podTemplate {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: selector: %v", where, err)
		return nil
	}
	var out []podTemplate
	for _, p := range f.pods {
		if s.Matches(labels.Set(p.labels)) {
			out = append(out, p)
		}
	}
	return out
}

func readK8sFiles(t *testing.T) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("configs/k8s: %v, %d files", err, len(names))
	}
	files := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(n)] = b
	}
	return files
}

// TestKubernetesStrictDecode: every document decodes into its API type with
// nothing unknown, and the kinds operators expect are there.
func TestKubernetesStrictDecode(t *testing.T) {
	f := loadFleet(t, readK8sFiles(t))
	for _, want := range []string{
		"Namespace/novashop", "ConfigMap/edge-config", "Secret/novashop-secrets",
		"Deployment/edge", "Service/edge", "HorizontalPodAutoscaler/edge", "PodDisruptionBudget/edge",
		"Deployment/origin-1", "Deployment/origin-2", "PodDisruptionBudget/origin",
		"StatefulSet/redis-cluster", "Service/redis-cluster", "Job/redis-cluster-create",
		"PodDisruptionBudget/redis-cluster", "NetworkPolicy/redis-cluster", "ConfigMap/redis-cluster-config",
		"NetworkPolicy/edge-admin", "Job/loadgen-shards", "Job/loadgen-merge",
	} {
		if _, ok := f.objs[want]; !ok {
			t.Errorf("manifests lack %s", want)
		}
	}
}

// TestKubernetesPlantedMistakes: the strict decoder refuses each mistake a
// hand-edited manifest can carry, and says which field. Without this, a
// decoder that accepted anything would pass the test above.
func TestKubernetesPlantedMistakes(t *testing.T) {
	edge, err := os.ReadFile(filepath.Join(k8sDir, "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown field", "  replicas: 2\n", "  replicas: 2\n  replica: 3\n", `unknown field "replica"`},
		{"misplaced field", "      terminationGracePeriodSeconds:", "      readinessProbe: {periodSeconds: 2}\n      terminationGracePeriodSeconds:", `unknown field "readinessProbe"`},
		{"misspelt probe", "          readinessProbe:", "          readinesProbe:", `unknown field "readinesProbe"`},
		{"wrong case", "containerPort: 8080}", "containerport: 8080}", `containerport`},
		{"wrong type", "  replicas: 2\n", "  replicas: two\n", `replicas`},
		{"duplicate key", "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", `replicas`},
		{"bad quantity", "memory: 576Mi}", "memory: 576 MB}", `quantities must match`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(edge, []byte(tc.old)) {
				t.Fatalf("edge.yaml no longer contains %q: update the test", tc.old)
			}
			planted := bytes.Replace(edge, []byte(tc.old), []byte(tc.new), 1)
			_, err := decodeFile("edge.yaml", planted)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decode: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if _, err := decodeFile("edge.yaml", edge); err != nil {
		t.Errorf("the unplanted file: %v", err)
	}
}

// portOf resolves a port reference (number or name) against a container.
func portOf(ctr corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range ctr.Ports {
		if (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) || (p.Type == intstr.String && p.StrVal != "" && cp.Name == p.StrVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// podPort resolves a port reference against any container of a pod.
func podPort(spec corev1.PodSpec, p intstr.IntOrString) (int32, bool) {
	for _, c := range spec.Containers {
		if n, ok := portOf(c, p); ok {
			return n, true
		}
	}
	return 0, false
}

// TestKubernetesCrossChecks: the objects agree with one another.
func TestKubernetesCrossChecks(t *testing.T) {
	f := loadFleet(t, readK8sFiles(t))
	secrets := map[string]map[string]bool{}
	configMaps := map[string]map[string]bool{}
	for key, o := range f.objs {
		switch o := o.(type) {
		case *corev1.Secret:
			keys := map[string]bool{}
			for k := range o.Data {
				keys[k] = true
			}
			for k := range o.StringData {
				keys[k] = true
			}
			secrets[o.Name] = keys
		case *corev1.ConfigMap:
			keys := map[string]bool{}
			for k := range o.Data {
				keys[k] = true
			}
			configMaps[o.Name] = keys
		case *appsv1.Deployment:
			checkSelector(t, key, o.Spec.Selector, o.Spec.Template.Labels)
		case *appsv1.StatefulSet:
			checkSelector(t, key, o.Spec.Selector, o.Spec.Template.Labels)
			if _, ok := f.objs["Service/"+o.Spec.ServiceName]; !ok {
				t.Errorf("%s: serviceName %q names no Service", key, o.Spec.ServiceName)
			}
		case *batchv1.Job:
			if o.Spec.Selector != nil {
				checkSelector(t, key, o.Spec.Selector, o.Spec.Template.Labels)
			}
		}
	}

	// Services select pods and point at ports those pods open.
	for _, svc := range f.services {
		key := "Service/" + svc.Name
		pods := f.selected(t, key, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
		if len(svc.Spec.Selector) == 0 || len(pods) == 0 {
			t.Errorf("%s: selector %v selects no pod", key, svc.Spec.Selector)
		}
		for _, p := range svc.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			for _, pod := range pods {
				if _, ok := podPort(pod.spec, target); !ok {
					t.Errorf("%s port %d: targetPort %s is no container port of %s", key, p.Port, target.String(), pod.owner)
				}
			}
		}
	}

	for key, o := range f.objs {
		switch o := o.(type) {
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := o.Spec.ScaleTargetRef
			target, ok := f.objs[ref.Kind+"/"+ref.Name]
			if !ok || (ref.Kind != "Deployment" && ref.Kind != "StatefulSet") || ref.APIVersion != "apps/v1" {
				t.Errorf("%s targets %s %s/%s, which the manifests do not define", key, ref.APIVersion, ref.Kind, ref.Name)
				continue
			}
			if o.Spec.MinReplicas == nil || *o.Spec.MinReplicas < 1 || o.Spec.MaxReplicas < *o.Spec.MinReplicas {
				t.Errorf("%s: replicas %v..%d", key, o.Spec.MinReplicas, o.Spec.MaxReplicas)
			}
			// Utilization is a share of the request: without a CPU request
			// on every container the autoscaler cannot compute it.
			var tmpl corev1.PodSpec
			if d, ok := target.(*appsv1.Deployment); ok {
				tmpl = d.Spec.Template.Spec
				if d.Spec.Replicas != nil && *d.Spec.Replicas < *o.Spec.MinReplicas {
					t.Errorf("%s: minReplicas %d above %s's replicas %d", key, *o.Spec.MinReplicas, ref.Name, *d.Spec.Replicas)
				}
			}
			for _, m := range o.Spec.Metrics {
				if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
					continue
				}
				for _, c := range tmpl.Containers {
					if _, ok := c.Resources.Requests[m.Resource.Name]; !ok {
						t.Errorf("%s scales on %s, but %s container %s requests none", key, m.Resource.Name, ref.Name, c.Name)
					}
				}
			}
		case *policyv1.PodDisruptionBudget:
			pods := f.selected(t, key, o.Spec.Selector)
			if len(pods) == 0 {
				t.Errorf("%s selects no pod", key)
			}
			var total int32
			for _, p := range pods {
				total += p.replicas
			}
			// A budget that can never be met blocks every node drain.
			if o.Spec.MinAvailable != nil && o.Spec.MinAvailable.Type == intstr.Int && o.Spec.MinAvailable.IntVal >= total {
				t.Errorf("%s: minAvailable %d with %d pods blocks every eviction", key, o.Spec.MinAvailable.IntVal, total)
			}
			if o.Spec.MaxUnavailable != nil && o.Spec.MaxUnavailable.Type == intstr.Int && o.Spec.MaxUnavailable.IntVal < 1 {
				t.Errorf("%s: maxUnavailable %d blocks every eviction", key, o.Spec.MaxUnavailable.IntVal)
			}
		case *networkingv1.NetworkPolicy:
			pods := f.selected(t, key, &o.Spec.PodSelector)
			if len(pods) == 0 {
				t.Errorf("%s: podSelector selects no pod", key)
			}
			for _, rule := range o.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port == nil {
						continue
					}
					for _, pod := range pods {
						if _, ok := podPort(pod.spec, *p.Port); !ok {
							t.Errorf("%s: port %s is no container port of %s", key, p.Port.String(), pod.owner)
						}
					}
				}
				for _, peer := range rule.From {
					// Peers in this namespace must be pods the manifests
					// run, except operators' own pods, which they bring.
					if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.PodSelector.MatchLabels["novashop.io/operator"] == "true" {
						continue
					}
					if len(f.selected(t, key, peer.PodSelector)) == 0 {
						t.Errorf("%s: ingress from %v selects no pod", key, peer.PodSelector.MatchLabels)
					}
				}
			}
		}
	}

	for _, pod := range f.pods {
		for _, c := range pod.spec.TopologySpreadConstraints {
			checkSelector(t, pod.owner+" topologySpreadConstraints", c.LabelSelector, pod.labels)
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range pod.spec.Volumes {
			volumes[v.Name] = v
			if v.ConfigMap != nil {
				if _, ok := configMaps[v.ConfigMap.Name]; !ok {
					t.Errorf("%s: volume %s mounts ConfigMap %q, which the manifests do not define", pod.owner, v.Name, v.ConfigMap.Name)
				}
				for _, it := range v.ConfigMap.Items {
					if !configMaps[v.ConfigMap.Name][it.Key] {
						t.Errorf("%s: ConfigMap %s has no key %s", pod.owner, v.ConfigMap.Name, it.Key)
					}
				}
			}
			if v.PersistentVolumeClaim != nil {
				if _, ok := f.objs["PersistentVolumeClaim/"+v.PersistentVolumeClaim.ClaimName]; !ok {
					t.Errorf("%s: volume %s claims %q, which the manifests do not define", pod.owner, v.Name, v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
		for _, c := range slices.Concat(pod.spec.InitContainers, pod.spec.Containers) {
			where := pod.owner + " container " + c.Name
			for _, m := range c.VolumeMounts {
				if _, ok := volumes[m.Name]; !ok && !statefulClaim(f, pod.owner, m.Name) {
					t.Errorf("%s: mounts volume %s, which the pod does not define", where, m.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil && (r.Optional == nil || !*r.Optional) {
					if keys, ok := secrets[r.Name]; !ok {
						t.Errorf("%s: %s from Secret %q, which the manifests do not define", where, e.Name, r.Name)
					} else if !keys[r.Key] {
						t.Errorf("%s: %s from Secret %s key %q, which it lacks", where, e.Name, r.Name, r.Key)
					}
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !configMaps[r.Name][r.Key] {
					t.Errorf("%s: %s from ConfigMap %s key %q, which it lacks", where, e.Name, r.Name, r.Key)
				}
			}
			checkResources(t, where, c.Resources)
			for _, pr := range []struct {
				kind string
				p    *corev1.Probe
			}{{"readiness", c.ReadinessProbe}, {"liveness", c.LivenessProbe}, {"startup", c.StartupProbe}} {
				if pr.p != nil && pr.p.TCPSocket != nil {
					if _, ok := portOf(c, pr.p.TCPSocket.Port); !ok {
						t.Errorf("%s: %s probe on port %s, which the container does not open", where, pr.kind, pr.p.TCPSocket.Port.String())
					}
				}
				if pr.p == nil || pr.p.HTTPGet == nil {
					continue
				}
				if _, ok := portOf(c, pr.p.HTTPGet.Port); !ok {
					t.Errorf("%s: %s probe on port %s, which the container does not open", where, pr.kind, pr.p.HTTPGet.Port.String())
				}
				if !servesPath(t, c, pr.p.HTTPGet.Path) {
					t.Errorf("%s: %s probe GETs %s, which %v does not serve", where, pr.kind, pr.p.HTTPGet.Path, c.Command)
				}
			}
			if !strings.HasPrefix(pod.owner, "Job/") && c.ReadinessProbe == nil && c.LivenessProbe == nil {
				t.Errorf("%s: a long-running container without probes", where)
			}
		}
	}
}

// statefulClaim reports whether name is one of a StatefulSet's volume claim
// templates, which a container may mount without a pod volume.
func statefulClaim(f fleet, owner, name string) bool {
	ss, ok := f.objs[owner].(*appsv1.StatefulSet)
	if !ok {
		return false
	}
	for _, c := range ss.Spec.VolumeClaimTemplates {
		if c.Name == name {
			return true
		}
	}
	return false
}

func checkSelector(t *testing.T, where string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	if sel == nil {
		t.Errorf("%s: no selector", where)
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: selector: %v", where, err)
		return
	}
	if s.Empty() || !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %s does not match its pods' labels %v", where, s, podLabels)
	}
}

// checkResources: every container says what it needs (memory limit, CPU and
// memory requests) and no request exceeds its limit.
func checkResources(t *testing.T, where string, r corev1.ResourceRequirements) {
	t.Helper()
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := r.Requests[name]; !ok {
			t.Errorf("%s: no %s request", where, name)
		}
	}
	if _, ok := r.Limits[corev1.ResourceMemory]; !ok {
		t.Errorf("%s: no memory limit", where)
	}
	for name, req := range r.Requests {
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above its limit %s", where, name, req.String(), lim.String())
		}
	}
}

// servesPath reports whether the program a container runs answers path. The
// edge's admin paths are asked of a running edge (TestKubernetesEdgeProbes);
// for the others, the route must be registered in the program's sources.
func servesPath(t *testing.T, c corev1.Container, path string) bool {
	t.Helper()
	if len(c.Command) == 0 {
		return false
	}
	switch c.Command[0] {
	case "edge":
		return slices.Contains(edgeProbePaths(t), path)
	case "origin":
		return sourceMentions(t, []string{"origin/server", "origin/pipeline/workercmd"}, `"`+path+`"`)
	}
	return false
}

// sourceMentions reports whether any non-test Go file under dirs contains s.
func sourceMentions(t *testing.T, dirs []string, s string) bool {
	t.Helper()
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(root, d, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(s)) {
				return true
			}
		}
	}
	return false
}

// edgeProbes caches the probe paths a running edge answered 200 on.
var edgeProbes struct {
	paths []string
	err   error
	done  bool
}

// edgeProbePaths starts the edge binary with the manifest's ConfigMap
// (listeners moved to loopback, the token set as the Secret would) and
// returns which of the candidate probe paths its admin listener answers
// with 200.
func edgeProbePaths(t *testing.T) []string {
	t.Helper()
	if !edgeProbes.done {
		edgeProbes.done = true
		edgeProbes.paths, edgeProbes.err = askEdge(t)
	}
	if edgeProbes.err != nil {
		t.Fatalf("edge with the manifest's config: %v", edgeProbes.err)
	}
	return edgeProbes.paths
}

func askEdge(t *testing.T) ([]string, error) {
	e, err := startManifestEdge(t)
	if err != nil {
		return nil, err
	}
	defer e.stop()
	var ok200 []string
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		code, err := e.get(p)
		if err != nil {
			return nil, err
		}
		if code == http.StatusOK {
			ok200 = append(ok200, p)
		}
	}
	return ok200, nil
}

// manifestEdge is the edge binary running the manifest's ConfigMap, its
// listeners moved to loopback and its admin token set as the Secret would.
type manifestEdge struct {
	admin, tokenEnv, token string
	cfg                    config.Config
	stop                   func()
}

func (e *manifestEdge) get(path string) (int, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + e.admin + path)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func startManifestEdge(t *testing.T) (*manifestEdge, error) {
	t.Helper()
	bin := filepath.Join(binaries(t), "edge")
	f := loadFleet(t, readK8sFiles(t))
	cm, ok := f.objs["ConfigMap/edge-config"].(*corev1.ConfigMap)
	if !ok {
		return nil, errors.New("no ConfigMap edge-config")
	}
	cfgText := regexp.MustCompile(`(?m)^(listen|admin_listen): .*$`).ReplaceAllString(cm.Data["edge.yaml"], `$1: "127.0.0.1:0"`)
	path := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Read(path)
	if err != nil {
		return nil, err
	}
	e := &manifestEdge{tokenEnv: cfg.Admin.TokenEnv, token: "manifest-test-token", cfg: cfg}
	cmd := exec.Command(bin, "--config", path, "--redis-url", "")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), e.tokenEnv + "=" + e.token, "EDGE_ACCESS_LOG=off"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e.stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	// The edge prints its addresses once listening; a start that fails
	// closes stdout, so this read ends either way.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		e.stop()
		return nil, fmt.Errorf("edge did not start: %v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`\(admin ([\d.:]+)\)`).FindStringSubmatch(line)
	if m == nil {
		e.stop()
		return nil, fmt.Errorf("edge announced %q", line)
	}
	e.admin = m[1]
	return e, nil
}

// TestKubernetesEdgePreStopDrains: the edge pod's preStop hook is a script
// that drains the edge with the admin token and then waits, and the pod's
// timings add up: readiness notices the drain within the hook's wait, and
// the hook, the rest of timeouts.drain and timeouts.shutdown fit in the
// grace period. The script itself is run, with busybox's sh and wget (what
// the Alpine image has), against the edge running the manifest's config.
func TestKubernetesEdgePreStopDrains(t *testing.T) {
	f := loadFleet(t, readK8sFiles(t))
	d, ok := f.objs["Deployment/edge"].(*appsv1.Deployment)
	if !ok || len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("no Deployment/edge with one container")
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
		t.Fatal("edge: no preStop exec hook")
	}
	argv := c.Lifecycle.PreStop.Exec.Command
	if len(argv) != 3 || argv[0] != "sh" || argv[1] != "-c" {
		t.Fatalf("edge preStop %q: want [sh -c SCRIPT]", argv)
	}
	script := argv[2]
	adminPort, ok := portOf(c, intstr.FromString("admin"))
	if !ok {
		t.Fatal("edge: no admin port")
	}
	hostPort := fmt.Sprintf("127.0.0.1:%d", adminPort)
	if !strings.Contains(script, "http://"+hostPort+"/admin/drain") {
		t.Errorf("edge preStop does not POST http://%s/admin/drain: %q", hostPort, script)
	}
	sleepM := regexp.MustCompile(`\bsleep (\d+)\b`).FindStringSubmatch(script)
	if sleepM == nil {
		t.Fatalf("edge preStop does not wait (sleep N): %q", script)
	}
	var sleep time.Duration
	fmt.Sscanf(sleepM[1], "%d", &sleep)
	sleep *= time.Second

	e, err := startManifestEdge(t)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stop()
	if !strings.Contains(script, "$"+e.tokenEnv) {
		t.Errorf("edge preStop does not send $%s", e.tokenEnv)
	}
	tokenFromSecret := false
	for _, ev := range c.Env {
		if ev.Name == e.tokenEnv && ev.ValueFrom != nil && ev.ValueFrom.SecretKeyRef != nil {
			tokenFromSecret = true
		}
	}
	if !tokenFromSecret {
		t.Errorf("edge: %s does not come from a Secret", e.tokenEnv)
	}

	// Timings.
	rp := c.ReadinessProbe
	if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/readyz" {
		t.Fatal("edge readiness probe must GET /readyz")
	}
	if lp := c.LivenessProbe; lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" {
		t.Error("edge liveness probe must GET /healthz, which a drain leaves at 200")
	}
	if notice := time.Duration(rp.PeriodSeconds*max(rp.FailureThreshold, 1)) * time.Second; notice > sleep {
		t.Errorf("readiness notices a drain after up to %s, the preStop hook waits only %s", notice, sleep)
	}
	drain := e.cfg.Timeouts.Drain
	if drain <= sleep {
		t.Errorf("timeouts.drain %s must outlast the preStop wait %s (the endpoints may still be catching up)", drain, sleep)
	}
	grace := 30 * time.Second
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if need := max(drain, sleep) + e.cfg.Timeouts.Shutdown; need > grace {
		t.Errorf("the hook, timeouts.drain and timeouts.shutdown need %s, terminationGracePeriodSeconds is %s", need, grace)
	}

	// Run the hook.
	bins, err := stack.Ensure(os.Stderr, "busybox")
	if err != nil {
		t.Fatalf("busybox: %v", err)
	}
	dir := t.TempDir()
	for _, applet := range []string{"wget", "timeout", "sleep"} {
		if err := os.Symlink(bins["busybox"], filepath.Join(dir, applet)); err != nil {
			t.Fatal(err)
		}
	}
	if code, err := e.get("/readyz"); err != nil || code != 200 {
		t.Fatalf("GET /readyz before the hook = %d %v", code, err)
	}
	run := strings.NewReplacer(hostPort, e.admin, sleepM[0], "sleep 0").Replace(script)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		token string
		want  int
	}{{"wrong-token", 200}, {e.token, 503}} {
		hook := exec.CommandContext(ctx, bins["busybox"], "sh", "-c", run)
		hook.Env = []string{"PATH=" + dir, e.tokenEnv + "=" + tc.token}
		out, err := hook.CombinedOutput()
		if err != nil {
			t.Fatalf("preStop hook: %v\n%s", err, out)
		}
		if code, err := e.get("/readyz"); err != nil || code != tc.want {
			t.Fatalf("GET /readyz after the hook with token %q = %d %v, want %d (hook said %q)", tc.token, code, err, tc.want, out)
		}
	}
}

// The sizing rule of docs/operations.md ("Sizing"), from measured figures.
const (
	sizingCPUPerRequest = 45 * time.Microsecond // edge, browse mix, at capacity
	sizingRatePerEdge   = 10000                 // req/s one edge carries at the autoscaler's target
	sizingRSSFactor     = 1.7                   // RSS per byte of cache.max_memory_bytes
	sizingConnBytes     = 24 << 10              // per keep-alive connection, goroutine core
	sizingConns         = 4096                  // connections budgeted per edge
)

// TestKubernetesEdgeSizing: the edge's requests and limits follow the
// sizing rule: at the autoscaler's target one edge carries 10,000 req/s of
// 45 µs each (and is not sized for much more), its memory request covers
// 1.7 x the local tier plus its connections, GOMEMLIMIT sits under the
// limit, and the docs state the same figures.
func TestKubernetesEdgeSizing(t *testing.T) {
	f := loadFleet(t, readK8sFiles(t))
	d := f.objs["Deployment/edge"].(*appsv1.Deployment)
	c := d.Spec.Template.Spec.Containers[0]
	hpa := f.objs["HorizontalPodAutoscaler/edge"].(*autoscalingv2.HorizontalPodAutoscaler)
	var util int32
	for _, m := range hpa.Spec.Metrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil {
			util = *m.Resource.Target.AverageUtilization
		}
	}
	if util == 0 {
		t.Fatal("the edge's autoscaler has no CPU utilization target")
	}
	cpu := c.Resources.Requests[corev1.ResourceCPU]
	atTarget := float64(cpu.MilliValue()) / 1000 * float64(util) / 100 // cores
	need := sizingRatePerEdge * sizingCPUPerRequest.Seconds()          // cores
	if atTarget < need || atTarget > 1.25*need {
		t.Errorf("edge CPU request %s at %d%%: %.2f cores before scaling out, the rule needs %.2f (10,000 req/s x %s) and at most 25%% more",
			cpu.String(), util, atTarget, need, sizingCPUPerRequest)
	}

	cm := f.objs["ConfigMap/edge-config"].(*corev1.ConfigMap)
	cfg, err := config.Decode([]byte(cm.Data["edge.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	memReq := c.Resources.Requests[corev1.ResourceMemory]
	memLim := c.Resources.Limits[corev1.ResourceMemory]
	want := int64(sizingRSSFactor*float64(cfg.Cache.MaxMemoryBytes)) + sizingConns*sizingConnBytes
	if memReq.Value() < want || memReq.Value() > want*5/4 {
		t.Errorf("edge memory request %s, the rule gives %d MiB (1.7 x %d MiB + %d x 24 KB) and at most 25%% more",
			memReq.String(), want>>20, cfg.Cache.MaxMemoryBytes>>20, sizingConns)
	}
	var gomem string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			gomem = e.Value
		}
	}
	var mib int64
	if _, err := fmt.Sscanf(gomem, "%dMiB", &mib); err != nil {
		t.Fatalf("edge GOMEMLIMIT %q: want NMiB", gomem)
	}
	if mib<<20 >= memLim.Value() || mib<<20 < want {
		t.Errorf("GOMEMLIMIT %s must lie between the rule's %d MiB and the limit %s", gomem, want>>20, memLim.String())
	}

	ops, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Sizing", "45 µs", "10,000 req/s", "1.7 ×", "24 KB", "700m", "576Mi"} {
		if !bytes.Contains(ops, []byte(s)) {
			t.Errorf("docs/operations.md's sizing rule does not say %q", s)
		}
	}
}
