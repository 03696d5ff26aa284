// The dashboard: polls the REST API (same origin, the browser's Basic credentials) and draws.
"use strict";
const api = async (path, opts) => {
  const r = await fetch("/api/v5/" + path, opts);
  if (!r.ok && r.status !== 204) throw new Error(path + ": " + r.status);
  return r.status === 204 ? null : r.json();
};
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const rows = (id, html) => { $(id).querySelector("tbody").innerHTML = html.join(""); };

// A tiny line chart: the last POINTS samples of each series, scaled to the largest.
const POINTS = 60;
function chart(canvas, series) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 18;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  ctx.strokeStyle = "#eceef1";
  ctx.fillStyle = "#888";
  ctx.font = "11px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = pad + ((h - 2 * pad) * i) / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w - 4, y); ctx.stroke();
  }
  ctx.fillText(String(Math.round(max)), 2, pad - 4);
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    // Right-aligned: the newest sample is at the right edge.
    const off = POINTS - s.values.length;
    s.values.forEach((v, i) => {
      const x = pad + ((w - pad - 4) * (off + i)) / (POINTS - 1);
      const y = h - pad - ((h - 2 * pad) * v) / max;
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  }
}

const hist = { conn: [], recv: [], sent: [] };
let last = null;
function push(arr, v) { arr.push(v); if (arr.length > POINTS) arr.shift(); }

async function pollStats() {
  const s = (await api("stats"))[0];
  const now = performance.now();
  push(hist.conn, s["connections.count"]);
  if (last) {
    const dt = Math.max(0.001, (now - last.t) / 1000);
    push(hist.recv, (s["messages.received"] - last.recv) / dt);
    push(hist.sent, (s["messages.sent"] - last.sent) / dt);
  }
  last = { t: now, recv: s["messages.received"], sent: s["messages.sent"] };
  $("conn-now").textContent = s["connections.count"];
  $("rate-now").textContent = hist.recv.length ? Math.round(hist.recv[hist.recv.length - 1]) + " in" : "";
  $("chart-conn").dataset.points = hist.conn.length;
  $("chart-rate").dataset.last = hist.recv.length ? hist.recv[hist.recv.length - 1] : 0;
  chart($("chart-conn"), [{ values: hist.conn, color: "#2f855a" }]);
  chart($("chart-rate"), [{ values: hist.recv, color: "#2b6cb0" }, { values: hist.sent, color: "#dd6b20" }]);
}

async function pollNodes() {
  const nodes = await api("nodes");
  rows("nodes", nodes.map((n) => `<tr><td>${esc(n.node ?? "?")}${n.self ? " (this node)" : ""}</td>
    <td class="${n.node_status === "running" ? "connected" : "disconnected"}">${esc(n.node_status)}</td>
    <td>${esc(n.address ?? "")}</td><td>${n.uptime != null ? Math.round(n.uptime / 1000) + " s" : ""}</td>
    <td>${esc(n.connections ?? "")}</td><td>${n.link ? n.link.msgs_in + " / " + n.link.msgs_out : ""}</td></tr>`));
}

async function pollClients() {
  const q = $("client-search").value.trim();
  const page = await api("clients?limit=100" + (q ? "&like_clientid=" + encodeURIComponent(q) : ""));
  $("clients-count").textContent = page.meta.count;
  rows("clients", page.data.map((c) => `<tr data-clientid="${esc(c.clientid)}"><td>${esc(c.clientid)}</td>
    <td>${esc(c.username ?? "")}</td><td class="${c.conn_state}">${c.conn_state}</td>
    <td>${c.ip_address ? esc(c.ip_address + ":" + c.port) : ""}</td><td>${c.proto_ver ? "v" + c.proto_ver : ""}</td>
    <td>${c.subscriptions_cnt}</td><td>${c.mqueue_len}</td>
    <td><button class="kick" data-kick="${esc(c.clientid)}">Kick</button></td></tr>`));
}

async function pollLists() {
  const subs = await api("subscriptions?limit=100");
  rows("subs", subs.data.map((s) => `<tr><td>${esc(s.clientid)}</td><td>${esc(s.topic)}</td><td>${s.qos}</td></tr>`));
  const ret = await api("retainer/messages?limit=100");
  rows("retained", ret.data.map((m) => `<tr><td>${esc(m.topic)}</td><td>${m.qos}</td><td>${m.payload_size}</td></tr>`));
}

$("clients").addEventListener("click", async (ev) => {
  const id = ev.target.dataset && ev.target.dataset.kick;
  if (!id) return;
  ev.target.disabled = true;
  await api("clients/" + encodeURIComponent(id), { method: "DELETE" });
  await pollClients();
});
$("client-search").addEventListener("input", () => pollClients().catch(() => {}));

// The WebSocket test client.
let ws = null, wsUrl = null;
const log = (line) => {
  const li = document.createElement("li");
  li.textContent = line;
  $("ws-log").prepend(li);
};
async function findWs() {
  const ls = await api("listeners");
  const l = ls.find((l) => l.type === "ws") || ls.find((l) => l.type === "wss");
  if (!l) return;
  const port = l.bind.slice(l.bind.lastIndexOf(":") + 1);
  wsUrl = `${l.type}://${location.hostname}:${port}${l.ws_path || "/mqtt"}`;
  $("ws-url").textContent = wsUrl;
}
$("ws-connect").addEventListener("click", async () => {
  if (ws) { ws.close(); return; }
  if (!wsUrl) { log("no WebSocket listener configured"); return; }
  const c = new MiniMqtt(wsUrl, "dashboard-" + Math.random().toString(16).slice(2, 10));
  c.onmessage = (t, p) => log(`message on ${t}: ${p}`);
  c.onclose = () => {
    ws = null;
    log("disconnected");
    $("ws-connect").textContent = "Connect";
    $("ws-subscribe").disabled = $("ws-publish").disabled = true;
  };
  try {
    await c.connect();
    ws = c;
    log("connected as " + c.clientId);
    $("ws-connect").textContent = "Disconnect";
    $("ws-subscribe").disabled = $("ws-publish").disabled = false;
  } catch (e) {
    log("connect failed: " + e.message);
  }
});
$("ws-subscribe").addEventListener("click", async () => {
  const f = $("ws-sub-topic").value;
  const rc = await ws.subscribe(f, 0);
  log(`subscribed to ${f} (granted ${rc})`);
});
$("ws-publish").addEventListener("click", () => {
  ws.publish($("ws-pub-topic").value, $("ws-pub-payload").value);
  log("published on " + $("ws-pub-topic").value);
});

async function tick() {
  try {
    await Promise.all([pollStats(), pollNodes(), pollClients(), pollLists()]);
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("status").textContent = "error: " + e.message;
  }
}
findWs().catch(() => {});
tick();
setInterval(tick, 1000);
