// llm-mcp's page: every figure comes from /api (or /v1 for the playground); nothing is kept but
// the token, in this tab's sessionStorage.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const kid of kids.flat()) node.append(kid instanceof Node ? kid : document.createTextNode(kid ?? ""));
  return node;
};
const pct = (x) => (x === null || x === undefined ? "n/a" : `${(100 * x).toFixed(1)}%`);

// ---- the API, with the token when there is one ------------------------------------------------

class Unauthorized extends Error {}

function headers(extra = {}) {
  const token = sessionStorage.getItem("llm-mcp-token");
  return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

async function api(path, body, method) {
  const init = { method: method || (body === undefined ? "GET" : "POST"), headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) { showLogin(); throw new Unauthorized("the server wants its token"); }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error?.message || `HTTP ${res.status}`);
  return data;
}

// Server-Sent Events over fetch (EventSource cannot send the token); `lastId` resumes a stream.
async function events(path, onEvent, lastId, signal) {
  const extra = lastId ? { "Last-Event-ID": String(lastId) } : {};
  const res = await fetch(path, { headers: headers(extra), signal });
  if (res.status === 401) { showLogin(); throw new Unauthorized("the server wants its token"); }
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  await readEvents(res, onEvent);
}

// An event-stream body → onEvent({event, data, id}) per event, until the body ends.
async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const ev = { event: "message", data: "", id: null };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const [field, ...rest] = line.split(":");
        const text = rest.join(":").replace(/^ /, "");
        if (field === "data") ev.data += (ev.data ? "\n" : "") + text;
        else if (field === "event") ev.event = text;
        else if (field === "id") ev.id = text;
      }
      if (ev.data) onEvent(ev);
    }
  }
}

function showLogin() {
  $("#login").hidden = false;
  for (const v of document.querySelectorAll(".view")) v.hidden = true;
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  sessionStorage.setItem("llm-mcp-token", $("#token").value.trim());
  try {
    await api("/api/info");
    $("#login").hidden = true;
    $("#login-error").textContent = "";
    start().catch((err) => console.error(err));
  } catch (err) {
    $("#login-error").textContent = "That token was refused.";
  }
});

// ---- views ------------------------------------------------------------------------------------

let info = null;
const views = { adapters: showAdapters, training: showTraining, evals: showEvals,
                playground: showPlayground, datasets: showDatasets };

async function route() {
  const [view, arg] = (location.hash.slice(1) || "adapters").split("/");
  if (view !== "training" && jobStream) jobStream.abort();
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== view;
  for (const a of document.querySelectorAll("nav a")) a.setAttribute("aria-current", a.dataset.view === view ? "page" : "false");
  try {
    await (views[view] || showAdapters)(arg ? decodeURIComponent(arg) : null);
  } catch (err) {
    if (!(err instanceof Unauthorized)) console.error(err);
  }
}

async function start() {
  info = await api("/api/info");
  $("#model").textContent = `${info.model} · ${info.chat_format} format · ${info.device}`;
  const files = await api("/api/datasets");
  $("#dataset-files").replaceChildren(...files.map((f) => el("option", { value: f.path })));
  await route();
}

// Adapters: the list from the store and the engine, load / unload / delete, the card.
async function showAdapters() {
  const rows = await api("/api/adapters");
  $("#adapters-empty").hidden = rows.length > 0;
  const details = await Promise.all(rows.map((a) =>
    api(`/api/adapters/${encodeURIComponent(a.name)}`).catch(() => ({ card: {} }))));
  const built = rows.map((a, i) => {
    const detail = details[i];
    const card = detail.card || {};
    const peft = card.lora || detail.peft_config;
    const lora = peft ? `r=${peft.r}, ${[].concat(peft.target_modules).join(" ")}` : "";
    const sha = card.data?.train?.sha256 || "";
    const calls = a.eval_calls || {};
    const act = (label, fn, danger) => el("button", { class: danger ? "danger" : "", onclick: fn }, label);
    return el("tr", { "data-name": a.name },
      el("td", {}, a.name), el("td", {}, a.loaded ? "yes" : "no"), el("td", {}, a.base || ""),
      el("td", {}, a.chat_format || ""), el("td", {}, lora), el("td", { title: sha }, sha.slice(0, 12)),
      el("td", {}, calls.ast !== undefined ? pct(calls.ast) : "n/a"),
      el("td", {}, calls.no_call !== undefined ? pct(calls.no_call) : "n/a"),
      el("td", { class: "actions" },
        a.loaded ? act("Unload", () => adapterAction(a.name, "unload")) : act("Load", () => adapterAction(a.name, "load")),
        act("Card", () => showCard(a.name, Object.keys(card).length ? card : { peft_config: detail.peft_config })),
        act("Delete", () => confirm(`Delete adapter ${a.name} and its files?`) && adapterAction(a.name, "delete"), true)));
  });
  $("#adapter-table tbody").replaceChildren(...built);
}

async function adapterAction(name, action) {
  try {
    await api(`/api/adapters/${encodeURIComponent(name)}/${action}`, {});
    info = await api("/api/info");
    await showAdapters();
  } catch (err) {
    if (!(err instanceof Unauthorized)) alert(err.message);
  }
}

function showCard(name, card) {
  $("#card").hidden = false;
  $("#card-title").textContent = card.peft_config ? `${name}: no llm-mcp card (trained elsewhere); its PEFT config` : `Card of ${name}`;
  $("#card-body").textContent = JSON.stringify(card, null, 1);
}

// Training: the form (checked by the server as you type), the jobs, a job's live curve.
let jobStream = null;  // the AbortController of the job page's event stream

function trainOptions(form) {
  const options = {};
  for (const key of ["tools", "eval_data", "max_steps", "epochs", "learning_rate", "lora.r", "micro_batch_size"]) {
    const v = form.elements[key].value.trim();
    if (v) options[key] = /^-?[\d.]+(e-?\d+)?$/i.test(v) ? Number(v) : v;
  }
  for (const line of form.elements.more.value.split("\n")) {
    const [k, ...rest] = line.split("=");
    if (k.trim()) options[k.trim()] = rest.join("=").trim();
  }
  return options;
}

let checkTimer = null, checkSeq = 0;
$("#train-form").addEventListener("input", () => {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(async () => {
    const form = $("#train-form");
    const seq = ++checkSeq;  // an older answer arriving late must not overwrite a newer one
    const found = await api("/api/jobs/check", { options: trainOptions(form), preset: form.elements.preset.value })
      .catch((err) => ({ ok: false, error: err.message }));
    if (seq !== checkSeq) return;
    $("#train-check").textContent = found.ok ? "options ok" : found.error;
    $("#train-check").className = found.ok ? "check good" : "check bad";
  }, 300);
});

$("#train-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  try {
    const job = await api("/api/jobs", { name: form.elements.name.value.trim(),
      dataset: form.elements.dataset.value.trim(), options: trainOptions(form), preset: form.elements.preset.value });
    location.hash = `training/${job.id}`;
  } catch (err) {
    $("#train-check").textContent = err.message;
    $("#train-check").className = "check bad";
  }
});

async function showTraining(jobId) {
  if (jobStream) jobStream.abort();  // first, so a quicker second call cannot leave two streams
  jobStream = new AbortController();
  const signal = jobStream.signal;
  const presets = $("#train-form").elements.preset;
  if (presets.options.length !== info.presets.length) {
    presets.replaceChildren(...info.presets.map((p) => el("option", { value: p }, p)));
    presets.value = "default";
  }
  const jobs = await api("/api/jobs");
  $("#job-table tbody").replaceChildren(...jobs.slice().reverse().map((j) => el("tr", {},
    el("td", {}, el("a", { href: `#training/${j.id}` }, j.id)), el("td", {}, j.name), el("td", {}, j.status),
    el("td", {}, j.progress ? `${j.progress.step}/${j.progress.total_steps}` : ""),
    el("td", {}, j.progress ? j.progress.loss.toFixed(4) : ""), el("td", {}, j.created || ""))));
  $("#job").hidden = !jobId;
  if (!jobId || signal.aborted) return;
  const job = await api(`/api/jobs/${jobId}`);
  if (signal.aborted) return;
  const steps = [];
  $("#job-title").textContent = `Job ${job.id}: adapter ${job.name}`;
  $("#job-log").textContent = job.log_tail || "";
  $("#job-cancel").onclick = () => api(`/api/jobs/${jobId}/cancel`, {}).then(() => showTraining(jobId)).catch((err) => alert(err.message));
  $("#job-resume").onclick = () => api(`/api/jobs/${jobId}/resume`, {}).then(() => showTraining(jobId)).catch((err) => alert(err.message));
  const setStatus = (j) => {
    $("#job-status").textContent = `status: ${j.status}` + (j.error ? ` — ${j.error}` : "");
    $("#job-cancel").disabled = !["queued", "running"].includes(j.status);
    $("#job-resume").disabled = !["interrupted", "cancelled", "failed"].includes(j.status) || j.kind === "teach";
  };
  setStatus(job);
  plot(steps);
  let last = 0;
  const follow = async () => {  // reconnects where it left off (Last-Event-ID) until the job ends
    let ended = false;
    while (!ended && !signal.aborted) {
      try {
        await events(`/api/jobs/${jobId}/events`, (ev) => {
          const data = JSON.parse(ev.data);
          if (ev.event === "step") { last = Number(ev.id); steps.push(data); plot(steps); figures(data); }
          else if (ev.event === "status") setStatus(data);
          else if (ev.event === "end") {
            ended = true; setStatus(data);
            api(`/api/jobs/${jobId}`).then((j) => { $("#job-log").textContent = j.log_tail || ""; }).catch(() => {});
          }
        }, last, signal);
      } catch (err) {
        if (signal.aborted || err instanceof Unauthorized) return;
      }
      if (!ended && !signal.aborted) await new Promise((r) => setTimeout(r, 1000));
    }
  };
  follow();
}

function figures(s) {
  const eta = s.total_steps && s.elapsed_s ? (s.elapsed_s / s.step) * (s.total_steps - s.step) : null;
  const items = [["step", `${s.step} of ${s.total_steps}`], ["loss", s.loss?.toFixed(4)],
    ["learning rate", s.lr?.toExponential(2)], ["tokens/s", s.tokens_per_s?.toFixed(0)],
    ["ETA", eta === null ? "" : `${Math.round(eta)} s`]];
  $("#job-figures").replaceChildren(...items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "")]));
}

// The loss curve, drawn as SVG: a solid line with a point per step, the learning rate dashed.
function plot(steps) {
  const svg = $("#loss-plot");
  const ns = "http://www.w3.org/2000/svg";
  const W = 640, H = 260, L = 50, R = 50, T = 10, B = 30;
  svg.replaceChildren();
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  add("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "frame" });
  if (!steps.length) { add("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "waiting for the first step…"); return; }
  const total = Math.max(steps[steps.length - 1].total_steps || 1, ...steps.map((s) => s.step));
  const losses = steps.map((s) => s.loss).filter((v) => v !== null);
  const hi = Math.max(...losses, 1e-6), lo = Math.min(...losses);
  const top = hi + 0.05 * (hi - lo || hi), bottom = Math.max(0, lo - 0.05 * (hi - lo || hi));
  const lrTop = Math.max(...steps.map((s) => s.lr || 0), 1e-12);
  const x = (step) => L + ((W - L - R) * step) / total;
  const y = (v, max, min = 0) => T + (H - T - B) * (1 - (v - min) / (max - min));
  for (const f of [0, 0.5, 1]) {
    const v = bottom + (top - bottom) * f;
    add("text", { x: L - 6, y: y(v, top, bottom) + 4, "text-anchor": "end", class: "tick" }, v.toFixed(2));
    add("text", { x: W - R + 6, y: y(lrTop * f, lrTop) + 4, class: "tick" }, (lrTop * f).toExponential(1));
  }
  add("text", { x: L, y: H - 8, class: "tick" }, "0");
  add("text", { x: W - R, y: H - 8, "text-anchor": "end", class: "tick" }, `step ${total}`);
  const path = (key, max, min) => steps.filter((s) => s[key] !== null && s[key] !== undefined)
    .map((s, i) => `${i ? "L" : "M"}${x(s.step).toFixed(1)},${y(s[key], max, min).toFixed(1)}`).join(" ");
  add("path", { d: path("lr", lrTop, 0), class: "lr" });
  add("path", { d: path("loss", top, bottom), class: "loss", "data-points": String(steps.length) });
  for (const s of steps) if (s.loss !== null) add("circle", { cx: x(s.step), cy: y(s.loss, top, bottom), r: 2.5, class: "point" });
}

// Evaluations: start one, list the reports, a report side by side with its failures.
async function showEvals(evalId) {
  const box = $("#eval-models");
  box.replaceChildren(el("legend", {}, "Models"), ...info.models.map((m) => el("label", {},
    el("input", { type: "checkbox", name: "model", value: m.adapter || "", ...(m.adapter ? {} : { checked: "" }) }),
    ` ${m.adapter || "base"}`)));
  const rows = await api("/api/evals");
  $("#eval-table tbody").replaceChildren(...rows.map((r) => el("tr", {},
    el("td", {}, el("a", { href: `#evals/${r.id}` }, r.id)), el("td", {}, r.data || ""),
    el("td", {}, (r.models || []).map((m) => m || "base").join(", ")), el("td", {}, r.status + (r.error ? `: ${r.error}` : "")))));
  $("#report").hidden = !evalId;
  if (evalId) showReport(evalId, await api(`/api/evals/${evalId}`));
}

$("#eval-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const models = [...form.querySelectorAll("input[name=model]:checked")].map((c) => c.value || null);
  try {
    const started = await api("/api/evals", { dataset: form.elements.dataset.value.trim(), models,
      limit: Number(form.elements.limit.value) || 100, max_new_tokens: Math.min(128, info.max_new_tokens) });
    $("#eval-started").textContent = `evaluation ${started.id} running…`;
    const poll = setInterval(async () => {
      const r = await api(`/api/evals/${started.id}`).catch((err) => ({ status: "failed", error: err.message }));
      if (r.status === "running") return;
      clearInterval(poll);
      $("#eval-started").textContent = r.status === "failed" ? `failed: ${r.error}` : "";
      location.hash = `evals/${started.id}`;
      showEvals(started.id);
    }, 1000);
  } catch (err) {
    $("#eval-started").textContent = err.message;
  }
});

const METRICS = [["examples", "examples", false], ["well_formed", "well-formed call", true],
  ["tool_name", "tool name", true], ["ast", "AST match (BFCL)", true], ["exact", "exact match", true],
  ["no_call", "no-call accuracy", true], ["missed_calls", "missed calls", false], ["false_calls", "false calls", false],
  ["withheld_calls", "calls withheld (values said nowhere)", false],
  ["taken_calls", "calls with values taken from the request", false],
  ["redone_calls", "calls decoded again (wrong tool by its ids)", false],
  ["added_calls", "calls asked for and kept (one more)", false],
  ["filled_arguments", "arguments asked for and kept (one more)", false]];

function showReport(id, report) {
  if (!report.models) { $("#report-title").textContent = `${id}: ${report.status}`; return; }
  const names = Object.keys(report.models);
  $("#report-title").textContent = `${id}: ${report.data}`;
  const rate = (s, key) => {
    const cases = key === "no_call" ? s.no_call_examples : s.call_examples;
    return cases ? pct(s[key]) : "n/a";
  };
  const rows = METRICS.map(([key, label, isRate]) => el("tr", {}, el("th", { scope: "row" }, label),
    ...names.map((n) => el("td", {}, isRate ? rate(report.models[n].summary, key) : String(report.models[n].summary[key] ?? "-")))));
  const tools = [...new Set(names.flatMap((n) => Object.keys(report.models[n].per_tool || {})))].sort();
  for (const t of tools) rows.push(el("tr", { class: "tool" }, el("th", { scope: "row" }, `  ${t}`),
    ...names.map((n) => { const r = report.models[n].per_tool[t]; return el("td", {}, r ? `${pct(r.ast)} of ${r.examples}` : "-"); })));
  $("#report-table").replaceChildren(el("thead", {}, el("tr", {}, el("th", {}, "metric"), ...names.map((n) => el("th", {}, n)))),
    el("tbody", {}, rows));
  const fails = $("#failures");
  fails.replaceChildren();
  for (const n of names) {
    for (const [kind, list] of Object.entries(report.models[n].failures || {})) {
      for (const f of list) {
        f.raw = f.raw.replace(/\n{3,}/g, "\n\n") || "(nothing)";
        const expected = f.expected.map((c) => JSON.stringify({ name: c.name, arguments: c.arguments })).join("\n") || "(no call)";
        fails.append(el("article", { class: "failure" },
          el("h5", {}, `${n} · ${kind} · ${f.where}`),
          el("p", {}, el("strong", {}, "request: "), f.request || ""),
          el("p", {}, f.detail || ""),
          el("div", { class: "diff" }, el("div", {}, el("strong", {}, "expected"), el("pre", {}, diffSpans(expected, f.raw, "del"))),
            el("div", {}, el("strong", {}, "output"), el("pre", {}, diffSpans(f.raw, expected, "ins"))))));
      }
    }
  }
  if (!fails.children.length) fails.append(el("p", { class: "muted" }, "No failures."));
}

// Words of `a` not in the longest common subsequence with `b` are marked (<del>/<ins>, so the
// difference reads without colour too).
function diffSpans(a, b, tag) {
  const wa = a.split(/(\s+|[{}[\]",:])/).filter(Boolean), wb = b.split(/(\s+|[{}[\]",:])/).filter(Boolean);
  const n = wa.length, m = wb.length;
  const dp = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    dp[i][j] = wa[i] === wb[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n) {
    if (j < m && wa[i] === wb[j]) { out.push(wa[i]); i++; j++; }
    else if (j < m && dp[i][j + 1] >= dp[i + 1][j]) j++;
    else { out.push(/^\s+$/.test(wa[i]) ? wa[i] : el(tag, {}, wa[i])); i++; }
  }
  return out;
}

// Playground: one or two models on the same prompt, replies streamed, tool calls as cards.
async function showPlayground() {
  const options = info.models.map((m) => el("option", { value: m.id }, m.adapter ? `${m.adapter} (adapter)` : `${m.id} (base)`));
  const form = $("#chat-form");
  const keep = [form.elements.model.value, form.elements.model2.value];
  form.elements.model.replaceChildren(...options.map((o) => o.cloneNode(true)));
  form.elements.model2.replaceChildren(el("option", { value: "" }, "(none)"), ...options);
  const limit = form.elements.max_tokens;  // the server's --max-new-tokens bounds it
  limit.max = info.max_new_tokens;
  if (!limit.dataset.set) { limit.value = Math.min(256, info.max_new_tokens); limit.dataset.set = "1"; }
  if (keep[0]) form.elements.model.value = keep[0];
  if (keep[1]) form.elements.model2.value = keep[1];
}

// tool choice: auto, required, none, or one of the tools by name (OpenAI's tool_choice)
function toolChoices() {
  const form = $("#chat-form");
  let names = [];
  try { names = JSON.parse(form.elements.tools.value || "[]").map((t) => t.function?.name || t.name).filter(Boolean); } catch { return; }
  const keep = form.elements.tool_choice.value;
  form.elements.tool_choice.replaceChildren(...["auto", "required", "none"].map((c) => el("option", { value: c }, c)),
    ...names.map((n) => el("option", { value: `fn:${n}` }, `call ${n}`)));
  if ([...form.elements.tool_choice.options].some((o) => o.value === keep)) form.elements.tool_choice.value = keep;
}
$("#chat-form").elements.tools.addEventListener("input", toolChoices);

$("#tools-load").addEventListener("click", async () => {
  const form = $("#chat-form");
  try {
    const found = await api("/api/tools", { path: form.elements.tools_path.value.trim() });
    form.elements.tools.value = JSON.stringify(found.tools, null, 1);
    toolChoices();
    $("#chat-error").textContent = "";
  } catch (err) {
    $("#chat-error").textContent = err.message;
  }
});

$("#chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  let tools = [];
  try {
    tools = form.elements.tools.value.trim() ? JSON.parse(form.elements.tools.value) : [];
    if (!Array.isArray(tools)) throw new Error("the tools must be a JSON list");
  } catch (err) {
    $("#chat-error").textContent = `tools: ${err.message}`;
    return;
  }
  $("#chat-error").textContent = "";
  const models = [form.elements.model.value, form.elements.model2.value].filter(Boolean);
  const message = form.elements.message.value;
  const box = $("#replies");
  box.replaceChildren(...models.map((m) => el("article", { class: "reply", "data-model": m },
    el("h3", {}, m), el("p", { class: "user" }, message), el("div", { class: "text" }),
    el("div", { class: "calls" }), el("details", {}, el("summary", {}, "raw reply"), el("pre", { class: "raw" })))));
  const choice = form.elements.tool_choice.value;
  const request = { messages: [{ role: "user", content: message }], tools, stream: true,
    max_tokens: Number(form.elements.max_tokens.value) || 256,
    tool_choice: choice.startsWith("fn:") ? { type: "function", function: { name: choice.slice(3) } } : choice };
  if (!tools.length) delete request.tool_choice;
  await Promise.all(models.map((m, i) => chatOnce(box.children[i], { ...request, model: m })
    .catch((err) => { $(".text", box.children[i]).textContent += `\nerror: ${err.message}`; })));
});

async function chatOnce(card, request) {
  const chunks = [];
  const res = await fetch("/v1/chat/completions", { method: "POST", headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(request) });
  if (res.status === 401) { showLogin(); return; }
  if (!res.ok) {
    const err = await res.json().catch(() => ({}));
    $(".text", card).textContent = `error: ${err.error?.message || res.status}`;
    return;
  }
  await readEvents(res, (ev) => {
    if (ev.data === "[DONE]") return;
    const chunk = JSON.parse(ev.data);
    chunks.push(chunk);
    if (chunk.error) { $(".text", card).textContent += `\nerror: ${chunk.error.message}`; return; }
    const delta = chunk.choices?.[0]?.delta || {};
    if (delta.content) $(".text", card).textContent += delta.content;
    for (const call of delta.tool_calls || []) $(".calls", card).append(callCard(call.function));
  });
  $(".raw", card).textContent = chunks.map((c) => JSON.stringify(c)).join("\n");
}

function callCard(fn) {
  let args = {};
  try { args = JSON.parse(fn.arguments || "{}"); } catch { args = { "(unparsed)": fn.arguments }; }
  return el("section", { class: "call", "aria-label": `tool call ${fn.name}` },
    el("h4", {}, "tool call: ", el("code", {}, fn.name)),
    el("table", {}, el("tbody", {}, Object.entries(args).map(([k, v]) =>
      el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, typeof v === "string" ? v : JSON.stringify(v)))))));
}

// Datasets: upload into the data directory, validate with every issue at its line.
$("#upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const file = e.currentTarget.elements.file.files[0];
  if (!file) return;
  try {
    const upload = { name: file.name, text: await file.text() };
    const saved = await api("/api/datasets", upload).catch(async (err) => {
      if (!/exists/.test(err.message) || !confirm(`data/${file.name} exists. Replace it?`)) throw err;
      return api("/api/datasets", { ...upload, replace: true });
    });
    $("#dataset-status").textContent = `saved ${saved.path} (${saved.bytes} bytes)`;
    $("#validate-form").elements.path.value = saved.path;
    start().catch((err) => console.error(err));
  } catch (err) {
    $("#dataset-status").textContent = err.message;
  }
});

$("#validate-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  $("#dataset-status").textContent = "checking…";
  try {
    const found = await api("/api/datasets/validate", { path: form.elements.path.value.trim(),
      tools_path: form.elements.tools_path.value.trim() || null });
    $("#dataset-status").textContent = `${found.examples} examples (${Object.keys(found.formats || {}).join(", ")}): ` +
      (found.ok ? "no errors" : `${found.error_count} errors`) + `, ${found.warning_count} warnings` +
      (found.ok ? "; the train/serve parity check passed" : "");
    $("#issue-table").hidden = !found.issues.length;
    $("#issue-table tbody").replaceChildren(...found.issues.map((i) => el("tr", { class: i.level },
      el("td", {}, String(i.line)), el("td", {}, i.level), el("td", {}, i.kind), el("td", {}, i.message), el("td", {}, i.hint || ""))));
    $("#dataset-stats").hidden = false;
    $("#dataset-stats").textContent = JSON.stringify(found.stats, null, 1);
  } catch (err) {
    $("#dataset-status").textContent = err.message;
  }
});

async function showDatasets() {}

window.addEventListener("hashchange", route);
start().catch((err) => { if (!(err instanceof Unauthorized)) console.error(err); });
