package shoptest

import (
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/proxy"
	"github.com/novashop/edge/proxy/config"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// shop starts two seeded origins (the second with latency injected) and an edge in
// front of them; it returns the edge's base URL and the Server.
func shop(t *testing.T, policy string, slowSecond time.Duration) (string, *proxy.Server) {
	t.Helper()
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 3, 20, 3)
	o1, _ := origintest.Start(t, server.Deps{Name: "origin-1", Pool: pool})
	o2, _ := origintest.Start(t, server.Deps{Name: "origin-2", Pool: pool, InjectLatency: slowSecond})

	cfg := config.Default()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Upstreams = []config.Upstream{{Name: "origin-1", URL: o1, Weight: 1}, {Name: "origin-2", URL: o2, Weight: 1}}
	cfg.Balancer.Policy = policy
	cfg.AccessLog.Enabled = false
	cfg.Health.Interval, cfg.Health.Timeout = 500*time.Millisecond, 400*time.Millisecond
	srv, err := proxy.New(cfg, proxy.Options{JWTSecret: []byte(origintest.Secret)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() {
		_ = ln.Close()
		srv.Close()
	})
	return "http://" + ln.Addr().String(), srv
}

func login(t *testing.T, c *origintest.Client, user, password string) string {
	t.Helper()
	r := c.Do(t, "POST", "/api/login/", map[string]string{"username": user, "password": password})
	if r.Status != 200 {
		t.Fatalf("login %s through the edge: %d %s", user, r.Status, r.Body)
	}
	var tok struct {
		Access string `json:"access"`
	}
	r.JSON(t, &tok)
	if tok.Access == "" {
		t.Fatalf("login %s: no access token in %s", user, r.Body)
	}
	return tok.Access
}

// TestEdgeInFrontOfShop walks the shop through the edge: balancing over both
// origins, tokens issued by the origin and verified at the edge, 401/403/303
// answered at the edge, identity passed on to the origin.
func TestEdgeInFrontOfShop(t *testing.T) {
	base, srv := shop(t, "round-robin", 0)
	c := origintest.NewClient(base)

	served := map[string]int{}
	for range 6 {
		r := c.Do(t, "GET", "/api/products/", nil)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"results"`) {
			t.Fatalf("catalog through the edge: %d %s", r.Status, r.Body)
		}
		if r.Header.Get("X-Request-Id") == "" {
			t.Fatal("no X-Request-ID on the answer")
		}
		served[r.Header.Get("X-Served-By")]++
	}
	if served["origin-1"] != 3 || served["origin-2"] != 3 {
		t.Fatalf("round-robin over the shop: %v", served)
	}

	shopper := c.WithToken(login(t, c, "user1", "shopper123"))
	if r := shopper.Do(t, "GET", "/api/me/", nil); r.Status != 200 || !strings.Contains(string(r.Body), "user1") {
		t.Fatalf("/api/me/ with a token: %d %s", r.Status, r.Body)
	}
	r := c.Do(t, "GET", "/api/me/", nil)
	if r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") || r.Header.Get("X-Served-By") != "" {
		t.Fatalf("/api/me/ without a token: %d %v (must be answered by the edge)", r.Status, r.Header)
	}
	if r := shopper.Do(t, "POST", "/api/categories/", map[string]string{"name": "Nope"}); r.Status != 403 || r.Header.Get("X-Served-By") != "" {
		t.Fatalf("staff route as shopper: %d %s", r.Status, r.Body)
	}
	staff := c.WithToken(login(t, c, "admin", "admin123"))
	if r := staff.Do(t, "POST", "/api/categories/", map[string]string{"name": "Edge Made"}); r.Status == 401 || r.Status == 403 {
		t.Fatalf("staff route as staff: %d %s", r.Status, r.Body)
	}

	// A storefront page that needs a login: 303 from the edge, not the origin.
	noFollow := origintest.NewClient(base)
	noFollow.HTTP.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r = noFollow.Do(t, "GET", "/orders/", nil)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login/?next=%2Forders%2F" {
		t.Fatalf("/orders/ without a cookie: %d Location %q", r.Status, r.Header.Get("Location"))
	}

	st := srv.Status()
	if len(st.Upstreams) != 2 || st.Upstreams[0].State != "up" || st.Upstreams[1].State != "up" {
		t.Fatalf("admin status: %+v", st)
	}
}

// TestP2CAvoidsSlowShopOrigin: with --inject-latency on one origin, p2c-ewma sends
// it well under half of a closed-loop load.
func TestP2CAvoidsSlowShopOrigin(t *testing.T) {
	base, _ := shop(t, "p2c-ewma", 40*time.Millisecond)
	var mu sync.Mutex
	served := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := origintest.NewClient(base)
			for range 40 {
				r := c.Do(t, "GET", "/api/products/1/", nil)
				if r.Status != 200 {
					t.Errorf("product through the edge: %d %s", r.Status, r.Body)
					return
				}
				mu.Lock()
				served[r.Header.Get("X-Served-By")]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if slow, total := served["origin-2"], served["origin-1"]+served["origin-2"]; slow*4 > total {
		t.Fatalf("slow origin got %d of %d requests (want under a quarter): %v", slow, total, served)
	}
}
