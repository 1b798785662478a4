// NIJA's dashboard: asks for the API token, reads the daemon's /api/v1 with it every few
// seconds and has render.js draw it; the account buttons post the operator's actions.
// Plain JavaScript modules, no library, nothing from the internet; the page's
// Content-Security-Policy runs this page's own files only.

import { clearDrawing, draw } from "./render.js";

const POLL_MS = refreshSeconds() * 1000; // the refresh period
const MAX_FAILURES = 3; // failed refreshes in a row before the page stops and says so
const TOKEN_KEY = "nija.api-token"; // in sessionStorage: this tab only
const API = "api/v1"; // relative: a reverse proxy's prefix is kept
let timer = null;
let failures = 0;
let inFlight = false;
let stopped = true;
let lastGood = null; // when the page last drew fresh data (browser time)
let memoryToken = ""; // the token when sessionStorage refuses to keep it

const $ = (id) => document.getElementById(id);

// ``?refresh=10``: refresh every 10 s (1 to 300; default 3).
function refreshSeconds() {
  const asked = Number(new URLSearchParams(window.location.search).get("refresh"));
  return Number.isFinite(asked) && asked >= 1 ? Math.min(asked, 300) : 3;
}

// -- the token -------------------------------------------------------------------------
function getToken() {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY) || "";
  } catch (e) {
    return "";
  }
}

function setToken(value) {
  try {
    if (value) {
      window.sessionStorage.setItem(TOKEN_KEY, value);
    } else {
      window.sessionStorage.removeItem(TOKEN_KEY);
    }
  } catch (e) {
    // Storage refused (a locked-down browser): the token lives until the page reloads.
  }
  memoryToken = value;
}

function token() {
  return getToken() || memoryToken;
}

// -- the API ---------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path) {
  let response;
  try {
    response = await fetch(API + path, {
      method: method,
      headers: { Authorization: "Bearer " + token(), Accept: "application/json" },
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "the daemon did not answer (stopped, or the network is down)");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const said = body && typeof body.error === "string" ? body.error : "";
    throw new ApiError(response.status, said || "HTTP " + response.status);
  }
  if (body === null || typeof body !== "object") {
    throw new ApiError(response.status, "the daemon's answer is not JSON");
  }
  return body;
}

function accountPath(key) {
  return "/accounts/" + key.split("/").map(encodeURIComponent).join("/");
}

// -- banners ---------------------------------------------------------------------------
function banner(text, kind, retry) {
  const box = $("banner");
  $("banner-text").textContent = text;
  box.className = "banner " + kind;
  box.hidden = false;
  $("retry").hidden = !retry;
}

function clearBanner() {
  $("banner").hidden = true;
}

function notice(text, kind) {
  const box = $("notice");
  box.textContent = text;
  box.className = "notice " + kind;
  box.hidden = false;
}

// The token field while there is no working token; "Forget token" once there is one.
function askForToken(ask) {
  for (const id of ["token-label", "token", "connect"]) $(id).hidden = !ask;
  $("forget").hidden = ask;
  $("token-help").hidden = !ask;
  if (ask) $("token").focus();
}

function setState(text, kind) {
  const state = $("state");
  state.textContent = text;
  state.className = "state " + kind;
}

// -- polling ---------------------------------------------------------------------------
function schedule(delay) {
  if (timer !== null) window.clearTimeout(timer);
  timer = window.setTimeout(poll, delay);
}

function stop() {
  stopped = true;
  if (timer !== null) window.clearTimeout(timer);
  timer = null;
  document.body.classList.add("stale");
}

function start() {
  stopped = false;
  failures = 0;
  askForToken(false);
  setState("connecting…", "pending");
  schedule(0);
}

async function poll() {
  timer = null;
  if (stopped) return;
  if (inFlight) {
    schedule(POLL_MS);
    return;
  }
  inFlight = true;
  try {
    const [accounts, venues] = await Promise.all([call("GET", "/accounts"), call("GET", "/venues")]);
    if (stopped) return; // the token was forgotten meanwhile
    draw(accounts, venues, act);
    failures = 0;
    lastGood = new Date();
    clearBanner();
    document.body.classList.remove("stale");
    setState("live", "ok");
    schedule(POLL_MS);
  } catch (error) {
    failed(error);
  } finally {
    inFlight = false;
  }
}

function failed(error) {
  const status = error instanceof ApiError ? error.status : 0;
  const message = error && error.message ? error.message : String(error);
  if (status === 401) {
    stop();
    setState("token refused", "bad");
    banner("The daemon refused the token: " + message + ". Paste the right token above.", "bad", false);
    askForToken(true);
    return;
  }
  failures += 1;
  const since = lastGood ? " The data below is from " + lastGood.toLocaleTimeString() + "." : "";
  if (failures >= MAX_FAILURES) {
    stop();
    setState("stopped", "bad");
    banner(
      "Stopped refreshing after " + failures + " failed attempts in a row (last: " + message + ")." + since,
      "bad",
      true,
    );
    return;
  }
  setState("retrying", "warn");
  banner("Refresh failed (" + failures + " of " + MAX_FAILURES + "): " + message + "; retrying." + since, "warn", false);
  document.body.classList.add("stale");
  schedule(POLL_MS);
}

// -- actions ---------------------------------------------------------------------------
async function act(key, action, row) {
  const buttons = row.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    const answer = await call("POST", accountPath(key) + "/" + action);
    const change = answer.before && answer.after ? " (" + answer.before + " → " + answer.after + ")" : "";
    notice(action + " " + key + ": " + String(answer.message || answer.outcome) + change, "ok");
  } catch (error) {
    const message = error && error.message ? error.message : String(error);
    notice(action + " " + key + " failed: " + message, "bad");
    if (error instanceof ApiError && error.status === 401) failed(error);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
  if (!stopped) schedule(0); // show the account as it is now
}

// -- start -----------------------------------------------------------------------------
function forget() {
  setToken("");
  stop();
  clearDrawing();
  $("token").value = "";
  clearBanner();
  $("notice").hidden = true;
  setState("not connected", "pending");
  askForToken(true);
}

function init() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) {
      banner("Paste the API token first.", "warn", false);
      return;
    }
    setToken(value);
    $("token").value = "";
    start();
  });
  $("period").textContent = String(POLL_MS / 1000);
  $("forget").addEventListener("click", forget);
  $("retry").addEventListener("click", start);
  if (token()) {
    start();
  } else {
    askForToken(true);
  }
}

init();
