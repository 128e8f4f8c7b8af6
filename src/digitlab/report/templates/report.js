/* digitlab report: sortable tables, zoomable figures, contents highlighting. No external resources. */
(function () {
  "use strict";

  // Sortable tables: click a header; numbers sort by their data-sort value, text alphabetically.
  function cellKey(td) {
    var s = td.getAttribute("data-sort");
    if (s !== null && s !== "") { return { num: true, v: parseFloat(s) }; }
    return { num: false, v: td.textContent.trim().toLowerCase() };
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var ths = table.querySelectorAll("thead th");
    ths.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var asc = !th.classList.contains("sorted-asc");
        ths.forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(asc ? "sorted-asc" : "sorted-desc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellKey(a.cells[col]), y = cellKey(b.cells[col]);
          var r;
          if (x.num && y.num) { r = x.v - y.v; }
          else if (x.num !== y.num) { r = x.num ? -1 : 1; }
          else { r = x.v < y.v ? -1 : (x.v > y.v ? 1 : 0); }
          return asc ? r : -r;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });

  // Zoomable figures: click to see the figure at full size, click again (or Escape) to close.
  var zoom = document.getElementById("zoom");
  if (zoom) {
    var big = zoom.querySelector("img");
    document.querySelectorAll("img.zoomable").forEach(function (img) {
      img.addEventListener("click", function () { big.src = img.src; big.alt = img.alt; zoom.hidden = false; });
    });
    zoom.addEventListener("click", function () { zoom.hidden = true; });
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") { zoom.hidden = true; } });
  }

  // Contents: highlight the section in view.
  var links = document.querySelectorAll(".sidebar a");
  if (links.length && "IntersectionObserver" in window) {
    var byId = {};
    links.forEach(function (a) { byId[a.getAttribute("href").slice(1)] = a; });
    var obs = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (e.isIntersecting && byId[e.target.id]) {
          links.forEach(function (a) { a.classList.remove("active"); });
          byId[e.target.id].classList.add("active");
        }
      });
    }, { rootMargin: "0px 0px -70% 0px" });
    Object.keys(byId).forEach(function (id) { var el = document.getElementById(id); if (el) { obs.observe(el); } });
  }
})();

/* Embedding explorer: the test images on the errors section's 2-D map (data: #explorer-data). */
(function () {
  "use strict";
  var holder = document.getElementById("explorer-data");
  var canvas = document.getElementById("explorer-canvas");
  if (!holder || !canvas) { return; }
  var D = JSON.parse(holder.textContent);
  var n = D.x.length, M = D.models.length;
  var ctx = canvas.getContext("2d");
  var tip = document.getElementById("explorer-tip");
  var select = document.getElementById("explorer-filter");
  var counter = document.getElementById("explorer-count");
  var colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var pad = 14, visible = [];
  function wrongBy(i, m) { return D.pred[i][m] !== D.label[i]; }
  function allWrong(i) { for (var m = 0; m < M; m++) { if (!wrongBy(i, m)) { return false; } } return M > 0; }
  function keep(i, f) {
    if (f === "all") { return true; }
    if (f === "allwrong") { return allWrong(i); }
    if (f === "issue") { return D.issue[i] === 1; }
    return wrongBy(i, parseInt(f.slice(1), 10));
  }
  function screen(i) {
    return [pad + D.x[i] * (canvas.width - 2 * pad), canvas.height - pad - D.y[i] * (canvas.height - 2 * pad)];
  }
  function draw() {
    var f = select.value;
    visible = [];
    for (var i = 0; i < n; i++) { if (keep(i, f)) { visible.push(i); } }
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    var faint = f !== "all";
    if (faint) {  // the full map in light grey behind the selection, for orientation
      ctx.fillStyle = "#e4e7eb";
      for (var j = 0; j < n; j++) { var q = screen(j); ctx.fillRect(q[0] - 1.5, q[1] - 1.5, 3, 3); }
    }
    var r = faint ? 3.5 : 2.5;
    visible.forEach(function (i) {
      var p = screen(i);
      ctx.beginPath(); ctx.arc(p[0], p[1], r, 0, 2 * Math.PI);
      ctx.fillStyle = colours[D.label[i] % colours.length]; ctx.fill();
      if (D.issue[i] === 1) { ctx.lineWidth = 1.5; ctx.strokeStyle = "#000"; ctx.beginPath(); ctx.arc(p[0], p[1], r + 2.5, 0, 2 * Math.PI); ctx.stroke(); }
    });
    canvas.setAttribute("data-visible", String(visible.length));
    counter.textContent = "showing " + visible.length + " of " + n + " images";
  }
  function nearest(px, py) {
    var best = -1, bd = 64;  // within 8 pixels
    visible.forEach(function (i) { var p = screen(i), d = (p[0] - px) * (p[0] - px) + (p[1] - py) * (p[1] - py); if (d < bd) { bd = d; best = i; } });
    return best;
  }
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
  canvas.addEventListener("mousemove", function (e) {
    var box = canvas.getBoundingClientRect();
    var sx = canvas.width / box.width, sy = canvas.height / box.height;
    var i = nearest((e.clientX - box.left) * sx, (e.clientY - box.top) * sy);
    if (i < 0) { tip.hidden = true; return; }
    var rows = D.models.map(function (m, k) {
      var p = D.pred[i][k];
      return "<tr" + (p !== D.label[i] ? ' class="wrong"' : "") + "><td>" + esc(m) + "</td><td>" + esc(D.classes[p] !== undefined ? D.classes[p] : p) + "</td></tr>";
    }).join("");
    tip.innerHTML = '<img alt="test image ' + D.index[i] + '" src="data:image/png;base64,' + D.img[i] + '">' +
      "<div><b>label " + esc(D.classes[D.label[i]] !== undefined ? D.classes[D.label[i]] : D.label[i]) + "</b> · test image " + D.index[i] +
      (D.issue[i] === 1 ? '<br><span class="issue">suspected label error</span>' : "") + "</div><table>" + rows + "</table>";
    tip.hidden = false;
    var x = e.clientX - box.left + 16, y = e.clientY - box.top + 16;
    tip.style.left = Math.min(x, box.width - 230) + "px"; tip.style.top = y + "px";
  });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
  select.addEventListener("change", draw);
  var legend = document.getElementById("explorer-legend");
  if (legend) {
    legend.innerHTML = D.classes.map(function (c, k) {
      return '<span><i style="background:' + colours[k % colours.length] + '"></i>' + esc(c) + "</span>";
    }).join("");
  }
  window.digitlabExplorer = {
    count: function () { return visible.length; },
    filter: function (v) { select.value = v; draw(); return visible.length; },
    screenPos: function (i) { var p = screen(i), box = canvas.getBoundingClientRect(); return [p[0] * box.width / canvas.width, p[1] * box.height / canvas.height]; },
    visible: function () { return visible.slice(); }
  };
  draw();
})();
