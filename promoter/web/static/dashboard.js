// promoter dashboard: polls the JSON API and updates the server-rendered page in place.
// Renders the same markup as promoter/web/dashboard_html.py; keep the two in step.
"use strict";

(() => {
  const POLL_MS = 2000;
  const DECISIONS = 15;
  const DECISION_COLUMNS = 7;
  let lastOk = Date.now();
  let timer = null;
  let running = false;

  // h("span", {class: "x", "data-role": "y"}, "text", child) -> element; text is never parsed as HTML
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === "") continue;
      node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
    }
    return node;
  }

  function ago(seconds) {
    const s = Math.max(Math.floor(seconds), 0);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m`;
    if (s < 86400) {
      const hours = Math.floor(s / 3600), minutes = Math.floor(s / 60) % 60;
      return minutes ? `${hours}h${minutes}m` : `${hours}h`;
    }
    const days = Math.floor(s / 86400), hours = Math.floor(s / 3600) % 24;
    return hours ? `${days}d${hours}h` : `${days}d`;
  }

  const clock = (stamp) => (stamp && stamp.length >= 19 ? stamp.slice(11, 19) : "");
  const versions = (v) => Object.entries(v || {}).map(([k, x]) => `${k} ${x}`).join(" · ");
  const link = (url) => (url && /^https?:\/\//i.test(url) ? url : null);

  function pr(number, url) {
    const text = number !== null && number !== undefined ? `PR #${number}` : "PR being opened";
    const href = link(url);
    if (href) return h("a", { class: "pr", "data-role": "pr", href, rel: "noreferrer" }, text);
    return h("span", { class: "pr", "data-role": "pr", title: url || "" }, text);
  }

  function live(cell) {
    const entries = Object.entries(cell.live || {});
    if (!entries.length) return h("div", { class: "live none", "data-role": "live" }, "nothing live");
    return h("div", { class: "live", "data-role": "live" }, entries.map(([k, v]) =>
      h("span", { class: "ver", "data-artifact": k }, h("span", { class: "art" }, k), h("span", { class: "v" }, v))));
  }

  function badges(cell) {
    const out = [h("span", { class: "badge health", "data-role": "health", "data-health": cell.health,
      title: cell.health_reason || "" }, cell.health)];
    if (cell.held) {
      out.push(h("span", { class: "badge held", "data-role": "held",
        title: cell.hold_reason || "held by an operator" }, "held"));
    }
    return h("div", { class: "badges" }, out);
  }

  function pending(p) {
    if (!p) return null;
    const needed = p.approvals_needed || 0;
    let approvals = null;
    if (needed || p.approvals.length) {
      const valid = p.approvals_valid || [];
      const who = p.approvals.join(", ");
      approvals = h("span", { class: "approvals", "data-role": "approvals",
        "data-state": valid.length >= needed ? "ok" : "waiting", title: `approved by: ${who || "nobody yet"}` },
      `${valid.length}/${needed} approvals${who ? " · " + who : ""}`);
    }
    return h("div", { class: "pending", "data-role": "pending" }, pr(p.pr, p.url),
      h("span", { class: "vers" }, versions(p.versions)), approvals,
      p.merging ? h("span", { class: "merging" }, "merging") : null);
  }

  function soakBar(soak) {
    return h("span", { class: "soak", "data-role": "soak", "data-upstream": soak.upstream },
      h("progress", { max: soak.required_s, value: soak.elapsed_s }), h("span", {}, soak.text));
  }

  function gates(cell) {
    const items = cell.gates.map((gate) => {
      const attrs = { class: "gate", "data-gate": gate.code, "data-state": gate.state };
      if (gate.state !== "blocked") return h("li", attrs, h("span", { class: "code" }, gate.code));
      const body = gate.code === "soak" && cell.soak.length
        ? cell.soak.map(soakBar) : h("span", { class: "why" }, gate.reason);
      return h("li", { ...attrs, title: gate.reason }, h("span", { class: "code" }, gate.code), body);
    });
    items.sort((a, b) => (a.dataset.state === "ok") - (b.dataset.state === "ok"));
    return items.length ? h("ul", { class: "gates", "data-role": "gates" }, items) : null;
  }

  function cellContent(cell) {
    const since = cell.live_since
      ? h("div", { class: "since", "data-role": "since", title: cell.live_since },
        `since ${clock(cell.live_since)}${cell.live_for_s !== null ? " · " + ago(cell.live_for_s) : ""}`)
      : null;
    const out = [h("div", { class: "top" }, live(cell), badges(cell)), since];
    if (cell.held) {
      out.push(h("div", { class: "note hold", "data-role": "hold-reason" }, cell.hold_reason || "held by an operator"));
    }
    out.push(pending(cell.pending));
    const c = cell.candidate;
    if (c && !c.refused && (!cell.pending || versions(cell.pending.versions) !== versions(c.versions))) {
      out.push(h("div", { class: "next", "data-role": "candidate" }, `next: ${versions(c.versions)}`));
    }
    out.push(gates(cell));
    if (cell.error) out.push(h("div", { class: "note error", "data-role": "error" }, cell.error));
    return out.filter(Boolean);
  }

  function pipelineHead(p) {
    const latest = versions(p.latest);
    return h("th", { scope: "row", class: "pipe" }, h("div", { class: "pipe-name" }, p.name),
      h("div", { class: "pipe-sub" }, latest ? `newest: ${latest}` : "no bundle yet"),
      p.outbox ? h("div", { class: "pipe-sub busy" }, `${p.outbox} effect(s) queued`) : null);
  }

  function emptyCell(pipeline, env) {
    return h("td", { class: "cell absent", "data-pipeline": pipeline, "data-env": env, "data-state": "absent" },
      h("span", {}, "—"));
  }

  // Rebuild rows and columns only when they change; otherwise replace only the cells that changed.
  function renderMatrix(doc) {
    const table = document.getElementById("matrix");
    const shape = JSON.stringify([doc.columns, doc.pipelines.map((p) => p.name)]);
    const domShape = JSON.stringify([[...table.querySelectorAll("thead th[data-env]")].map((th) => th.dataset.env),
      [...table.querySelectorAll("tbody tr[data-pipeline]")].map((tr) => tr.dataset.pipeline)]);
    if (shape !== domShape) {
      const head = h("thead", {}, h("tr", {}, h("th", { class: "corner" }, "pipeline"),
        doc.columns.map((c) => h("th", { scope: "col", "data-env": c }, c))));
      const rows = doc.pipelines.map((p) => h("tr", { "data-pipeline": p.name }, pipelineHead(p),
        doc.columns.map((c) => emptyCell(p.name, c))));
      if (!rows.length) {
        rows.push(h("tr", { class: "none" }, h("td", { colspan: doc.columns.length + 1 },
          "No pipelines yet: a worker publishes its pipelines when it starts (",
          h("code", {}, "promoter run"), ").")));
      }
      table.replaceChildren(head, h("tbody", {}, rows));
    }
    for (const p of doc.pipelines) {
      const row = [...table.tBodies[0].rows].find((tr) => tr.dataset.pipeline === p.name);
      const sig = JSON.stringify([p.latest, p.outbox]);
      if (row.dataset.sig !== sig) {
        row.replaceChild(pipelineHead(p), row.cells[0]);
        row.dataset.sig = sig;
      }
      const byEnv = new Map(p.environments.map((e) => [e.name, e]));
      doc.columns.forEach((column, i) => {
        const td = row.cells[i + 1], cell = byEnv.get(column);
        if (!cell) return;
        const cellSig = JSON.stringify(cell);
        if (td.dataset.sig === cellSig) return;
        td.className = "cell";
        td.dataset.state = cell.state;
        td.replaceChildren(...cellContent(cell));
        td.dataset.sig = cellSig;
      });
    }
  }

  function renderDecisions(records) {
    const table = document.getElementById("decisions");
    const sig = JSON.stringify(records.map((r) => [r.pipeline, r.seq]));
    if (table.dataset.sig === sig) return;
    table.dataset.sig = sig;
    const rows = records.map((r) => {
      const reason = (r.reason || "") + (r.error ? ` (failed: ${r.error})` : "");
      let prCell = "";
      if (r.pr !== null && r.pr !== undefined) {
        const href = link(r.pr_url);
        prCell = href ? h("a", { href, rel: "noreferrer" }, `#${r.pr}`) : `#${r.pr}`;
      }
      return h("tr", { "data-pipeline": r.pipeline || "", "data-seq": r.seq ?? "" },
        h("td", { class: "t", title: r.at || "" }, clock(r.at || "")), h("td", {}, r.pipeline || ""),
        h("td", {}, r.environment || ""),
        h("td", {}, h("span", { class: "action", "data-action": r.action || "" }, r.action || "")),
        h("td", { class: "vers" }, versions(r.versions)), h("td", { class: "reason", title: reason }, reason),
        h("td", {}, prCell));
    });
    if (!rows.length) rows.push(h("tr", { class: "none" }, h("td", { colspan: DECISION_COLUMNS }, "No decisions yet.")));
    table.tBodies[0].replaceChildren(...rows);
  }

  function setConnection(problem) {
    const banner = document.getElementById("connection");
    banner.hidden = !problem;
    banner.title = problem || "";
    document.body.dataset.connection = problem ? "lost" : "ok";
  }

  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, body };
  }

  async function readiness() {
    const pill = document.getElementById("readiness");
    try {
      const { ok, body } = await getJSON("/readyz");
      const failing = Object.entries(body.checks || {}).filter(([, v]) => v !== "ok");
      pill.dataset.state = ok ? "ready" : "not-ready";
      pill.textContent = ok ? "worker ready" : `worker not ready: ${failing.map(([k, v]) => `${k} ${v}`).join(", ")}`;
      pill.title = Object.entries(body.checks || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
    } catch {
      pill.dataset.state = "down";
      pill.textContent = "worker unreachable";
    }
  }

  async function poll() {
    if (running) return;
    running = true;
    try {
      const [status, decisions] = await Promise.all([getJSON("/api/status"),
        getJSON(`/api/decisions?limit=${DECISIONS}`), readiness()]);
      const problem = document.getElementById("problem");
      const failed = [status, decisions].find((r) => !r.ok);
      problem.hidden = !failed;
      problem.textContent = failed ? failed.body.error || `HTTP ${failed.status}` : "";
      if (status.ok) renderMatrix(status.body);
      if (decisions.ok) renderDecisions(decisions.body.decisions);
      lastOk = Date.now();
      setConnection(null);
    } catch (error) {
      setConnection(String(error));
    } finally {
      running = false;
      tick();
      schedule();
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = document.visibilityState === "hidden" ? null : setTimeout(poll, POLL_MS);
  }

  function tick() {
    document.getElementById("updated").textContent = `updated ${ago((Date.now() - lastOk) / 1000)} ago`;
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") poll();
    else schedule();
  });
  setInterval(tick, 1000);
  poll();
})();
