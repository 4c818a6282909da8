// The saga console's page: listens to /api/events (server-sent events) and draws what
// it hears; the buttons POST to /api/controls/<name>. Plain DOM, no framework, and
// text only ever goes in as textContent, so nothing an event carries can inject markup.
"use strict";

const SAGA_LANES = ["order", "payment", "inventory"]; // always shown; others once they have a step
const MAX_ORDERS_SHOWN = 50;
const orders = new Map(); // order_id -> the order's card element

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function money(cents) {
  return cents === null || cents === undefined ? "" : `$${(cents / 100).toFixed(2)}`;
}

// -- health, outbox backlog, dead letters ------------------------------------------------

function drawHealth(health) {
  const cards = Object.entries(health.services).map(([svc, h]) => {
    const checks = Object.entries(h.checks).map(([k, ok]) => `${k} ${ok ? "ok" : "DOWN"}`);
    const backlog = h.outbox_backlog === null ? "–" : h.outbox_backlog;
    return el("div", { class: `card ${h.state.replace(" ", "-")}`, "data-service": svc, "data-state": h.state },
      el("strong", {}, svc), el("span", { class: "state" }, h.state),
      el("small", {}, checks.join(", ") || "no answer"),
      el("small", {}, `outbox backlog: ${backlog}`));
  });
  const broker = health.broker.state;
  cards.push(el("div", { class: `card ${broker === "up" ? "ready" : "down"}`, "data-service": "broker", "data-state": broker },
    el("strong", {}, "broker"), el("span", { class: "state" }, broker)));
  document.getElementById("health-services").replaceChildren(...cards);
}

function drawDeadLetters(deadLetters) {
  const rows = Object.entries(deadLetters).map(([topic, d]) =>
    el("li", { "data-topic": topic, "data-count": d.count, class: d.count ? "has-letters" : "" },
      `${topic}: ${d.count}`,
      d.last_reason ? el("small", {}, ` last: ${d.last_consumer || "?"}: ${d.last_reason}`) : null));
  document.getElementById("dead-letters").replaceChildren(el("strong", {}, "dead letters"), el("ul", {}, ...rows));
}

// -- controls and what they did ------------------------------------------------------------

function drawControls(controls) {
  const groups = new Map();
  for (const control of controls) {
    if (!groups.has(control.group)) groups.set(control.group, []);
    groups.get(control.group).push(control);
  }
  const rows = [...groups].map(([group, members]) =>
    el("div", { class: "control-row" }, el("span", { class: "group" }, group),
      ...members.map((c) => el("button", { "data-control": c.name, title: c.help, onclick: () => runControl(c.name) }, c.title))));
  document.getElementById("controls").replaceChildren(...rows);
}

async function runControl(name) {
  const button = document.querySelector(`button[data-control="${name}"]`);
  button.disabled = true;
  try {
    // The outcome arrives as a `control` event, on this page and on every other one.
    await fetch(`/api/controls/${name}`, { method: "POST" });
  } finally {
    button.disabled = false;
  }
}

function logEntry(entry) {
  const time = new Date(entry.at).toLocaleTimeString();
  return el("li", { class: entry.ok ? "ok" : "failed", "data-control": entry.name, "data-ok": entry.ok, "data-order-ids": entry.order_ids.join(" ") },
    el("time", {}, time), ` ${entry.name}: ${entry.message}`);
}

// -- orders --------------------------------------------------------------------------------

function stepChip(step) {
  const label = `${step.step}${step.repeat ? " (again)" : ""}`;
  // An event published in several versions at once (a deprecation window) says so.
  const versions = step.versions.length > 1 ? `v${step.versions.join("+v")}` : null;
  return el("span", { class: `step ${step.step}`, "data-step": step.step, title: `${step.event_type} v${step.versions.join("+v")} ${step.detail}` },
    el("b", {}, label), versions ? el("small", { class: "versions" }, versions) : null,
    ` +${step.offset_ms} ms`, step.detail ? el("small", {}, step.detail) : null);
}

function orderCard(order) {
  const shown = Object.keys(order.lanes).filter((lane) => SAGA_LANES.includes(lane) || order.lanes[lane].length > 0);
  const lanes = shown.map((lane) => {
    const steps = order.lanes[lane].map(stepChip);
    if (steps.length === 0 && order.status === "PENDING") {
      steps.push(el("span", { class: "step waiting", "data-created": order.created_at || "" }, "waiting…"));
    }
    return el("div", { class: "lane", "data-lane": lane }, el("span", { class: "lane-name" }, lane), ...steps);
  });
  const reason = order.reason ? ` ${order.reason}` : "";
  return el("article", { class: `order ${order.status.toLowerCase()}`, "data-order-id": order.order_id, "data-status": order.status },
    el("header", {},
      el("span", { class: "status" }, order.status + reason),
      el("code", { class: "order-id", title: order.order_id }, order.order_id.slice(0, 8)),
      el("span", {}, ` ${order.customer_id || ""} ${money(order.total_cents)}`),
      el("small", { class: "trace" }, order.trace_id ? `trace ${order.trace_id}` : "no trace id")),
    ...lanes);
}

function showOrder(order) {
  const card = orderCard(order);
  const existing = orders.get(order.order_id);
  if (existing) {
    existing.replaceWith(card);
  } else {
    document.getElementById("orders").prepend(card);
  }
  orders.set(order.order_id, card);
  while (orders.size > MAX_ORDERS_SHOWN) {
    const [oldest] = orders.keys();
    orders.get(oldest).remove();
    orders.delete(oldest);
  }
  showTotals();
}

// How the orders on the page stand, e.g. after a burst: "5 CONFIRMED, 15 CANCELLED".
function showTotals() {
  const counts = {};
  for (const card of orders.values()) counts[card.dataset.status] = (counts[card.dataset.status] || 0) + 1;
  document.getElementById("totals").textContent =
    Object.entries(counts).map(([status, n]) => `${n} ${status}`).join(", ");
}

// How long a pending order's lane has been waiting, updated twice a second.
setInterval(() => {
  for (const chip of document.querySelectorAll(".step.waiting[data-created]")) {
    const since = Date.parse(chip.dataset.created);
    if (!Number.isNaN(since)) chip.textContent = `waiting ${((Date.now() - since) / 1000).toFixed(1)} s`;
  }
}, 500);

// -- the stream ------------------------------------------------------------------------------

function connection(state) {
  const badge = document.getElementById("connection");
  badge.textContent = state;
  badge.className = `badge ${state === "live" ? "ready" : "down"}`;
}

function start() {
  document.getElementById("health").replaceChildren(
    el("div", { id: "health-services", class: "cards" }), el("div", { id: "dead-letters" }));
  const source = new EventSource("/api/events");
  source.onopen = () => connection("live");
  source.onerror = () => connection("reconnecting");
  const on = (event, handler) => source.addEventListener(event, (e) => handler(JSON.parse(e.data)));
  on("snapshot", (state) => {
    // A (re)connect: redraw everything from the server's state.
    orders.clear();
    document.getElementById("orders").replaceChildren();
    [...state.orders].reverse().forEach(showOrder);
    drawHealth(state.health);
    drawDeadLetters(state.dead_letters);
    drawControls(state.controls);
    document.getElementById("log").replaceChildren(...state.log.map(logEntry));
  });
  on("order", showOrder);
  on("health", drawHealth);
  on("dead_letters", drawDeadLetters);
  on("control", (entry) => document.getElementById("log").prepend(logEntry(entry)));
}

start();
