package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/novashop/edge/internal/stack"
)

// smoke walks one shopper's journey through the edge before the load starts,
// so a broken stack fails loudly instead of producing a table of errors.
func smoke(ctx context.Context, l *stack.Local, w io.Writer) error {
	c := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path, token string, body any, want int) (http.Header, []byte, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, l.EdgeURL+path, rd)
		if err != nil {
			return nil, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("smoke: %s %s: %w", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != want {
			return nil, nil, fmt.Errorf("smoke: %s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, strings.TrimSpace(string(b)))
		}
		return resp.Header, b, nil
	}
	if _, _, err := do("GET", "/api/products/?limit=2", "", nil, 200); err != nil {
		return err
	}
	h, _, err := do("GET", "/api/products/?limit=2", "", nil, 200)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "smoke: GET /api/products/ twice: X-Served-By %s, Cache-Status %q\n", h.Get("X-Served-By"), h.Get("Cache-Status"))
	if _, _, err := do("GET", "/", "", nil, 200); err != nil {
		return err
	}
	if l.EdgeHTTPSURL != "" {
		if err := smokeHTTPS(ctx, l, w); err != nil {
			return err
		}
	}
	_, b, err := do("POST", "/api/login/", "", map[string]string{"username": "user1", "password": "shopper123"}, 200)
	if err != nil {
		return err
	}
	var tok struct{ Access string }
	if err := json.Unmarshal(b, &tok); err != nil || tok.Access == "" {
		return fmt.Errorf("smoke: login answered no access token: %s", b)
	}
	if _, _, err := do("GET", "/api/me/", "", nil, 401); err != nil {
		return err
	}
	if _, _, err := do("POST", "/api/cart/items/", tok.Access, map[string]int{"product_id": 1, "quantity": 1}, 201); err != nil {
		if _, _, err2 := do("POST", "/api/cart/items/", tok.Access, map[string]int{"product_id": 1, "quantity": 1}, 200); err2 != nil {
			return err
		}
	}
	_, b, err = do("POST", "/api/orders/", tok.Access, map[string]any{}, 201)
	if err != nil {
		return err
	}
	var order struct {
		ID     int64
		Status string
	}
	_ = json.Unmarshal(b, &order)
	fmt.Fprintf(w, "smoke: user1 logged in, added product 1 to the cart and placed order %d (%s)\n", order.ID, order.Status)
	if l.Worker != nil {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			_, b, err := do("GET", fmt.Sprintf("/api/orders/%d/", order.ID), tok.Access, nil, 200)
			if err != nil {
				return err
			}
			_ = json.Unmarshal(b, &order)
			if order.Status == "confirmed" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprintf(w, "smoke: order %d is %s\n", order.ID, order.Status)
	}
	return nil
}

// smokeHTTPS fetches the home page over the edge's HTTPS listener, trusting
// only the stack's local CA, and says which protocol was negotiated.
func smokeHTTPS(ctx context.Context, l *stack.Local, w io.Writer) error {
	pool, err := l.CA.Pool()
	if err != nil {
		return err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", l.EdgeHTTPSURL+"/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("smoke: GET %s/: %w", l.EdgeHTTPSURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("smoke: GET %s/: status %d", l.EdgeHTTPSURL, resp.StatusCode)
	}
	fmt.Fprintf(w, "smoke: GET %s/ over %s (%s, Alt-Svc %q)\n", l.EdgeHTTPSURL, resp.Proto, tls.VersionName(resp.TLS.Version), resp.Header.Get("Alt-Svc"))
	return nil
}
