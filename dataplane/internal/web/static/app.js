// MindRouter pages: the theme toggle, live counters and copy buttons. No
// inline handlers: everything is wired here, so the CSP forbids inline script.
(function () {
  "use strict";
  var root = document.documentElement;

  function currentTheme() {
    var t = root.getAttribute("data-theme");
    if (t) return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function labelToggle(btn) {
    var dark = currentTheme() === "dark";
    btn.textContent = dark ? "Light mode" : "Dark mode";
    btn.setAttribute("aria-pressed", dark ? "true" : "false");
  }
  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    labelToggle(toggle);
    toggle.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("mindrouter-theme", next); } catch (e) { /* not remembered */ }
      labelToggle(toggle);
    });
    if (window.matchMedia) {
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { labelToggle(toggle); });
    }
  }

  // Live counters: an element with data-poll="URL" and data-every="ms" is
  // refreshed from that JSON; each descendant with data-field="name" shows
  // the field, and data-meter="name" sets a bar's width to the field (0..100).
  function fill(el, data) {
    el.querySelectorAll("[data-field]").forEach(function (f) {
      var v = data[f.getAttribute("data-field")];
      if (v !== undefined && v !== null) f.textContent = String(v);
    });
    el.querySelectorAll("[data-meter]").forEach(function (m) {
      var v = Number(data[m.getAttribute("data-meter")]);
      if (!isNaN(v)) m.style.width = Math.max(0, Math.min(100, v)) + "%";
    });
  }
  document.querySelectorAll("[data-meter][data-value]").forEach(function (m) {
    m.style.width = Math.max(0, Math.min(100, Number(m.getAttribute("data-value")) || 0)) + "%";
  });
  document.querySelectorAll("[data-poll]").forEach(function (el) {
    var url = el.getAttribute("data-poll");
    var every = Number(el.getAttribute("data-every")) || 2000;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) { if (d) fill(el, d); })
        .catch(function () { /* the next tick tries again */ })
        .then(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  });

  // Copy buttons: data-copy="element id".
  document.querySelectorAll("[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var src = document.getElementById(b.getAttribute("data-copy"));
      if (!src || !navigator.clipboard) return;
      navigator.clipboard.writeText(src.textContent.trim()).then(function () {
        b.textContent = "Copied";
      });
    });
  });

  // Confirmations: a form with data-confirm asks first.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
})();
