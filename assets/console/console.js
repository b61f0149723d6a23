// Portier console: the one script. Pages work without it; with it, sections
// marked data-live="URL" refresh themselves from URL every 1.5 s while the page
// is visible, unless the reader is typing in them. No other script, no inline
// code (the Content-Security-Policy forbids it).
(function () {
  "use strict";
  var INTERVAL_MS = 1500;

  function refresh(el) {
    var url = el.getAttribute("data-live");
    if (!url || document.hidden) return;
    fetch(url, { credentials: "same-origin", headers: { "X-Portier-Live": "1" }, redirect: "manual" })
      .then(function (r) {
        if (r.type === "opaqueredirect" || r.status === 401) {
          // Signed out or expired: the full page says so.
          window.location.reload();
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || html === el.getAttribute("data-last")) return;
        // Never replace a form the reader is filling in.
        if (el.contains(document.activeElement) && document.activeElement !== document.body) return;
        el.innerHTML = html;
        el.setAttribute("data-last", html);
      })
      .catch(function () { /* the next round retries */ });
  }

  function start() {
    var sections = document.querySelectorAll("[data-live]");
    if (sections.length === 0) return;
    setInterval(function () {
      for (var i = 0; i < sections.length; i++) refresh(sections[i]);
    }, INTERVAL_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
