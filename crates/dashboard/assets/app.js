// heaplens dashboard page. Hand-written, no dependencies, no network beyond this dashboard.
//
// Every string shown comes from the heap being inspected (type names, labels, reprs), so it is
// attacker-controlled: the DOM is built with createElement and textContent only. Images (the
// growth chart, path pictures) are fetched as text and shown through data: URLs in <img>, where
// SVG cannot run script. Routing is by the URL's hash: #/, #/type/<name>/<page>[/<group>], #/object/<id>,
// #/diff.
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  // A token in the address is taken out of it at once (and out of the history entry), so it
  // is not left in copied links, bookmarks or a later request's logs: the server set it in an
  // HttpOnly cookie that reloads and API calls carry. It is still sent as a header from this
  // page, for a browser that refuses cookies.
  const token = params.get("token");
  if (token !== null) {
    params.delete("token");
    const rest = params.toString();
    window.history.replaceState(window.history.state, "",
      window.location.pathname + (rest ? "?" + rest : "") + window.location.hash);
  }
  const main = document.getElementById("main");
  let info = null;

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h["X-HeapLens-Token"] = token;
    return h;
  }

  async function getJSON(url) {
    const r = await fetch(url, { headers: headers(), credentials: "same-origin" });
    const body = await r.json().catch(() => ({ error: "not JSON (status " + r.status + ")" }));
    if (!r.ok) throw new Error(body.error || ("status " + r.status));
    return body;
  }

  async function svgImage(url, cls) {
    const r = await fetch(url, { headers: headers(), credentials: "same-origin" });
    if (!r.ok) return null;
    const text = await r.text();
    const img = document.createElement("img");
    img.className = cls;
    img.alt = cls;
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(text);
    return img;
  }

  // el("td", {class: "num"}, "text", childNode, ...): text children become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "href") e.setAttribute("href", v);
      else if (k === "onclick") e.addEventListener("click", v);
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function show(...nodes) {
    main.replaceChildren(...nodes.filter((n) => n));
  }

  // Each page the address asks for is one generation: a page still waiting for its answers when
  // the address changes (a click, the back button, a slow picture) must not replace the newer
  // page when they come.
  let generation = 0;

  function showIfCurrent(mine, ...nodes) {
    if (mine === generation) show(...nodes);
  }

  function fail(err) {
    show(el("p", { class: "error" }, "Error: " + (err && err.message ? err.message : err)));
  }

  function count(n) {
    return n === null || n === undefined ? "" : Number(n).toLocaleString("en");
  }

  function bytes(n) {
    if (n === null || n === undefined) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = Number(n), u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return u === 0 ? v + " B" : v.toFixed(1) + " " + units[u];
  }

  function sparkline(values) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 120 24");
    if (!values || values.length < 2) return svg;
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const pts = values.map((v, i) =>
      (i * 120 / (values.length - 1)).toFixed(1) + "," + (22 - (v - lo) * 20 / span).toFixed(1));
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(line);
    return svg;
  }

  // #/type/<name>/<page>, or #/type/<name>/<page>/<group> for the instances one holder keeps.
  function typeLink(name, page, group) {
    return "#/type/" + encodeURIComponent(name) + "/" + (page || 1) +
      (group !== undefined && group !== null ? "/" + Number(group) : "");
  }

  function objectLink(id, text) {
    return el("a", { href: "#/object/" + Number(id) }, text);
  }

  // A table in a box of its own that scrolls sideways when the window is narrower than the
  // table (a phone): the page itself never does.
  function table(head, rows) {
    const thead = el("tr", {}, ...head.map(([t, cls]) => el("th", cls ? { class: cls } : {}, t)));
    return el("div", { class: "table" }, el("table", {}, el("thead", {}, thead), el("tbody", {}, ...rows)));
  }

  function reportParts(r) {
    const parts = [el("h2", {}, "Biggest retainers"),
      el("p", { class: "note" }, "Retained size: what freeing the object would free.")];
    parts.push(table([["retained", "num"], ["objects", "num"], ["object"], ["held by"]],
      r.retainers.map((o) => el("tr", {},
        el("td", { class: "num" }, bytes(o.retained_size)),
        el("td", { class: "num" }, count(o.retained_count)),
        el("td", { class: "name" }, objectLink(o.id, o.type + (o.name ? " " + o.name : ""))),
        el("td", { class: "name" }, o.path + (o.allocated_at ? " (allocated at " + o.allocated_at + ")" : ""))))));
    const g = r.garbage;
    if (!g.objects) {
      parts.push(el("p", {}, "No unreachable objects (no cyclic garbage waiting for the collector)."));
    } else {
      parts.push(el("p", { class: "warn" }, "Unreachable: " + count(g.objects) + " objects, " +
        bytes(g.bytes) + " of cyclic garbage the collector has not freed (is gc disabled?)"));
      parts.push(el("ul", {}, ...g.entries.map((o) => el("li", {},
        objectLink(o.id, o.type), " retains " + bytes(o.retained_size)))));
    }
    return parts;
  }

  // The first screen's answer: is something leaking, what, what holds it, and which endpoint's
  // requests leave it behind, each a link.
  function verdictParts(v) {
    const parts = [el("p", { class: "verdict " + (v.state === "leaking" ? "warn" : "note") }, v.text)];
    const top = v.top;
    if (!top) return parts;
    const items = [el("li", {}, "Growing: ", el("a", { href: typeLink(top.type) }, top.type),
      " (" + count(top.count) + " now)")];
    if (top.held_by) {
      const h = top.held_by;
      items.push(el("li", {}, "Held by: ",
        h.holder ? objectLink(h.holder.id, h.path) : h.path,
        " (" + count(h.count) + " of them, e.g. ", objectLink(h.sample, h.sample_label || "#" + h.sample), ")"));
    } else if (info && info.can_take_snapshot) {
      items.push(el("li", { class: "note" }, "Take a snapshot to see what holds them."));
    }
    if (top.endpoint) {
      const toTable = (e) => {
        e.preventDefault();
        const table = document.getElementById("endpoints");
        if (table) table.scrollIntoView();
      };
      items.push(el("li", {}, "Left behind by: ",
        el("a", { href: "#/", onclick: toTable, class: "endpoint" }, top.endpoint.name),
        " (" + top.endpoint.per_request.toFixed(1) + " per request)"));
    }
    parts.push(el("ul", { class: "verdict" }, ...items));
    return parts;
  }

  // The retaining path of what holds the top grower, drawn, under the verdict.
  async function verdictPicture(v) {
    const h = v && v.top && v.top.held_by;
    if (!h || !h.holder) return null;
    return svgImage("api/objects/" + Number(h.holder.id) + "/path.svg", "picture verdict-path");
  }

  async function overview() {
    const mine = generation;
    const o = await getJSON("api/overview");
    const parts = [el("h1", {}, "Overview")];
    if (o.verdict) {
      parts.push(...verdictParts(o.verdict));
      const picture = await verdictPicture(o.verdict);
      if (picture) parts.push(picture);
    }
    const m = o.memory;
    if (m) {
      parts.push(el("p", {}, "RSS " + bytes(m.rss) + (m.peak_rss ? " (peak " + bytes(m.peak_rss) + ")" : "") +
        ", Python objects " + count(m.python_objects) + " taking " + bytes(m.python_bytes) +
        ", " + count(m.samples) + " samples"));
      if (m.native) parts.push(el("p", { class: "warn" }, m.native.message + ": RSS " +
        bytes(m.native.rss_from) + " → " + bytes(m.native.rss_to) + ", Python objects " +
        bytes(m.native.bytes_from) + " → " + bytes(m.native.bytes_to) + "."));
      const chart = await svgImage("api/chart.svg", "chart");
      if (chart) parts.push(chart);
    } else {
      parts.push(el("p", { class: "note" }, "No sample history: the table is the snapshot's census."));
    }
    if (o.snapshot) {
      parts.push(el("p", {}, "Snapshot: " + count(o.snapshot.objects) + " objects, " +
        bytes(o.snapshot.bytes) + ", " + count(o.snapshot.references) + " references."));
    }
    // A snapshot without a history (a file, an attached process): its report, as
    // `heaplens report` prints it, comes first.
    if (!m && o.snapshot) parts.push(...reportParts(await getJSON("api/report")));
    const ep = await getJSON("api/endpoints");
    if (ep.tracing) parts.push(...endpointParts(ep));
    parts.push(el("h2", {}, "Types, by " + o.sorted_by));
    const rows = o.types.map((t) => {
      const tr = t.trend;
      return el("tr", {},
        el("td", { class: "name" }, el("a", { href: typeLink(t.name) }, t.name)),
        el("td", { class: "num" }, count(t.count)),
        el("td", { class: "num" }, bytes(t.bytes)),
        el("td", {}, tr ? sparkline(tr.sparkline) : ""),
        el("td", { class: "num" }, tr ? count(tr.min) + " – " + count(tr.max) : ""),
        el("td", { class: "num" + (tr && tr.steady ? " steady" : "") },
          tr ? (tr.per_hour >= 0 ? "+" : "") + count(Math.round(tr.per_hour)) + "/h" +
            (tr.steady ? " steady" : "") : ""));
    });
    parts.push(table([["type"], ["count", "num"], ["bytes", "num"], ["over time"],
      ["min – max", "num"], ["growth", "num"]], rows));
    if (o.more) parts.push(el("p", { class: "note" }, count(o.more) + " more types not shown."));
    showIfCurrent(mine, ...parts);
  }

  // What each endpoint's traced requests left behind, most per request first.
  function endpointParts(ep) {
    const parts = [el("h2", { id: "endpoints" }, "Endpoints: what a request leaves behind")];
    if (!ep.endpoints.length) {
      parts.push(el("p", { class: "note" }, "No request traced yet."));
      return parts;
    }
    const perRequest = (n) => (n >= 0 ? "+" : "") + (Math.round(n * 100) / 100).toLocaleString("en");
    const rows = ep.endpoints.map((e) => el("tr", {},
      el("td", { class: "endpoint" }, e.endpoint),
      el("td", { class: "num" }, count(e.requests)),
      el("td", { class: "num" }, count(e.traced) + (e.overlapped ? " (" + count(e.overlapped) + " overlapped)" : "")),
      el("td", { class: "num" + (e.few_traces ? " note" : e.objects_per_request >= 1 ? " steady" : "") },
        e.measured ? (e.approximate ? "≈ " : "") + perRequest(e.objects_per_request) +
          (e.few_traces ? " (" + count(e.measured) + (e.measured === 1 ? " trace)" : " traces)") : "") : ""),
      el("td", { class: "name" }, ...e.types.map((t, i) => el("span", {},
        (i ? ", " : ""), el("a", { href: typeLink(t.name) }, t.name), " " + perRequest(t.per_request)))),
      el("td", { class: "name" }, heldByCell(e.held_by))));
    parts.push(table([["endpoint"], ["requests", "num"], ["traced", "num"],
      ["objects left per request", "num"], ["types left per request"], ["held by"]], rows));
    parts.push(el("p", { class: "note" }, "A traced request is measured by a census when it " +
      "starts and another when the next request arrives; the figures are trimmed means over " +
      "each endpoint's most recent traces. Overlapped traces ran beside other requests and " +
      "count only while an endpoint has no clean trace (≈). Endpoints with few traces come " +
      "last: a first request down a code path warms caches." +
      (ep.more ? " " + count(ep.more) + " more endpoints not shown." : "")));
    return parts;
  }

  // Where what an endpoint leaves behind is held: the holder's path, a link to the holder (whose
  // page draws the path), once there is a snapshot.
  function heldByCell(h) {
    if (!h) return info && info.can_take_snapshot && !info.has_snapshot ?
      el("span", { class: "note" }, "take a snapshot to see") : "";
    return el("span", {}, h.holder !== null ? objectLink(h.holder, h.path) : h.path,
      " (" + count(h.count) + " " + h.type + ")");
  }

  function objectRow(x) {
    return el("tr", {},
      el("td", {}, objectLink(x.id, "#" + x.id)),
      el("td", { class: "name" }, x.repr !== null ? x.repr : (x.name || x.label)),
      el("td", { class: "num" }, x.address || ""),
      el("td", { class: "num" }, bytes(x.size)),
      el("td", { class: "num" }, bytes(x.retained_size)));
  }

  async function typePage(name, page, group) {
    const mine = generation;
    // The name goes in the query: a '/' in it would be decoded by the server in the path.
    const t = await getJSON("api/types?name=" + encodeURIComponent(name) + "&page=" + page +
      (group !== null ? "&group=" + group : ""));
    const parts = [el("h1", {}, t.name),
      el("p", {}, count(t.count) + " objects" + (t.bytes !== null ? ", " + bytes(t.bytes) : ""))];
    if (t.history) parts.push(el("p", {}, "Count over time: ", sparkline(t.history)));
    if (t.note) parts.push(el("p", { class: "note" }, t.note));
    if (t.held_by && t.held_by.length) {
      parts.push(el("h2", {}, "Held by"));
      parts.push(table([["instances", "num"], ["retained", "num"], ["with what they hold", "num"],
        ["holder"], ["e.g."]],
        t.held_by.map((h) => el("tr", { class: h.group === group ? "chosen" : "" },
          el("td", { class: "num" }, el("a", { href: typeLink(name, 1, h.group), class: "group" },
            count(h.instances))),
          el("td", { class: "num" }, bytes(h.retained_size)),
          el("td", { class: "num" }, count(h.objects) + " objects, " + bytes(h.bytes)),
          el("td", { class: "name" }, h.holder ? objectLink(h.holder.id, h.path) : h.path),
          el("td", { class: "name" }, objectLink(h.sample, h.sample_label || "#" + h.sample))))));
      parts.push(el("p", { class: "note" }, "Retained: what freeing a holder's instances would " +
        "free, each byte counted once. A count lists that holder's instances."));
    }
    if (t.group) {
      parts.push(el("h2", {}, "Instances held by " + t.group.path + " (" + count(t.listed) + ")"));
      parts.push(el("p", {}, el("a", { href: typeLink(name, 1) }, "All " + count(t.count) + " instances")));
    } else if (t.held_by && t.held_by.length) {
      parts.push(el("h2", {}, "Instances"));
    }
    parts.push(table([["id"], ["repr"], ["address", "num"], ["size", "num"], ["retained", "num"]],
      t.instances.map(objectRow)));
    const pager = el("p", { class: "pager" }, "Page " + t.page + " of " + Math.max(t.pages, 1) + " ");
    if (t.page > 1) pager.appendChild(el("a", { href: typeLink(name, t.page - 1, group) }, "previous"));
    if (t.page < t.pages) pager.appendChild(el("a", { href: typeLink(name, t.page + 1, group) }, "next"));
    parts.push(pager);
    showIfCurrent(mine, ...parts);
  }

  function refTable(refs) {
    return table([["object"], ["type"], ["how"]], refs.map((r) => el("tr", {},
      el("td", {}, objectLink(r.id, "#" + r.id)),
      el("td", { class: "name" }, r.label),
      el("td", {}, (r.via || r.edge) + (r.weak ? " (weak)" : "")))));
  }

  async function objectPage(id) {
    const mine = generation;
    const o = await getJSON("api/objects/" + Number(id));
    const parts = [el("h1", {}, o.label + (o.address ? " at " + o.address : "")),
      el("p", {}, "size " + bytes(o.size) + ", retains " + bytes(o.retained_size) + " in " +
        count(o.retained_count) + " objects" + (o.flags.length ? "; " + o.flags.join(", ") : ""))];
    if (o.repr !== null) parts.push(el("p", { class: "name" }, o.repr));
    parts.push(el("h2", {}, "Retaining path"));
    if (o.path) {
      parts.push(el("p", { class: "path" }, o.path.text));
      const steps = el("ol", {}, ...o.path.steps.map((s) =>
        el("li", {}, s.via + " → ", objectLink(s.id, s.label))));
      parts.push(steps);
      if (o.path.elided) parts.push(el("p", { class: "note" }, count(o.path.elided) + " steps not shown."));
      const pic = await svgImage("api/objects/" + Number(id) + "/path.svg", "picture");
      if (pic) parts.push(pic);
    } else {
      parts.push(el("p", { class: "note" }, "No root reaches this object."));
    }
    parts.push(el("h2", {}, "Referrers (what keeps it alive)"), refTable(o.referrers));
    if (o.more_referrers) parts.push(el("p", { class: "note" }, count(o.more_referrers) + " more."));
    parts.push(el("h2", {}, "Referents (what it refers to)"), refTable(o.referents));
    if (o.more_referents) parts.push(el("p", { class: "note" }, count(o.more_referents) + " more."));
    showIfCurrent(mine, ...parts);
  }

  function diffParts(d) {
    if (d.error) return [el("h1", {}, "Compared with the previous snapshot"), el("p", { class: "note" }, d.error)];
    const parts = [el("h1", {}, "Compared with the previous snapshot"),
      el("p", {}, count(d.new_objects) + " new objects, " + bytes(d.new_bytes) + ".")];
    parts.push(el("h2", {}, "Leak suspects"));
    if (!d.suspects.length) parts.push(el("p", { class: "note" }, "None."));
    for (const s of d.suspects) {
      parts.push(el("p", {}, s.entry_type + " ×" + count(s.entries) + " (+" + count(s.objects) +
        " objects, +" + bytes(s.bytes) + ") ", objectLink(s.sample_id, "an example")));
      if (s.holder_path) parts.push(el("p", { class: "path" }, "held by: " + s.holder_path));
      if (s.allocated_at && s.allocated_at.length) {
        parts.push(el("p", { class: "path allocated" },
          "allocated at (most recent call last):\n" + s.allocated_at.join("\n")));
      }
    }
    parts.push(el("h2", {}, "Report"), el("pre", {}, d.text));
    return parts;
  }

  async function diffPage() {
    const mine = generation;
    showIfCurrent(mine, ...diffParts(await getJSON("api/diff")));
  }

  async function takeSnapshot() {
    show(el("p", { class: "note" }, "Taking a snapshot…"));
    const r = await fetch("api/snapshot", { method: "POST", credentials: "same-origin",
      headers: headers({ "X-HeapLens": "1" }) });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) return fail(new Error(body.error || ("status " + r.status)));
    await header();
    // The result at its own address: the comparison, or the overview when there is nothing to
    // compare with. Setting the hash the page already has fires no hashchange: route at once.
    const target = body.diff ? "#/diff" : "#/";
    if (window.location.hash === target) route();
    else window.location.hash = target;
  }

  async function download(name) {
    const r = await fetch("download/" + name, { headers: headers(), credentials: "same-origin" });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      return fail(new Error(body.error || ("status " + r.status)));
    }
    const url = URL.createObjectURL(await r.blob());
    const a = el("a", { href: url, download: name });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  async function header() {
    info = await getJSON("api/info");
    document.getElementById("process").textContent = info.program + " (pid " + info.pid + ", " +
      (info.live ? "live" : "snapshot file, read-only") + ", Python " +
      String(info.python_version).split(" ")[0] + ")" + (info.multiprocess ? " — worker pid " +
      info.pid + " of a multi-process server: each worker has a heap of its own, and a reload " +
      "may reach another" : "");
    const nav = document.getElementById("actions");
    nav.replaceChildren();
    if (info.can_take_snapshot) nav.appendChild(el("button", { onclick: () => takeSnapshot().catch(fail) }, "Take a snapshot"));
    if (info.has_previous) nav.appendChild(el("a", { href: "#/diff" }, "Compare"));
    if (info.allow_downloads && info.has_snapshot) {
      nav.appendChild(el("button", { onclick: () => download("snapshot.hlsnap").catch(fail) }, "Download .hlsnap"));
      nav.appendChild(el("button", { onclick: () => download("snapshot.heapsnapshot").catch(fail) }, "Download for Chrome"));
    }
  }

  function route() {
    const mine = ++generation;
    const hash = window.location.hash.replace(/^#\/?/, "");
    const parts = hash.split("/");
    let page;
    try {
      if (parts[0] === "type" && parts.length >= 2) {
        const group = /^[0-9]+$/.test(parts[3] || "") ? Number(parts[3]) : null;
        page = typePage(decodeURIComponent(parts[1]), Math.max(1, parseInt(parts[2], 10) || 1), group);
      } else if (parts[0] === "object" && /^[0-9]+$/.test(parts[1] || "")) {
        page = objectPage(parts[1]);
      } else if (parts[0] === "diff") {
        page = diffPage();
      } else {
        page = overview();
      }
    } catch (e) {
      return fail(e);
    }
    page.catch((e) => { if (mine === generation) fail(e); });
  }

  window.addEventListener("hashchange", route);
  header().then(route, fail);
})();
