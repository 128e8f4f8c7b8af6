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
