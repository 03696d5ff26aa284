// The dashboard driven in headless Chromium against a real broker:
//   node tests/dashboard/dashboard.mjs SUPERMQ_BINARY [SCREENSHOT_PATH]
// Starts the broker (TCP, WebSocket and HTTP on free ports, an API key), connects a raw MQTT
// client that keeps publishing, then checks in the page: the client is listed as connected,
// the message-rate chart moves, the WebSocket test client round-trips a message, and the
// kick button closes the client's connection. Saves a screenshot and prints its path.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const bin = process.argv[2];
const shot = process.argv[3] || path.join(os.tmpdir(), "supermq-dashboard.png");
if (!bin) throw new Error("usage: dashboard.mjs SUPERMQ_BINARY [SCREENSHOT]");
const WAIT = 15000;

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });

function str(s) {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
}
function packet(first, body) {
  const len = [];
  let n = body.length;
  do { let d = n % 128; n = Math.floor(n / 128); if (n) d |= 128; len.push(d); } while (n);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}

async function until(what, f) {
  const end = Date.now() + WAIT;
  for (;;) {
    if (await f()) return;
    if (Date.now() > end) throw new Error("timed out waiting for: " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const dir = mkdtempSync(path.join(os.tmpdir(), "supermq-dash-"));
const [mqtt, ws, http] = [await freePort(), await freePort(), await freePort()];
const secret = "dashboard-secret";
writeFileSync(path.join(dir, "supermq.conf"), `
[[listener]]
name = "tcp"
bind = "127.0.0.1:${mqtt}"

[[listener]]
name = "ws"
protocol = "ws"
bind = "127.0.0.1:${ws}"

[log]
level = "warn"

[sys]
interval = "0s"

[persistence]
enabled = false

[http]
bind = "127.0.0.1:${http}"

[[http.api_key]]
key = "ops"
secret = "${secret}"
`);
const broker = spawn(bin, ["-c", path.join(dir, "supermq.conf")], { stdio: ["ignore", "inherit", "inherit"] });
let browser;
let probe;
let traffic;
try {
  const base = `http://127.0.0.1:${http}`;
  const auth = "Basic " + Buffer.from(`ops:${secret}`).toString("base64");
  await until("the HTTP server", async () => {
    try { return (await fetch(base + "/healthz", { headers: { authorization: auth } })).ok; } catch { return false; }
  });

  // A raw MQTT 3.1.1 client that stays connected and publishes QoS 0 every 50 ms.
  probe = net.connect(mqtt, "127.0.0.1");
  await new Promise((r) => probe.once("connect", r));
  let closed = false;
  probe.on("close", () => { closed = true; });
  probe.on("error", () => {});
  probe.write(packet(0x10, Buffer.concat([str("MQTT"), Buffer.from([4, 2, 0, 60]), str("dash-probe")])));
  traffic = setInterval(() => {
    if (!closed) probe.write(packet(0x30, Buffer.concat([str("load/probe"), Buffer.from("x")])));
  }, 50);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  const context = await browser.newContext({ httpCredentials: { username: "ops", password: secret } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + "/");

  // The connected client is listed.
  const row = page.locator('#clients tr[data-clientid="dash-probe"]');
  await row.waitFor({ timeout: WAIT });
  await until("dash-probe shown connected", async () => (await row.locator("td.connected").count()) === 1);
  console.log("dashboard: client dash-probe listed as connected");

  // The message-rate chart moves while traffic flows.
  await until("the rate chart to move", async () =>
    Number(await page.locator("#chart-rate").getAttribute("data-last")) > 0);
  const points = Number(await page.locator("#chart-conn").getAttribute("data-points"));
  if (points < 2) throw new Error("connection chart has " + points + " points");
  console.log("dashboard: message-rate chart moving");

  // The WebSocket test client round-trips a message.
  await until("the WebSocket URL", async () => (await page.locator("#ws-url").textContent()).startsWith("ws://"));
  await page.click("#ws-connect");
  await page.locator("#ws-log li", { hasText: "connected as" }).waitFor({ timeout: WAIT });
  await page.fill("#ws-sub-topic", "dash/#");
  await page.click("#ws-subscribe");
  await page.locator("#ws-log li", { hasText: "subscribed to dash/#" }).waitFor({ timeout: WAIT });
  await page.fill("#ws-pub-topic", "dash/echo");
  await page.fill("#ws-pub-payload", "round trip");
  await page.click("#ws-publish");
  await page.locator("#ws-log li", { hasText: "message on dash/echo: round trip" }).waitFor({ timeout: WAIT });
  console.log("dashboard: WebSocket test client round-tripped a message");

  // The subscription shows in the lists; a few more samples make the charts readable.
  await page.locator("#subs td", { hasText: "dash/#" }).waitFor({ timeout: WAIT });
  await until("five chart samples", async () =>
    Number(await page.locator("#chart-conn").getAttribute("data-points")) >= 5);
  await page.screenshot({ path: shot, fullPage: true });
  console.log("dashboard: screenshot saved to " + shot);

  // Kick closes the client's connection.
  await row.locator("button.kick").click();
  await until("the kicked connection to close", () => closed);
  await until("dash-probe gone from the list", async () =>
    (await page.locator('#clients tr[data-clientid="dash-probe"]').count()) === 0);
  console.log("dashboard: kick closed dash-probe's connection");

  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  console.log("dashboard: all checks passed");
} finally {
  clearInterval(traffic);
  if (probe) probe.destroy();
  if (browser) await browser.close();
  broker.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
