// Live events: prepend each streamed event to the table (textContent only).
(function () {
  var live = document.getElementById("live");
  var body = document.getElementById("events");
  if (!live || !body || !window.EventSource) return;
  var es = new EventSource(live.getAttribute("data-stream"));
  es.onopen = function () { live.textContent = "Live updates on"; };
  es.onerror = function () { live.textContent = "Live updates reconnecting…"; };
  es.onmessage = function (m) {
    var e;
    try { e = JSON.parse(m.data); } catch (x) { return; }
    var at = new Date(e.last_at || e.at);
    var tr = document.createElement("tr");
    tr.className = "sev-" + e.severity;
    [at.toLocaleString(), e.severity, e.code, e.source, e.message, e.count].forEach(function (v) {
      var td = document.createElement("td");
      td.textContent = v == null ? "" : String(v);
      tr.appendChild(td);
    });
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
  };
})();
