// Diagnosis streaming on the machine page and the overview's incidents: a
// form.diagnose posts to ACTION/stream and shows each step as it starts and ends (newline-delimited
// JSON read from the response body as it arrives), then the diagnosis as the
// page would render it. Refused before anything ran (role, CSRF, unknown
// machine), or without a streaming fetch, the form posts the ordinary way.
// Text goes in with textContent; only the server's rendered diagnosis (an
// html/template, escaped) goes in as HTML.
(function () {
  if (!window.fetch || !window.TextDecoder || !window.ReadableStream || !window.URLSearchParams) return;
  var forms = document.querySelectorAll("form.diagnose");
  function busy(on) {
    forms.forEach(function (f) { f.querySelector("button").disabled = on; });
  }
  // run streams form's diagnosis into its box: data-target names it (the
  // machine page's is #diagnosis); data-multi prefixes each step with its
  // machine (an incident diagnoses several).
  function run(form) {
    var box = document.getElementById(form.getAttribute("data-target") || "diagnosis");
    if (!box) { form.submit(); return; }
    var multi = form.hasAttribute("data-multi");
    busy(true);
    var t0 = performance.now();
    box.textContent = "";
    box.setAttribute("data-state", "running");
    var h = document.createElement(multi ? "h4" : "h2");
    h.textContent = "Diagnosing…";
    var ol = document.createElement("ol");
    ol.className = "diag-steps";
    box.appendChild(h);
    box.appendChild(ol);
    var items = {};
    function at() { return String(Math.round(performance.now() - t0)); }
    function line(m) {
      if (m.kind === "step") {
        var key = m.account_id + "/" + m.step;
        var text = (multi ? m.machine + ": " : "") + m.text;
        var li = items[key];
        if (!li) {
          li = items[key] = document.createElement("li");
          li.setAttribute("data-step", m.step);
          li.setAttribute("data-need", m.need || "check");
          li.setAttribute("data-at", at());
          ol.appendChild(li);
        }
        li.className = "step " + (m.done ? "done" : "running");
        li.textContent = text + (m.done ? " — done at " + (m.ms / 1000).toFixed(1) + " s" : "…");
        if (m.done) li.setAttribute("data-done-at", at());
      } else if (m.kind === "channel") {
        var c = document.createElement("li");
        c.className = "channel-done";
        c.textContent = m.channel_machine + ": " + (m.message || m.cause || "diagnosed");
        ol.appendChild(c);
      } else if (m.kind === "result") {
        box.innerHTML = m.html;
        var d = document.createElement("details");
        d.className = "diag-steps";
        var s = document.createElement("summary");
        s.textContent = "Steps (" + ol.querySelectorAll("li.step").length + ")";
        d.appendChild(s);
        d.appendChild(ol);
        box.appendChild(d);
        box.setAttribute("data-state", "done");
        box.setAttribute("data-result-at", at());
      } else if (m.kind === "error") {
        var p = document.createElement("p");
        p.className = "error";
        p.textContent = "The diagnosis failed: " + m.message;
        box.appendChild(p);
        box.setAttribute("data-state", "failed");
      }
    }
    fetch(form.action + "/stream", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Accept": "application/x-ndjson" },
      body: new URLSearchParams(new FormData(form))
    }).then(function (r) {
      if (!r.ok || !r.body) { box.setAttribute("data-state", "fallback"); form.submit(); return; }
      var reader = r.body.getReader(), dec = new TextDecoder(), buf = "";
      function pump() {
        return reader.read().then(function (x) {
          if (x.done) return;
          buf += dec.decode(x.value, { stream: true });
          var i;
          while ((i = buf.indexOf("\n")) >= 0) {
            var l = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (l) line(JSON.parse(l));
          }
          return pump();
        });
      }
      return pump();
    }).catch(function (e) {
      line({ kind: "error", message: String(e) + " (reload the page)" });
    }).then(function () {
      busy(false);
      if (box.getAttribute("data-state") === "running") line({ kind: "error", message: "the stream ended early (reload the page)" });
    });
  }
  forms.forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      run(form);
    });
  });
})();
