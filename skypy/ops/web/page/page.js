// The node's live page: one WebSocket (/live) pushes a sample each second;
// the table, the figures and the charts are drawn from it here, with no library.
"use strict";

const $ = (sel) => document.querySelector(sel);
const HISTORY = 600; // samples kept: ten minutes
const SHORTEST = 30; // samples the charts span at least, until there are more
const COLORS = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099"];

let rows = [];
let history = [];
let sortKey = "address";
let sortDescending = false;
let selected = null;
let socket = null;

function human(seconds) {
  const s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + (s % 60) + "s";
}

function mib(bytes) { return (bytes / 1048576).toFixed(1) + " MiB"; }

function showFigures(node) {
  $("#harbor").textContent = "harbor " + node.harbor;
  $("#uptime").textContent = human(node.uptime);
  $("#services-count").textContent = node.services;
  $("#rate").textContent = node.rate;
  $("#cpu").textContent = node.cpu + " %";
  $("#rss").textContent = mib(node.rss);
  $("#sockets").textContent = node.sockets;
  const links = $("#links");
  links.replaceChildren();
  const names = Object.keys(node.links).sort();
  for (const name of names) {
    const li = document.createElement("li");
    li.className = node.links[name];
    li.textContent = name + ": " + node.links[name];
    links.append(li);
  }
  if (!names.length) links.innerHTML = '<li class="none">no cluster</li>';
}

function compare(a, b) {
  const x = a[sortKey], y = b[sortKey];
  const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
  return sortDescending ? -order : order;
}

// Sorted by address, supervised services follow their supervisor, indented: the supervision tree.
function treeOrder(shown) {
  const children = new Map(), present = new Set(shown.map((r) => r.address)), out = [];
  for (const r of shown) {
    if (r.supervisor && present.has(r.supervisor)) {
      if (!children.has(r.supervisor)) children.set(r.supervisor, []);
      children.get(r.supervisor).push(r);
    }
  }
  const add = (r, depth) => {
    out.push([r, depth]);
    for (const child of children.get(r.address) || []) add(child, depth + 1);
  };
  for (const r of shown) if (!(r.supervisor && present.has(r.supervisor))) add(r, 0);
  return out;
}

function showTable() {
  const filter = $("#filter").value.trim().toLowerCase();
  const shown = rows.filter((r) => !filter || [r.address, r.name, r.label].some((v) => v.toLowerCase().includes(filter)));
  shown.sort(compare);
  const ordered = sortKey === "address" ? treeOrder(shown) : shown.map((r) => [r, 0]);
  const body = $("#services tbody");
  body.replaceChildren(...ordered.map(([r, depth]) => {
    const tr = document.createElement("tr");
    tr.dataset.address = r.address;
    tr.dataset.depth = depth;
    if (r.address === selected) tr.className = "selected";
    for (const key of ["address", "name", "label", "messages", "rate", "mailbox", "cpu", "coroutines", "memory", "supervisor"]) {
      const td = document.createElement("td");
      td.textContent = r[key];
      td.title = r[key];
      if (typeof r[key] === "number") td.className = "num";
      tr.append(td);
    }
    tr.firstChild.style.paddingLeft = 0.6 + 1.2 * depth + "em";
    if (depth) tr.firstChild.textContent = "└ " + r.address;
    return tr;
  }));
  for (const th of document.querySelectorAll("#services th")) {
    th.className = (th.dataset.key === sortKey ? (sortDescending ? "desc" : "asc") : "") + (th.classList.contains("num") ? " num" : "");
  }
}

// One chart: `series` is a list of [label, values], drawn against the sample times.
function drawChart(canvas, series) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 44, bottom = 16;
  ctx.clearRect(0, 0, w, h);
  const all = series.flatMap(([, values]) => values.filter((v) => v !== null));
  const top = Math.max(1, ...all) * 1.1;
  ctx.strokeStyle = "#ccd"; ctx.fillStyle = "#667"; ctx.font = "10px sans-serif"; ctx.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const y = (h - bottom) * (1 - i / 2);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w, y); ctx.stroke();
    ctx.fillText(formatTick(top * i / 2), 2, Math.max(y, 10));
  }
  // The time axis spans what has been sampled, up to ten minutes.
  const span = Math.min(HISTORY, Math.max(SHORTEST, history.length));
  ctx.fillText("−" + human(span), left, h - 3); ctx.fillText("now", w - 22, h - 3);
  const step = (w - left) / (span - 1), offset = span - history.length;
  series.forEach(([label, values], k) => {
    ctx.strokeStyle = COLORS[k % COLORS.length]; ctx.lineWidth = 1.5; ctx.beginPath();
    let drawing = false;
    values.forEach((v, i) => {
      if (v === null) { drawing = false; return; }
      const x = left + (offset + i) * step, y = (h - bottom) * (1 - v / top);
      if (drawing) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      drawing = true;
    });
    ctx.stroke();
    if (series.length > 1) { ctx.fillStyle = ctx.strokeStyle; ctx.fillText(label, left + 6 + 90 * k, 10); }
  });
  canvas.dataset.points = history.length;
}

function formatTick(v) { return v >= 1000 ? (v / 1000).toFixed(1) + "k" : v >= 10 ? v.toFixed(0) : v.toFixed(1); }

function drawCharts() {
  drawChart($("#chart-rate"), [["messages/s", history.map((p) => p.rate)]]);
  drawChart($("#chart-rss"), [["RSS", history.map((p) => p.rss / 1048576)]]);
  drawChart($("#chart-sockets"), [["sockets", history.map((p) => p.sockets)]]);
  // The services busiest now, over the whole window (null where not among the busiest then).
  const busiest = Object.keys(history.length ? history[history.length - 1].mailboxes : {});
  drawChart($("#chart-mailboxes"), busiest.length
    ? busiest.map((a) => [a, history.map((p) => (a in p.mailboxes ? p.mailboxes[a] : null))])
    : [["mailboxes", history.map(() => 0)]]);
}

function showDetail(d) {
  if (d.address !== selected) return;
  $("#detail-title").textContent = d.address + " " + d.label;
  const row = rows.find((r) => r.address === selected);
  $("#restart").disabled = !(row && row.supervisor);
  const task = d.task && typeof d.task === "object" ? Object.entries(d.task).map(([k, v]) => k + "\n" + v).join("\n\n") : String(d.task);
  $("#detail-task").textContent = task || "(no suspended coroutines)";
  $("#detail-logs").textContent = d.logs.join("\n") || "(none)";
  $("#detail-info").textContent = d.info;
}

function select(address) {
  selected = address;
  $("#detail").hidden = false;
  $("#result").textContent = "";
  ask({ op: "detail", address });
  showTable();
}

function ask(request) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(request)); }

function connect() {
  socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/live");
  socket.onopen = () => { $("#status").textContent = "live"; $("#status").className = "status live"; };
  socket.onclose = (event) => {
    $("#status").textContent = "disconnected" + (event.reason ? ": " + event.reason : "") + "; retrying…";
    $("#status").className = "status";
    setTimeout(connect, 2000);
  };
  socket.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "hello") {
      history = m.history;
      $("#actions").hidden = !m.actions;
      $("#no-actions").hidden = m.actions;
      drawCharts();
    } else if (m.type === "tick") {
      history.push(m.point);
      if (history.length > HISTORY) history.shift();
      rows = m.services;
      showFigures(m.node);
      showTable();
      drawCharts();
      if (selected && !rows.some((r) => r.address === selected)) $("#detail-title").textContent = selected + " (gone)";
      else if (selected) ask({ op: "detail", address: selected });
    } else if (m.type === "detail") {
      showDetail(m);
    } else if (m.type === "trace") {
      const hops = $("#trace-hops");
      hops.hidden = false;
      hops.textContent = m.hops.length
        ? m.hops.map(([t, from, text]) => t.toFixed(3) + "  " + from + "  " + text).join("\n")
        : "no hop of trace " + m.tag + " on this node (recently)";
    } else if (m.type === "result") {
      $("#result").textContent = m.text;
      $("#result").className = m.ok ? "" : "error";
      if (m.ok && selected) ask({ op: "detail", address: selected });
    }
  };
}

$("#services thead").addEventListener("click", (event) => {
  const key = event.target.dataset.key;
  if (!key) return;
  sortDescending = key === sortKey ? !sortDescending : ["messages", "rate", "mailbox", "cpu", "coroutines", "memory"].includes(key);
  sortKey = key;
  showTable();
});
$("#services tbody").addEventListener("click", (event) => {
  const tr = event.target.closest("tr");
  if (tr) select(tr.dataset.address);
});
$("#filter").addEventListener("input", showTable);
$("#trace").addEventListener("keydown", (event) => {
  if (event.key !== "Enter") return;
  const tag = $("#trace").value.trim();
  if (tag) ask({ op: "trace", tag }); else $("#trace-hops").hidden = true;
});
$("#actions").addEventListener("click", (event) => {
  const op = event.target.dataset.op;
  if (op && selected) ask({ op, address: selected, token: $("#token").value });
});
connect();
