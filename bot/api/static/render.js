// NIJA's dashboard: drawing the daemon's documents into the page.
//
// Every text from the daemon (account keys, error messages, a venue's reasons) goes into
// the page as text (textContent, setAttribute), never as markup: a venue's error message
// may carry anything.

const SVG = "http://www.w3.org/2000/svg";
const HEALTH = ["healthy", "degraded", "recovering", "quarantined", "failing"];
const CIRCUIT = ["closed", "half_open", "open"];
const VENUE_STATES = ["up", "down", "cancel_only", "post_only"];
const USD = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

const rows = new Map(); // account key -> its <tr>
const $ = (id) => document.getElementById(id);

// -- small helpers ---------------------------------------------------------------------
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function oneOf(value, allowed) {
  return allowed.includes(value) ? value : "unknown";
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value);
}

function usd(value) {
  return finite(value) ? USD.format(value) : "—";
}

function signedUsd(value) {
  if (!finite(value)) return "—";
  return (value > 0 ? "+" : "") + USD.format(value);
}

function seconds(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t / 1000;
}

function ago(secs) {
  if (secs === null) return "never";
  const s = Math.max(0, Math.round(secs));
  if (s < 120) return s + " s ago";
  if (s < 7200) return Math.round(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min ago";
}

function clockTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? "—" : new Date(t).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function setCell(cell, text, className, title) {
  cell.textContent = text;
  cell.className = className || "";
  if (title) {
    cell.setAttribute("title", title);
  } else {
    cell.removeAttribute("title");
  }
}

// -- drawing ---------------------------------------------------------------------------
/** Draw the accounts document and the venues document; ``onAction(key, action, row)`` is
 * called when an account's button is pressed. */
export function draw(doc, venuesDoc, onAction) {
  const mode = $("mode");
  mode.textContent = String(doc.mode || "").toUpperCase();
  mode.className = "badge " + (doc.mode === "live" ? "live" : "paper");
  mode.hidden = !doc.mode;
  $("demo").hidden = doc.demo !== true;
  const now = seconds(doc.updated_at);
  $("updated").textContent = "Daemon time " + clockTime(doc.updated_at) + ".";
  const accounts = doc.accounts && typeof doc.accounts === "object" ? doc.accounts : {};
  const keys = Object.keys(accounts).sort();
  const body = $("accounts").tBodies[0];
  for (const [key, row] of rows) {
    if (!keys.includes(key)) {
      row.remove();
      rows.delete(key);
    }
  }
  keys.forEach((key, i) => {
    let row = rows.get(key);
    if (!row) {
      row = newRow(key, onAction);
      rows.set(key, row);
    }
    if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null); // key order
    drawAccount(row, key, accounts[key] || {}, now);
  });
  const note = $("accounts-note");
  if (typeof doc.store_error === "string") {
    note.textContent = "The state database cannot be read (" + doc.store_error + "): positions are unknown.";
    note.hidden = false;
  } else if (keys.length === 0) {
    note.textContent = "The daemon has no accounts.";
    note.hidden = false;
  } else {
    note.hidden = true;
  }
  drawVenues(Array.isArray(venuesDoc.venues) ? venuesDoc.venues : []);
  drawIsolation(doc.isolation_report || {});
}

const FIELDS = ["account", "health", "circuit", "venue", "cycles", "age", "equity", "trend",
  "positions", "pnl", "error", "actions"];

function newRow(key, onAction) {
  const row = document.createElement("tr");
  row.setAttribute("data-account", key);
  for (const field of FIELDS) {
    const cell = document.createElement("td");
    cell.setAttribute("data-field", field);
    row.appendChild(cell);
  }
  const actions = row.cells[FIELDS.indexOf("actions")];
  const toggle = el("button", "Pause");
  toggle.type = "button";
  toggle.setAttribute("data-action", "pause");
  toggle.addEventListener("click", () => onAction(key, toggle.getAttribute("data-action"), row));
  const reset = el("button", "Reset");
  reset.type = "button";
  reset.setAttribute("data-action", "reset");
  reset.title = "Close this account's circuit: it trades again at its next cycle";
  reset.addEventListener("click", () => onAction(key, "reset", row));
  actions.append(toggle, reset);
  return row;
}

function cell(row, field) {
  return row.cells[FIELDS.indexOf(field)];
}

function drawAccount(row, key, a, now) {
  const name = cell(row, "account");
  name.replaceChildren(el("span", key, "key"));
  const paused = a.paused && typeof a.paused === "object" ? a.paused : null;
  if (paused) {
    const badge = el("span", "paused", "badge paused");
    badge.title = "since " + clockTime(paused.since) + " by " + String(paused.by || "?");
    name.append(" ", badge);
  }
  const health = oneOf(a.health, HEALTH);
  setCell(cell(row, "health"), a.health || "—", "health " + health);
  row.setAttribute("data-health", health);
  setCell(cell(row, "circuit"), a.circuit || "—", "circuit " + oneOf(a.circuit, CIRCUIT));
  const venueState = oneOf(a.venue_state, VENUE_STATES);
  setCell(cell(row, "venue"), String(a.broker || "?") + " · " + (a.venue_state || "—"), "venue " + venueState);

  const cycles = finite(a.cycles) ? String(a.cycles) : "—";
  const thread = a.thread && a.thread !== "running" ? " (" + a.thread + ")" : "";
  setCell(cell(row, "cycles"), cycles + thread, "num" + (thread ? " warn" : ""));

  const last = seconds(a.last_cycle_at);
  const age = last === null || now === null ? null : now - last;
  const late = age !== null && finite(a.interval_seconds) && age > 3 * a.interval_seconds + 30;
  setCell(cell(row, "age"), ago(age), "num" + (late ? " warn" : ""), a.last_cycle_at ? clockTime(a.last_cycle_at) : "");

  const unknown = a.balance_usd == null && a.balance_unknown_reason ? "unknown: " + a.balance_unknown_reason : "";
  setCell(cell(row, "equity"), usd(a.balance_usd), "num", unknown);
  drawTrend(cell(row, "trend"), Array.isArray(a.equity_history) ? a.equity_history : []);

  const symbols = Array.isArray(a.positions) ? a.positions.map((p) => String(p.symbol)).join(", ") : "";
  const open = finite(a.open_positions) ? String(a.open_positions) : "—";
  setCell(cell(row, "positions"), open, "num", symbols);

  const pnl = a.pnl_today && typeof a.pnl_today === "object" ? a.pnl_today : null;
  if (pnl && finite(pnl.realized_pnl_usd)) {
    const parts = [];
    if (finite(pnl.trades)) parts.push(pnl.trades + " trades");
    if (finite(pnl.wins) && finite(pnl.losses)) parts.push(pnl.wins + " won, " + pnl.losses + " lost");
    if (finite(pnl.fees_usd)) parts.push("fees " + usd(pnl.fees_usd));
    if (finite(pnl.win_rate)) parts.push("win rate " + Math.round(pnl.win_rate * 100) + " %");
    const sign = pnl.realized_pnl_usd > 0 ? " up" : pnl.realized_pnl_usd < 0 ? " down" : "";
    const title = "realized today (UTC), net of fees: " + parts.join(", ");
    setCell(cell(row, "pnl"), signedUsd(pnl.realized_pnl_usd), "num" + sign, title);
  } else {
    setCell(cell(row, "pnl"), "—", "num");
  }

  const error = typeof a.last_error === "string" && a.last_error ? a.last_error : "";
  const errorCell = cell(row, "error");
  setCell(errorCell, "", error ? "error" : "", error);
  errorCell.replaceChildren(el("div", error || "—", "clamp"));

  const toggle = row.querySelector("button[data-action='pause'], button[data-action='resume']");
  toggle.setAttribute("data-action", paused ? "resume" : "pause");
  toggle.textContent = paused ? "Resume" : "Pause";
  toggle.title = paused
    ? "Let this account open positions again"
    : "No new entries for this account; its exits and stops go on";
}

function drawTrend(target, history) {
  const points = history.filter((p) => Array.isArray(p) && finite(p[0]) && finite(p[1]));
  if (points.length < 2) {
    setCell(target, "—", "trend");
    return;
  }
  const width = 100;
  const height = 26;
  const pad = 2;
  const t0 = points[0][0];
  const t1 = points[points.length - 1][0];
  let low = Infinity;
  let high = -Infinity;
  for (const p of points) {
    low = Math.min(low, p[1]);
    high = Math.max(high, p[1]);
  }
  const spanT = t1 - t0 || 1;
  const spanV = high - low;
  const coords = points.map((p) => {
    const x = pad + ((p[0] - t0) / spanT) * (width - 2 * pad);
    // A flat line (no change at all) is drawn across the middle.
    const y = spanV ? height - pad - ((p[1] - low) / spanV) * (height - 2 * pad) : height / 2;
    return x.toFixed(1) + "," + y.toFixed(1);
  });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("class", "spark " + (points[points.length - 1][1] >= points[0][1] ? "up" : "down"));
  const title = document.createElementNS(SVG, "title");
  title.textContent = "equity " + usd(low) + " to " + usd(high) + " over the last " + points.length + " cycles";
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.append(title, line);
  target.replaceChildren(svg);
  target.className = "trend";
  target.removeAttribute("title");
}

function drawVenues(venues) {
  const body = $("venues").tBodies[0];
  const lines = venues.map((v) => {
    const h = v.health && typeof v.health === "object" ? v.health : null;
    const tr = document.createElement("tr");
    tr.setAttribute("data-venue", String(v.name));
    const probe = h && h.last_probe ? (h.last_probe.ok ? "ok " : "failed ") + clockTime(h.last_probe.at) : "—";
    const probeWhy = h && h.last_probe && h.last_probe.reason ? String(h.last_probe.reason) : "";
    const accounts = Array.isArray(v.accounts) ? v.accounts : [];
    const cells = [
      [String(v.name), ""],
      [h ? String(h.state) : "no venue monitor", "venue " + (h ? oneOf(h.state, VENUE_STATES) : "unknown")],
      [h ? clockTime(h.since) : "—", ""],
      [h && h.reason ? String(h.reason) : "—", ""],
      [probe, "", probeWhy],
      [h && finite(h.public_requests_per_min) ? String(h.public_requests_per_min) : "—", "num"],
      [String(accounts.length), "num", accounts.join(", ")],
    ];
    for (const [text, className, title] of cells) {
      const td = document.createElement("td");
      setCell(td, text, className, title);
      tr.appendChild(td);
    }
    return tr;
  });
  body.replaceChildren(...lines);
}

const ISOLATION = [
  ["total_accounts", "accounts"],
  ["healthy_accounts", "healthy"],
  ["degraded_accounts", "degraded"],
  ["recovering_accounts", "recovering"],
  ["quarantined_accounts", "quarantined"],
  ["failing_accounts", "failing"],
  ["open_circuits", "open circuits"],
  ["total_failures_across_all_accounts", "failures (all accounts)"],
  ["total_quarantines", "quarantines"],
  ["cross_account_errors_detected", "errors that crossed accounts"],
];

function drawIsolation(report) {
  const guarantee = $("guarantee");
  const word = typeof report.isolation_guarantee === "string" ? report.isolation_guarantee : "—";
  guarantee.textContent = word;
  guarantee.className = word === "ACTIVE" ? "ok" : word === "VIOLATED" ? "bad" : "";
  const items = [];
  for (const [name, label] of ISOLATION) {
    const value = finite(report[name]) ? String(report[name]) : "—";
    const dt = el("dt", label);
    const dd = el("dd", value);
    dd.setAttribute("data-field", name);
    items.push(dt, dd);
  }
  $("isolation").replaceChildren(...items);
}

/** Remove every drawn account, venue and figure (the token was forgotten). */
export function clearDrawing() {
  rows.forEach((row) => row.remove());
  rows.clear();
  $("venues").tBodies[0].replaceChildren();
  $("isolation").replaceChildren();
  $("guarantee").textContent = "—";
}
