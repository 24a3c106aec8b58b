package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/novashop/edge/internal/testenv"
)

// shopper is one logged-in user and what their private answers must show.
type shopper struct {
	name, token string
	cart        []int64 // product ids in the cart
	orders      []int64 // order ids
}

// TestPrivateAnswersNeverCrossUsersOrEdges: user1 and user2, each with a
// distinct cart and order, alternate GET /api/me/, /api/cart/ and
// /api/orders/ through two edges on one Redis (issue #4: "never serve one
// user's personal response to another, through any edge"). Every answer
// must be the caller's own, none may come from the cache, and a request
// without a token must get 401, never someone's cached answer.
func TestPrivateAnswersNeverCrossUsersOrEdges(t *testing.T) {
	redis := testenv.FreshRedis(t)
	st := startTwoEdges(t, redis.URL, redis.URL)
	c := newClient(t)
	edges := []*edge{st.a, st.b}

	users := []*shopper{{name: "user1"}, {name: "user2"}}
	ids := c.inStock(st.a.url, 4, 3)
	for i, u := range users {
		e := edges[i%2]
		u.token = c.login(e.url, u.name, "shopper123")
		// One order, then a cart that differs in product and quantity.
		c.must(201, "POST", e.url+"/api/cart/items/", u.token, map[string]any{"product_id": ids[i], "quantity": 1})
		o := decode[struct {
			ID int64 `json:"id"`
		}](t, c.must(201, "POST", e.url+"/api/orders/", u.token, nil))
		u.orders = []int64{o.ID}
		c.must(201, "POST", e.url+"/api/cart/items/", u.token, map[string]any{"product_id": ids[2+i], "quantity": i + 1})
		u.cart = []int64{ids[2+i]}
	}

	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	checked := 0
	for round := range rounds {
		for _, e := range edges {
			for k := range users {
				// Alternate who goes first, so each user's request follows the
				// other's on the same edge and path.
				u := users[(round+k)%2]
				checkOwn(t, c, e, u)
				checked += 3
			}
			for _, path := range []string{"/api/me/", "/api/cart/", "/api/orders/"} {
				if r := c.must(401, "GET", e.url+path, "", nil); cacheHit(r) {
					t.Fatalf("anonymous GET %s on %s answered from the cache: %s", path, e.name, r)
				}
			}
		}
	}
	pages := checkPages(t, c, edges, users, rounds/3+1)
	t.Logf("private: %d personal API answers and %d storefront pages through 2 edges for 2 users, each the caller's own, none from the cache", checked, pages)
}

func checkOwn(t *testing.T, c *client, e *edge, u *shopper) {
	t.Helper()
	where := fmt.Sprintf("%s on %s", u.name, e.name)
	me := c.must(200, "GET", e.url+"/api/me/", u.token, nil)
	if got := decode[struct {
		User struct {
			Username string `json:"username"`
		} `json:"user"`
	}](t, me).User.Username; got != u.name {
		t.Fatalf("%s: /api/me/ is %s's (%s)", where, got, me.header.Get("Cache-Status"))
	}
	cart := c.must(200, "GET", e.url+"/api/cart/", u.token, nil)
	var ids []int64
	for _, it := range decode[struct {
		Items []struct {
			Product struct {
				ID int64 `json:"id"`
			} `json:"product"`
		} `json:"items"`
	}](t, cart).Items {
		ids = append(ids, it.Product.ID)
	}
	if !slices.Equal(ids, u.cart) {
		t.Fatalf("%s: /api/cart/ holds products %v, want %v (%s)", where, ids, u.cart, cart.header.Get("Cache-Status"))
	}
	orders := c.must(200, "GET", e.url+"/api/orders/", u.token, nil)
	ids = ids[:0]
	for _, o := range decode[struct {
		Results []struct {
			ID int64 `json:"id"`
		} `json:"results"`
	}](t, orders).Results {
		ids = append(ids, o.ID)
	}
	if !slices.Equal(ids, u.orders) {
		t.Fatalf("%s: /api/orders/ lists %v, want %v (%s)", where, ids, u.orders, orders.header.Get("Cache-Status"))
	}
	for _, r := range []response{me, cart, orders} {
		if cacheHit(r) {
			t.Fatalf("%s: a personal answer came from the cache: %q", where, r.header.Get("Cache-Status"))
		}
	}
}

// meName is the storefront layout's greeting, empty on shared pages.
var meName = regexp.MustCompile(`<strong data-me-name>([^<]*)</strong>`)

// checkPages reads storefront pages with each user's cookie through both
// edges. Catalog pages are shared, so they must greet nobody (a page that
// greets user1 served to user2 is a leak); the cart and orders pages are
// personal and must greet the caller; without a cookie they redirect to
// the login page.
func checkPages(t *testing.T, c *client, edges []*edge, users []*shopper, rounds int) int {
	t.Helper()
	shared := []string{"/", "/products/", "/products/5/"}
	personal := []string{"/cart/", "/orders/"}
	n := 0
	for range rounds {
		for _, e := range edges {
			for _, u := range users {
				cookie := map[string]string{"Cookie": "novashop_access=" + u.token}
				for _, path := range append(append([]string(nil), shared...), personal...) {
					r, err := c.doHeader("GET", e.url+path, "", cookie, nil)
					if err != nil || r.status != 200 {
						t.Fatalf("%s GET %s on %s: %v %v", u.name, path, e.name, r, err)
					}
					m := meName.FindSubmatch(r.body)
					if m == nil {
						t.Fatalf("%s GET %s on %s: no greeting element in the page", u.name, path, e.name)
					}
					want := ""
					if slices.Contains(personal, path) {
						want = u.name
						if cacheHit(r) {
							t.Fatalf("%s GET %s on %s: personal page from the cache", u.name, path, e.name)
						}
					}
					if string(m[1]) != want {
						t.Fatalf("%s GET %s on %s greets %q, want %q (Cache-Status %q)",
							u.name, path, e.name, m[1], want, r.header.Get("Cache-Status"))
					}
					n++
				}
			}
			for _, path := range personal {
				if r := c.must(303, "GET", e.url+path, "", nil); cacheHit(r) {
					t.Fatalf("anonymous GET %s on %s answered from the cache", path, e.name)
				}
			}
		}
	}
	return n
}
