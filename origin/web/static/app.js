// Novashop storefront script. Catalog pages are the same bytes for every
// visitor, so this fills in the personal bits: who is logged in and the cart
// badge (from GET /api/me/), and the CSRF token of each form (copied from
// the novashop_csrf cookie when the form is sent).
(function () {
  "use strict";

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return "";
  }

  function show(state) {
    document.querySelectorAll("[data-auth]").forEach(function (el) {
      el.hidden = el.getAttribute("data-auth") !== state;
    });
  }

  function here() { return location.pathname + location.search; }

  // Log-in links come back to the page they were clicked on.
  document.querySelectorAll("[data-login-link]").forEach(function (a) {
    if (location.pathname !== "/login/" && location.pathname !== "/register/") {
      a.href = "/login/?next=" + encodeURIComponent(here());
    }
  });

  fetch("/api/me/", { credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store" })
    .then(function (r) {
      if (r.status === 401) { show("out"); return null; }
      return r.ok ? r.json() : null;
    })
    .then(function (me) {
      if (!me || !me.user) return;
      show("in");
      document.querySelectorAll("[data-me-name]").forEach(function (el) { el.textContent = me.user.username; });
      var badge = document.querySelector("[data-cart-count]");
      if (badge) {
        badge.textContent = String(me.cart_count);
        badge.hidden = !me.cart_count;
      }
    })
    .catch(function () { /* offline or blocked: keep the anonymous header */ });

  // Fill a form's CSRF field from the cookie just before it is sent; if the
  // browser has no cookie yet, fetch one first, then send.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var field = form.querySelector("input[name=csrf]");
    if (!field) return;
    var tok = cookie("novashop_csrf");
    if (tok) { field.value = tok; return; }
    ev.preventDefault();
    fetch("/csrf/", { credentials: "same-origin", cache: "no-store" }).then(function () {
      field.value = cookie("novashop_csrf");
      form.submit();
    });
  });
})();
