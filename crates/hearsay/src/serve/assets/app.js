// hearsay serve: sorting and filtering of tables, and the message diagram's
// filters. No network access beyond this server; no libraries.
"use strict";

function cellValue(td) {
  const v = td.getAttribute("data-v");
  if (v !== null && v !== "" && !isNaN(Number(v))) return Number(v);
  return td.textContent.trim().toLowerCase();
}

function makeSortable(table) {
  const heads = table.querySelectorAll("th");
  heads.forEach((th, i) => {
    th.addEventListener("click", () => {
      const asc = !th.classList.contains("sorted-asc");
      heads.forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
      th.classList.add(asc ? "sorted-asc" : "sorted-desc");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = cellValue(a.cells[i]), y = cellValue(b.cells[i]);
        const c = x < y ? -1 : x > y ? 1 : 0;
        return asc ? c : -c;
      });
      rows.forEach(r => body.appendChild(r));
    });
  });
}

function filterRows(table, text) {
  const q = text.trim().toLowerCase();
  let shown = 0;
  Array.from(table.tBodies[0].rows).forEach(r => {
    const hit = q === "" || r.textContent.toLowerCase().includes(q);
    r.style.display = hit ? "" : "none";
    if (hit) shown++;
  });
  const count = document.getElementById("shown");
  if (count) count.textContent = shown;
}

function diagramFilters() {
  const svg = document.querySelector(".diagram svg");
  if (!svg) return;
  const node = document.getElementById("f-node");
  const type = document.getElementById("f-type");
  const from = document.getElementById("f-from");
  const to = document.getElementById("f-to");
  const arrows = Array.from(svg.querySelectorAll("g.msg"));
  const nodes = new Set(), types = new Set();
  arrows.forEach(a => {
    nodes.add(a.dataset.src); nodes.add(a.dataset.dest); types.add(a.dataset.type);
  });
  for (const n of Array.from(nodes).sort()) node.add(new Option(n, n));
  for (const t of Array.from(types).sort()) type.add(new Option(t, t));
  const apply = () => {
    const lo = from.value === "" ? -Infinity : Number(from.value);
    const hi = to.value === "" ? Infinity : Number(to.value);
    let shown = 0;
    arrows.forEach(a => {
      const t = Number(a.dataset.t);
      const ok = (node.value === "" || a.dataset.src === node.value || a.dataset.dest === node.value)
        && (type.value === "" || a.dataset.type === type.value)
        && t >= lo && t <= hi;
      a.style.display = ok ? "" : "none";
      if (ok) shown++;
    });
    document.getElementById("arrows-shown").textContent = shown;
  };
  [node, type, from, to].forEach(e => e.addEventListener("input", apply));
  apply();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  const f = document.getElementById("filter");
  const t = document.querySelector("table.sortable");
  if (f && t) f.addEventListener("input", () => filterRows(t, f.value));
  diagramFilters();
});
