// Machine page live updates: on each streamed event about this machine,
// fetch /machines/NAME/live (JSON) and update the channels' state, reason
// and power cells in place (textContent only).
(function () {
  var live = document.getElementById("live-machine");
  if (!live || !window.EventSource || !window.fetch) return;
  var pending = false, again = false;
  function set(sec, cls, text) {
    var el = sec.querySelector("." + cls);
    if (el) el.textContent = text;
    return el;
  }
  function refresh() {
    if (pending) { again = true; return; }
    pending = true;
    fetch(live.getAttribute("data-live"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        (d.channels || []).forEach(function (c) {
          var sec = document.querySelector('section.channel[data-account="' + c.account_id + '"]');
          if (!sec) return;
          var st = set(sec, "ch-state", c.state);
          if (st) st.className = "badge st-" + c.state + " ch-state";
          set(sec, "ch-reason", c.reason || "");
          var pw = set(sec, "ch-power", c.power);
          if (pw) pw.className = "power ch-power pw-" + c.power;
          set(sec, "ch-since", c.since);
          set(sec, "ch-since-ago", c.since_ago);
          set(sec, "ch-checked", c.checked);
        });
        live.setAttribute("data-updated", String(Date.now()));
      })
      .catch(function () { live.textContent = "Live updates failed; reload the page"; })
      .then(function () {
        pending = false;
        if (again) { again = false; refresh(); }
      });
  }
  var es = new EventSource(live.getAttribute("data-stream"));
  es.onopen = function () { live.textContent = "Live updates on"; };
  es.onerror = function () { live.textContent = "Live updates reconnecting…"; };
  es.onmessage = function () { refresh(); };
})();
