// countersign console: small progressive enhancements. Every page works
// without this file; it adds the live queue, copy buttons and
// confirmations. No inline script anywhere: the CSP allows only this file.
"use strict";

(function () {
  function announce(text) {
    var live = document.getElementById("live");
    if (live) { live.textContent = ""; setTimeout(function () { live.textContent = text; }, 50); }
  }

  // Live queue: refetch the table when the server says something changed.
  var queue = document.getElementById("queue");
  if (queue && queue.dataset.live) {
    var url = queue.dataset.live;
    var status = document.getElementById("live-status");
    // A change heard while a fetch is in flight may postdate what that
    // fetch returns, so it is remembered and read again afterwards
    // rather than dropped.
    var pending = false;
    var again = false;
    var refresh = function () {
      if (pending) { again = true; return; }
      pending = true;
      again = false;
      queue.setAttribute("aria-busy", "true");
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.status === 401) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== undefined) {
            var before = queue.querySelectorAll("tbody tr").length;
            queue.innerHTML = html; // server-rendered and escaped
            var after = queue.querySelectorAll("tbody tr").length;
            if (after !== before) { announce("Queue updated: " + after + " waiting"); }
          }
        })
        .catch(function () {})
        .finally(function () {
          pending = false;
          queue.setAttribute("aria-busy", "false");
          if (again) { refresh(); }
        });
    };
    if (window.EventSource) {
      var source = new EventSource("/console/events");
      source.addEventListener("change", refresh);
      // Every (re)connection re-reads the table: changes made while the
      // stream was down, or before it first connected, are not replayed.
      source.addEventListener("open", function () {
        if (status) { status.textContent = "Updates live."; }
        refresh();
      });
      source.addEventListener("error", function () { if (status) { status.textContent = "Reconnecting…"; } });
    } else {
      // No server-sent events in this browser: re-read now and then.
      setInterval(refresh, 30000);
    }
  }

  // Copy buttons for tokens shown once.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var target = document.getElementById(button.dataset.copy);
      if (target && navigator.clipboard) {
        navigator.clipboard.writeText(target.textContent).then(function () { announce("Copied"); });
      }
    });
  });

  // Confirm before destructive forms.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
})();
