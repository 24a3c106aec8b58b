package configs_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/novashop/edge/internal/stack"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
)

// allowedTo reports whether a NetworkPolicy lets a pod with labels from
// reach port (a container port name) of the pods it selects.
func allowedTo(np *networkingv1.NetworkPolicy, from map[string]string, port string) bool {
	for _, rule := range np.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.String() == port {
				portOK = true
			}
		}
		if !portOK {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, peer := range rule.From {
			if peer.PodSelector == nil || peer.NamespaceSelector != nil {
				continue
			}
			s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			if err == nil && s.Matches(labels.Set(from)) {
				return true
			}
		}
	}
	return false
}

// TestKubernetesRedisCluster checks the Redis Cluster wiring: six nodes, a
// creation Job naming exactly the StatefulSet's pods, the Secret's
// redis-url seeding the cluster's Service, every pod that reads redis-url
// let through the NetworkPolicy, the nodes let through to one another's bus,
// and the edge's ConfigMap valid with that URL. Then it runs the Job's own
// script (busybox sh, awk, grep, tr, sleep as in the Alpine image; redis-cli,
// getent) against six local redis-server processes started from the
// ConfigMap's redis.conf: it must form a cluster of three masters with one
// replica each, leave a formed cluster alone when run again, and the edge's
// cache (the ConfigMap's cache section) must reach the cluster through it.
func TestKubernetesRedisCluster(t *testing.T) {
	f := loadFleet(t, readK8sFiles(t))
	ss, ok := f.objs["StatefulSet/redis-cluster"].(*appsv1.StatefulSet)
	if !ok {
		t.Fatal("no StatefulSet/redis-cluster")
	}
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 6 {
		t.Fatalf("redis-cluster replicas %v, want 6", ss.Spec.Replicas)
	}
	nodes := int(*ss.Spec.Replicas)
	svc, ok := f.objs["Service/"+ss.Spec.ServiceName].(*corev1.Service)
	if !ok || svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Fatalf("Service/%s must be headless and publish not-ready nodes (the nodes and the Job find one another before the cluster is up)", ss.Spec.ServiceName)
	}
	redisCtr := ss.Spec.Template.Spec.Containers[0]
	clientPort, ok := portOf(redisCtr, intstr.FromString("client"))
	if !ok {
		t.Fatal("redis container: no client port")
	}
	if bus, ok := portOf(redisCtr, intstr.FromString("bus")); !ok || bus != clientPort+10000 {
		t.Fatalf("redis container: bus port %d, want client+10000 = %d", bus, clientPort+10000)
	}

	job, ok := f.objs["Job/redis-cluster-create"].(*batchv1.Job)
	if !ok {
		t.Fatal("no Job/redis-cluster-create")
	}
	jc := job.Spec.Template.Spec.Containers[0]
	if jc.Image != redisCtr.Image {
		t.Errorf("the Job runs %s, the nodes %s: redis-cli should match the server", jc.Image, redisCtr.Image)
	}
	var want []string
	for i := range nodes {
		want = append(want, fmt.Sprintf("%s-%d.%s:%d", ss.Name, i, ss.Spec.ServiceName, clientPort))
	}
	if !slices.Equal(jc.Args, want) {
		t.Errorf("the Job's nodes %v, want the StatefulSet's pods %v", jc.Args, want)
	}
	if len(jc.Command) != 4 || jc.Command[0] != "sh" || jc.Command[1] != "-c" {
		t.Fatalf("the Job's command %q: want [sh -c SCRIPT NAME]", jc.Command)
	}
	script := jc.Command[2]
	m := regexp.MustCompile(`--cluster-replicas (\d+)`).FindStringSubmatch(script)
	if m == nil || m[1] != "1" {
		t.Fatalf("the Job does not create one replica per master: %q", m)
	}
	if masters := nodes / 2; masters < 3 {
		t.Errorf("%d nodes with one replica each make %d masters; Redis Cluster needs 3", nodes, masters)
	}

	// The Secret's redis-url seeds the cluster.
	sec := f.objs["Secret/novashop-secrets"].(*corev1.Secret)
	ru, err := url.Parse(sec.StringData["redis-url"])
	if err != nil || ru.Scheme != "redis" || ru.Hostname() != svc.Name || ru.Port() != fmt.Sprint(clientPort) {
		t.Errorf("redis-url %q does not name Service %s port %d", sec.StringData["redis-url"], svc.Name, clientPort)
	}
	np, ok := f.objs["NetworkPolicy/redis-cluster"].(*networkingv1.NetworkPolicy)
	if !ok {
		t.Fatal("no NetworkPolicy/redis-cluster")
	}
	readers := 0
	for _, p := range f.pods {
		for _, c := range p.spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != "redis-url" {
					continue
				}
				readers++
				if !allowedTo(np, p.labels, "client") {
					t.Errorf("%s reads redis-url, but the NetworkPolicy keeps it from the client port", p.owner)
				}
			}
		}
	}
	if readers < 3 {
		t.Errorf("only %d containers read redis-url; want the edge, the origins and the worker", readers)
	}
	for _, port := range []string{"client", "bus"} {
		if !allowedTo(np, ss.Spec.Template.Labels, port) {
			t.Errorf("the NetworkPolicy keeps the nodes from one another's %s port", port)
		}
	}
	if !allowedTo(np, job.Spec.Template.Labels, "client") {
		t.Error("the NetworkPolicy keeps the creation Job from the nodes")
	}
	if allowedTo(np, map[string]string{"app.kubernetes.io/name": "stranger"}, "client") {
		t.Error("the NetworkPolicy lets any pod in")
	}

	// The edge's ConfigMap with that URL, through the edge's own loader.
	cm := f.objs["ConfigMap/edge-config"].(*corev1.ConfigMap)
	ecfg, err := config.Decode([]byte(cm.Data["edge.yaml"]))
	if err != nil {
		t.Fatalf("edge-config: %v", err)
	}
	ecfg.Cache.RedisURL = ru.String()
	if err := ecfg.Validate(); err != nil || !ecfg.Cache.Enabled {
		t.Fatalf("edge-config with redis-url %s: %v (cache enabled %v)", ru, err, ecfg.Cache.Enabled)
	}

	// Run the Job's script against six local nodes started from redis.conf.
	rcm := f.objs["ConfigMap/redis-cluster-config"].(*corev1.ConfigMap)
	bins, err := stack.Ensure(os.Stderr, "redis-server", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for range nodes {
		addrs = append(addrs, startRedisNode(t, bins["redis-server"], rcm.Data["redis.conf"]))
	}
	toolDir := t.TempDir()
	for _, applet := range []string{"sh", "awk", "grep", "tr", "sleep"} {
		if err := os.Symlink(bins["busybox"], filepath.Join(toolDir, applet)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"redis-cli", "getent"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v (redis-cli comes with redis-server's package, getent with libc)", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(toolDir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	// Names, as in the cluster (resolved by the script), not addresses.
	var named []string
	for _, a := range addrs {
		named = append(named, strings.Replace(a, "127.0.0.1", "localhost", 1))
	}
	runJob := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(toolDir, "sh"), append([]string{"-c", script, "redis-cluster-create"}, named...)...)
		cmd.Env = []string{"PATH=" + toolDir}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the Job's script: %v\n%s", err, out)
		}
		return string(out)
	}
	out := runJob()
	if !strings.Contains(out, "cluster formed") {
		t.Fatalf("the Job's script did not form the cluster:\n%s", out)
	}
	// Replicas attach after the slots are served: wait for gossip to
	// report the roles (bounded; it takes a second or two here).
	deadline := time.Now().Add(30 * time.Second)
	for {
		nodesOut, err := exec.Command(filepath.Join(toolDir, "redis-cli"), "-h", "127.0.0.1", "-p", strings.Split(addrs[0], ":")[1], "cluster", "nodes").CombinedOutput()
		if err != nil {
			t.Fatalf("cluster nodes: %v %s", err, nodesOut)
		}
		ms, rs := strings.Count(string(nodesOut), "master"), strings.Count(string(nodesOut), "slave")
		if ms == 3 && rs == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster of %d masters and %d replicas, want 3 and 3:\n%s\nthe Job said:\n%s", ms, rs, nodesOut, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if again := runJob(); !strings.Contains(again, "already formed") {
		t.Fatalf("run again, the Job's script did not leave the cluster alone:\n%s", again)
	}

	// The edge's cache, configured as the ConfigMap says, on that cluster
	// seeded by one node the way redis-url seeds it: a purge by prefix
	// SCANs every master.
	cu := *ru
	cu.Host = addrs[0]
	ccfg := ecfg.Cache
	ccfg.RedisURL = cu.String()
	c, err := cache.New(ccfg.CacheConfig(), zap.NewNop())
	if err != nil {
		t.Fatalf("cache on the cluster: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The first call may find the connections to the six nodes still
	// opening (under -race a SCAN can outlast its 10 x redis_timeout): the
	// cache then answers ErrUnavailable, retry later, as the admin API's
	// 503 says. It must succeed within a few probe intervals.
	for {
		_, err := c.Purge(ctx, nil, nil, "/api/products/", false)
		if err == nil {
			break
		}
		if !errors.Is(err, cache.ErrUnavailable) || ctx.Err() != nil {
			t.Fatalf("purge on the cluster: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startRedisNode starts redis-server from the manifest's redis.conf, with
// only what differs on this machine given on the command line (port,
// loopback, the directory for nodes.conf and the append-only file).
func startRedisNode(t *testing.T, bin, conf string) string {
	t.Helper()
	dir := t.TempDir()
	confPath := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, confPath, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir,
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--daemonize", "no", "--loglevel", "warning")
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("redis-server with the manifest's redis.conf exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
