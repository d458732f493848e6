// matcalc's page: the expression box, the variable table, the result. No build step, no network
// beyond this server's own JSON API (POST /api/parse, /api/derive, /api/check).
"use strict";

const $ = (id) => document.getElementById(id);

let EXAMPLES = [];  // from static/examples.json: the notes' derivations and matrixcalculus.org's own

const TYPES = {  // the choices of the "Type" column by the number of axes; a fact for the engine
  0: [["plain", "scalar"]],
  1: [["plain", "vector"], ["sums_to_one", "sums to one"]],
  2: [["plain", "matrix"], ["symmetric", "symmetric"], ["rows_sum_to_one", "rows sum to one"]],
};

const state = {
  vars: [],          // [{name, dims, shape, used}] from the last parse
  facts: ["symmetric", "rows_sum_to_one"],  // the engine's facts (from /api/parse)
  info: {},          // name -> {edited: "m, n" | null, type: "plain" | fact}: kept across parses
  wrt: null,
  backend: "numpy",
  lastRequest: null,
  seq: 0,
  parseSeq: 0,
};

// ---- helpers ---------------------------------------------------------------------------------

function tex(el, latex, display = false) {
  el.textContent = "";
  if (latex == null) return;
  try {
    katex.render(latex, el, {displayMode: display, throwOnError: false, strict: "ignore", output: "htmlAndMathml"});
  } catch (e) {
    el.textContent = latex;
  }
}

async function api(path, body) {
  let response;
  try {
    response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify(body)});
  } catch (e) {
    return {ok: false, data: {error: "the matcalc server does not answer (is `matcalc serve` still running?)",
                              kind: "NetworkError"}};
  }
  let data;
  try { data = await response.json(); } catch (e) { data = {error: `HTTP ${response.status}`, kind: "HTTPError"}; }
  return {ok: response.ok, data};
}

function parseDims(text) {
  return text.split(/[,×x ]+/).map((s) => s.trim()).filter((s) => s !== "")
    .map((s) => (/^\d+$/.test(s) ? parseInt(s, 10) : s));
}

function dimsText(dims) { return dims.join(", "); }

function texDim(d) {
  const s = String(d);
  return /^[A-Za-z]$/.test(s) || /^\d+$/.test(s) ? s : `\\mathrm{${s.replace(/·/g, "\\cdot ")}}`;
}

function texSpace(dims) {
  return dims.length === 0 ? "\\mathbb{R}" : `\\mathbb{R}^{${dims.map(texDim).join(" \\times ")}}`;
}

function infoOf(name) {
  if (!state.info[name]) state.info[name] = {edited: null, type: "plain"};
  return state.info[name];
}

// ---- request state ----------------------------------------------------------------------------

function editedShapes() {
  const shapes = {};
  for (const [name, inf] of Object.entries(state.info)) {
    if (inf.edited !== null) shapes[name] = parseDims(inf.edited);
  }
  return shapes;
}

function facts() {
  const symmetric = [], assume = [];
  const present = new Set(state.vars.map((v) => v.name));
  for (const [name, inf] of Object.entries(state.info)) {
    if (!present.has(name) || inf.type === "plain") continue;
    if (inf.type === "symmetric") symmetric.push(name); else assume.push(`${inf.type}=${name}`);
  }
  return {symmetric, assume};
}

function mode() { return document.querySelector("input[name=mode]:checked").value; }

function request() {
  const {symmetric, assume} = facts();
  const body = {expr: $("expr").value, wrt: state.wrt || "", mode: mode(), syntax: $("syntax").value};
  if (body.mode === "diff") body.layout = $("layout").value;
  if (body.mode === "vjp") body.upstream = $("upstream").value.trim() || "G";
  const shapes = editedShapes();
  if (Object.keys(shapes).length) body.shapes = shapes;
  if (symmetric.length) body.symmetric = symmetric;
  if (assume.length) body.assume = assume;
  return body;
}

function writeUrl(body) {
  const q = new URLSearchParams();
  q.set("expr", body.expr);
  q.set("wrt", body.wrt);
  if (body.mode !== "diff") q.set("mode", body.mode);
  if (body.layout && body.layout !== "mixed") q.set("layout", body.layout);
  if (body.syntax !== "matcalc") q.set("syntax", body.syntax);
  if (body.upstream && body.upstream !== "G") q.set("upstream", body.upstream);
  if (body.shapes) q.set("shapes", Object.entries(body.shapes).map(([k, v]) => `${k}=${v.join(",")}`).join(";"));
  if (body.symmetric) q.set("symmetric", body.symmetric.join(","));
  if (body.assume) q.set("assume", body.assume.join(";"));
  history.replaceState(null, "", `${location.pathname}?${q.toString()}`);
}

function readUrl() {
  const q = new URLSearchParams(location.search);
  if (!q.get("expr")) return false;
  $("expr").value = q.get("expr");
  setChoice("syntax", q.get("syntax"));
  setChoice("layout", q.get("layout"));
  if (q.get("upstream")) $("upstream").value = q.get("upstream");
  setMode(q.get("mode") || "diff");
  state.wrt = q.get("wrt") || null;
  state.wrtPinned = !!state.wrt;
  for (const item of (q.get("shapes") || "").split(";")) {
    const i = item.indexOf("=");
    if (i > 0) infoOf(item.slice(0, i).trim()).edited = item.slice(i + 1).split(",").join(", ");
  }
  for (const name of (q.get("symmetric") || "").split(",")) if (name.trim()) infoOf(name.trim()).type = "symmetric";
  for (const item of (q.get("assume") || "").split(";")) {
    const [fact, names] = item.split("=");
    if (names) for (const name of names.split(",")) if (name.trim()) infoOf(name.trim()).type = fact.trim();
  }
  return true;
}

function setChoice(id, value) {  // only one of the select's own options
  if ([...$(id).options].some((o) => o.value === value)) $(id).value = value;
}

function setMode(value) {
  if (!["diff", "vjp", "hessian"].includes(value)) value = "diff";
  for (const r of document.querySelectorAll("input[name=mode]")) r.checked = r.value === value;
  modeChanged();
}

function modeChanged() {
  const m = mode();
  $("upstream-field").hidden = m !== "vjp";
  $("layout").disabled = m !== "diff";
  $("layout-field").classList.toggle("disabled", m !== "diff");
}

// ---- errors under the input -------------------------------------------------------------------

function showParseError(data) {
  const box = $("parse-error");
  if (!data) { box.hidden = true; box.textContent = ""; $("expr").removeAttribute("aria-invalid"); return; }
  box.hidden = false;
  box.textContent = "";
  const msg = document.createElement("span");
  msg.className = "message";
  msg.textContent = `${data.kind}: ${data.error}`;
  box.appendChild(msg);
  if (data.caret) {
    const caret = document.createElement("span");
    caret.className = "caret";
    caret.textContent = data.caret;  // its own block: the caret line stays aligned with the source line
    box.appendChild(caret);
  }
  $("expr").setAttribute("aria-invalid", "true");
}

// ---- the variable table -----------------------------------------------------------------------

function defaultWrt(vars) {
  const names = vars.filter((v) => v.used || v.name === state.wrt).map((v) => v.name);
  if (state.wrt && names.includes(state.wrt)) return state.wrt;
  for (const n of ["w", "W", "x", "theta", "beta", "W1", "X"]) if (names.includes(n)) return n;
  return names[0] || null;
}

function typeSelect(v) {
  const select = document.createElement("select");
  select.setAttribute("aria-label", `type of ${v.name}`);
  const inf = infoOf(v.name);
  for (const [value, label] of TYPES[Math.min(v.dims.length, 2)]) {
    if (value !== "plain" && !state.facts.includes(value)) continue;  // a fact this engine does not know
    const o = document.createElement("option");
    o.value = value; o.textContent = label;
    select.appendChild(o);
  }
  select.value = [...select.options].some((o) => o.value === inf.type) ? inf.type : "plain";
  select.addEventListener("change", () => {
    inf.type = select.value;
    if (select.value === "symmetric" && v.dims.length === 2 && String(v.dims[0]) !== String(v.dims[1])) {
      inf.edited = `${v.dims[0]}, ${v.dims[0]}`;  // symmetric means square: make the dimensions agree
      refresh(true);
    } else {
      deriveIfShown();
    }
  });
  return select;
}

function fillTable(vars) {
  const body = $("vars").querySelector("tbody");
  body.textContent = "";
  if (!vars.length) {
    body.innerHTML = '<tr class="empty"><td colspan="5">Type an expression to see its variables.</td></tr>';
    return;
  }
  state.wrt = defaultWrt(vars);
  for (const v of vars) {
    const tr = document.createElement("tr");
    tr.dataset.name = v.name;
    const name = document.createElement("th");
    name.scope = "row";
    tex(name, v.latex || v.name);
    const shape = document.createElement("td");
    shape.className = "shape";
    shape.textContent = v.shape + (v.used ? "" : " (not in the expression)");
    const dims = document.createElement("td");
    const input = document.createElement("input");
    input.type = "text"; input.size = 8; input.spellcheck = false;
    input.className = "dims";
    input.setAttribute("aria-label", `dimensions of ${v.name} (comma separated; empty for a scalar)`);
    input.value = infoOf(v.name).edited ?? dimsText(v.dims);
    input.addEventListener("change", () => {
      infoOf(v.name).edited = input.value.trim() === dimsText(v.dims) ? null : input.value.trim();
      refresh(true);
    });
    dims.appendChild(input);
    const type = document.createElement("td");
    type.appendChild(typeSelect(v));
    const wrt = document.createElement("td");
    const radio = document.createElement("input");
    radio.type = "radio"; radio.name = "wrt"; radio.value = v.name;
    radio.id = `wrt-${v.name}`;
    radio.checked = v.name === state.wrt;
    radio.setAttribute("aria-label", `differentiate by ${v.name}`);
    radio.addEventListener("click", () => { state.wrt = v.name; derive(); });
    const lab = document.createElement("label");
    lab.htmlFor = radio.id;
    lab.textContent = ` ∂/∂${v.name}`;
    wrt.append(radio, lab);
    tr.append(name, shape, dims, type, wrt);
    body.appendChild(tr);
  }
}

async function parseNow() {
  const expr = $("expr").value;
  const seq = ++state.parseSeq;
  if (!expr.trim()) { state.vars = []; fillTable([]); showParseError(null); return false; }
  const req = {expr, syntax: $("syntax").value, shapes: editedShapes()};
  if (state.wrtPinned && state.wrt) req.wrt = state.wrt;  // a link's variable, even if the expression lacks it
  const {ok, data} = await api("/api/parse", req);
  if (seq !== state.parseSeq) return false;
  if (!ok) { showParseError(data); return false; }
  showParseError(null);
  state.vars = data.variables;
  if (data.facts) state.facts = data.facts;
  fillTable(data.variables);
  return true;
}

let parseTimer = null;
function parseSoon() {
  clearTimeout(parseTimer);
  parseTimer = setTimeout(parseNow, 250);
}

// ---- the result -------------------------------------------------------------------------------

function show(id, visible) { $(id).hidden = !visible; }

function renderResult(d) {
  show("derive-error", false);
  show("answer", true);
  const warnings = $("warnings");
  warnings.textContent = "";
  for (const w of d.warnings || []) warnings.appendChild(Object.assign(document.createElement("li"), {textContent: w}));
  show("warnings", !!(d.warnings && d.warnings.length));
  tex($("equation"), d.equation, true);
  const what = {diff: "derivative", vjp: "backprop rule", hessian: "Hessian"}[d.kind];
  tex($("shapes"), `${d.shapes_latex} \\qquad \\text{${what}} \\in ${texSpace(d.shape)}` +
      (d.vec_jacobian ? " \\;\\; (\\text{vec-Jacobian})" : ""));
  show("differential-box", !!d.differential_latex && d.vec_jacobian);
  if (d.differential_latex) tex($("differential"), d.differential_latex, true);
  show("backprop-box", !!d.backprop);
  if (d.backprop) {
    tex($("backprop"), d.backprop.equation, true);
    $("backprop-upstream").textContent = `(upstream ${d.backprop.upstream} = ∂L/∂F)`;
  }
  const err = (key) => (d.errors && d.errors[key] ? `${d.errors[key].kind}: ${d.errors[key].error}` : "");
  renderSteps(d.steps, err("steps"));
  if (d.index) tex($("index"), d.index, true); else $("index").textContent = err("index");
  $("text-out").textContent = d.text;
  state.code = d.code;
  state.codeErrors = d.code_errors || {};
  showCode();
  $("check-result").textContent = "";
  $("check-result").className = "";
}

function renderSteps(steps, error) {
  const box = $("steps");
  box.textContent = error;
  if (!steps) return;
  const list = document.createElement("ol");
  for (const st of steps) {
    const li = document.createElement("li");
    const math = document.createElement("div");
    math.className = "math";
    tex(math, st.latex, false);
    const rule = document.createElement("div");
    rule.className = "rule";
    const checks = Object.entries(st.shapes || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
    rule.textContent = st.rule + (checks ? `  [${checks}]` : "");
    li.append(math, rule);
    list.appendChild(li);
  }
  box.appendChild(list);
}

function showCode() {
  for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-pressed", String(b.dataset.backend === state.backend));
  const code = (state.code || {})[state.backend];
  const e = state.codeErrors && state.codeErrors[state.backend];
  $("code-out").textContent = code ?? (e ? `# ${e.kind}: ${e.error}` : "");
}

function renderError(data) {
  show("answer", false);
  if (data.kind === "ParseError" || !$("parse-error").hidden) {  // the expression's own error: under the input
    if (data.kind === "ParseError") showParseError(data);
    show("derive-error", false);
    return;
  }
  show("derive-error", true);
  $("derive-error").textContent = `${data.kind}: ${data.error}`;
}

async function derive() {
  if (!$("expr").value.trim()) return;
  if (!state.wrt) await parseNow();
  if (!state.wrt) return;
  const body = request();
  const seq = ++state.seq;
  $("result").hidden = false;
  $("result").setAttribute("aria-busy", "true");
  const {ok, data} = await api("/api/derive", body);
  if (seq !== state.seq) return;
  $("result").removeAttribute("aria-busy");
  state.lastRequest = body;
  writeUrl(body);
  if (ok) { showParseError(null); renderResult(data); } else { renderError(data); }
}

function deriveIfShown(always = false) {
  if (always || !$("result").hidden) derive();
}

async function refresh(thenDerive) {
  const ok = await parseNow();
  if (ok && thenDerive) derive();
}

async function check() {
  if (!state.lastRequest) return;
  const out = $("check-result");
  out.className = "muted";
  out.textContent = "checking…";
  const {ok, data} = await api("/api/check", state.lastRequest);
  if (!ok) { out.className = "bad"; out.textContent = `${data.kind}: ${data.error}`; return; }
  out.className = data.ok ? "good" : "bad";
  out.textContent = `${data.ok ? "✓" : "✗"} ${data.summary}`;
}

async function copy(button) {
  const text = $(button.dataset.copy).textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    const range = document.createRange();
    range.selectNodeContents($(button.dataset.copy));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
  }
  const old = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = old; }, 1200);
}

// ---- examples and wiring ----------------------------------------------------------------------

async function fillExamples() {
  try {
    EXAMPLES = await (await fetch("/static/examples.json")).json();
  } catch (e) {
    EXAMPLES = [];
  }
  const select = $("examples");
  const groups = {};
  EXAMPLES.forEach((ex, i) => {
    if (!groups[ex.group]) {
      groups[ex.group] = document.createElement("optgroup");
      groups[ex.group].label = ex.group;
      select.appendChild(groups[ex.group]);
    }
    const o = document.createElement("option");
    o.value = String(i);
    o.textContent = ex.label;
    groups[ex.group].appendChild(o);
  });
  select.addEventListener("change", async () => {
    if (select.value === "") return;
    const ex = EXAMPLES[Number(select.value)];
    $("expr").value = ex.expr;
    $("syntax").value = ex.syntax || "matcalc";
    setMode(ex.mode || "diff");
    $("layout").value = "mixed";
    state.info = {};
    for (const [name, type] of Object.entries(ex.types || {})) infoOf(name).type = type;
    state.wrt = ex.wrt;
    await refresh(true);
  });
}

function init() {
  fillExamples();  // in the background: the menu fills when the file arrives
  $("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    clearTimeout(parseTimer);
    await parseNow();
    derive();
  });
  $("expr").addEventListener("input", () => { state.wrtPinned = false; parseSoon(); });
  $("syntax").addEventListener("change", () => refresh(!$("result").hidden));
  for (const r of document.querySelectorAll("input[name=mode]")) {
    r.addEventListener("change", () => { modeChanged(); deriveIfShown(); });
  }
  $("layout").addEventListener("change", () => deriveIfShown());
  $("upstream").addEventListener("change", () => deriveIfShown());
  $("check").addEventListener("click", check);
  for (const b of document.querySelectorAll(".tab")) {
    b.addEventListener("click", () => { state.backend = b.dataset.backend; showCode(); });
  }
  for (const b of document.querySelectorAll(".copy")) b.addEventListener("click", () => copy(b));
  modeChanged();
  if (readUrl()) refresh(true); else $("expr").focus();
}

document.addEventListener("DOMContentLoaded", init);
