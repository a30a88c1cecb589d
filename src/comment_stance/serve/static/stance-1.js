/* The review desk and the targets page of `stance serve`. Plain JavaScript, no build step, no
   network access beyond this server: every view is drawn from the page's JSON twin. */
"use strict";

(function () {
  var state = { data: null, selected: 0, busy: false };
  var $ = function (id) { return document.getElementById(id); };

  function key() { try { return localStorage.getItem("stance-api-key") || ""; } catch (e) { return ""; } }

  function say(text, isError) {
    var box = $("message");
    box.textContent = text;
    box.className = isError ? "error" : "";
  }

  function api(path, options) {
    options = options || {};
    options.headers = options.headers || {};
    if (key()) { options.headers["X-API-Key"] = key(); }
    return fetch(path, options).then(function (response) {
      return response.text().then(function (body) {
        var data = null;
        try { data = body ? JSON.parse(body) : null; } catch (e) { data = body; }
        if (!response.ok) {
          if (response.status === 401) { showKey(); }
          var err = data && data.error ? data.error : { message: response.status + " " + response.statusText };
          throw new Error(err.message + (err.hint ? " (" + err.hint + ")" : ""));
        }
        return data;
      });
    });
  }

  function showKey() {
    var box = document.querySelector(".key");
    if (!box) { return; }
    box.hidden = false;
    var input = $("api-key");
    input.value = key();
    input.onchange = function () {
      try { localStorage.setItem("stance-api-key", input.value.trim()); } catch (e) { /* private mode */ }
      refresh();
    };
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; } else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function pct(x) { return x === null || x === undefined ? "–" : Math.round(x * 100) + "%"; }

  /* -- the review desk ------------------------------------------------------------------------ */
  function filters() {
    return { status: $("f-status").value, article: $("f-article").value, label: $("f-label").value };
  }

  function query(params) {
    var parts = [];
    Object.keys(params).forEach(function (name) {
      if (params[name]) { parts.push(encodeURIComponent(name) + "=" + encodeURIComponent(params[name])); }
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  function refresh() {
    var q = query(filters());
    $("json-twin").setAttribute("href", "review.json" + q);
    return api("review.json" + q).then(function (data) {
      var keepId = current() ? current().id : null;
      state.data = data;
      var items = data.queue.items;
      var at = keepId === null ? -1 : items.findIndex(function (it) { return it.id === keepId; });
      state.selected = at >= 0 ? at : Math.min(state.selected, Math.max(items.length - 1, 0));
      draw();
    }).catch(function (e) { say(e.message, true); });
  }

  function current() {
    if (!state.data) { return null; }
    return state.data.queue.items[state.selected] || null;
  }

  function fillSelect(select, values, labelOf) {
    var chosen = select.value;
    var known = {};
    Array.prototype.forEach.call(select.options, function (o) { known[o.value] = true; });
    values.forEach(function (value) {
      if (!known[value]) { select.appendChild(el("option", { value: value, text: labelOf(value) })); }
    });
    select.value = chosen;
  }

  function draw() {
    var data = state.data;
    var labels = data.labels;
    fillSelect($("f-label"), labels, function (l) { return l; });
    var titles = {};
    data.articles.forEach(function (a) { if (a.article_id !== null) { titles[a.article_id] = a.article || a.article_id; } });
    fillSelect($("f-article"), Object.keys(titles), function (id) { return titles[id]; });
    $("label-keys").textContent = labels.map(function (l, i) { return (i + 1) + " " + l; }).join(" · ");
    $("queue-total").textContent = "(" + data.queue.total + ")";
    $("export").setAttribute("href", "v1/export");

    var list = $("queue");
    list.textContent = "";
    data.queue.items.forEach(function (item, i) { list.appendChild(card(item, i, labels)); });
    if (!data.queue.items.length) {
      list.appendChild(el("li", { class: "empty", text: "Nothing to review with these filters." }));
    }
    drawCounts(data);
    var errs = $("errors");
    errs.textContent = "";
    $("error-total").textContent = "(" + data.errors.total + ")";
    data.errors.items.forEach(function (row) {
      errs.appendChild(el("li", { text: (row.source ? row.source + ": " : "") + row.error }));
    });
    var selected = list.querySelector(".selected");
    if (selected && selected.scrollIntoView) { selected.scrollIntoView({ block: "nearest" }); }
  }

  function card(item, i, labels) {
    var chosen = item.decision || item.label;
    var buttons = labels.map(function (label, n) {
      var b = el("button", { type: "button", "data-label": label, class: label === chosen ? "chosen" : "",
                             title: "key " + (n + 1), text: (n + 1) + " " + label });
      b.onclick = function (ev) { ev.stopPropagation(); state.selected = i; decide(label); };
      return b;
    });
    var accept = el("button", { type: "button", class: "accept", title: "Enter", text: "Accept ⏎" });
    accept.onclick = function (ev) { ev.stopPropagation(); state.selected = i; decide(null); };
    var probs = labels.map(function (label) {
      var p = item.probabilities ? item.probabilities[label] : null;
      return el("span", { class: "prob", text: label + " " + pct(p) });
    });
    var flags = [];
    if (item.review_reason) { flags.push(el("span", { class: "flag", text: item.review_reason })); }
    if (item.target_resolved === false) { flags.push(el("span", { class: "flag", text: "no target" })); }
    if (item.status !== "pending") { flags.push(el("span", { class: "flag done", text: item.status })); }
    var li = el("li", { class: "item" + (i === state.selected ? " selected" : ""), "data-id": item.id }, [
      el("div", { class: "context" }, [
        el("span", { class: "article", text: item.article || item.article_id || "no article" }),
        el("span", { class: "target", text: item.target && item.target !== item.article ? "→ " + item.target : "" })
      ]),
      item.parent_text ? el("blockquote", { class: "parent", text: item.parent_text }) : null,
      el("p", { class: "text", text: item.text || "" }),
      el("div", { class: "score" }, [
        el("strong", { class: "label", text: item.label || "–" }),
        el("span", { class: "confidence", text: " " + pct(item.confidence) })
      ].concat(probs).concat(flags)),
      el("div", { class: "actions" }, buttons.concat([accept]))
    ]);
    li.onclick = function () { state.selected = i; draw(); };
    return li;
  }

  function drawCounts(data) {
    var head = $("counts").querySelector("thead");
    var body = $("counts").querySelector("tbody");
    head.textContent = "";
    body.textContent = "";
    head.appendChild(el("tr", {}, [el("th", { text: "Article" })].concat(
      data.labels.map(function (l) { return el("th", { text: l }); }),
      [el("th", { text: "pending" }), el("th", { text: "errors" })])));
    data.articles.forEach(function (a) {
      body.appendChild(el("tr", { "data-article": a.article_id === null ? "" : a.article_id }, [
        el("td", { text: a.article_id === null ? "(no article id)" : (a.article || a.article_id) })].concat(
        data.labels.map(function (l) { return el("td", { class: "n", "data-label": l, text: String(a.stances[l] || 0) }); }),
        [el("td", { class: "n", text: String(a.pending) }), el("td", { class: "n", text: String(a.errors) })])));
    });
  }

  function decide(label) {
    var item = current();
    if (!item || state.busy) { return; }
    if (item.status === "error") { say("This row could not be scored: " + item.error, true); return; }
    state.busy = true;
    var body = { id: item.id };
    if (label !== null) { body.label = label; }
    api("v1/decisions", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (saved) {
        say("Saved: " + saved.id + " → " + saved.decision + " (" + saved.status + ")");
        if (filters().status === "pending") {
          state.data.queue.items.splice(state.selected, 1);
          state.data.queue.total -= 1;
          if (state.selected >= state.data.queue.items.length) { state.selected = Math.max(state.data.queue.items.length - 1, 0); }
        } else {
          state.data.queue.items[state.selected] = saved;
        }
        draw();
        state.busy = false;  // saved: the next key acts at once, not after the re-sync below
        return refresh();
      })
      .catch(function (e) { say(e.message, true); })
      .then(function () { state.busy = false; });
  }

  function onKey(ev) {
    if (ev.target && /^(INPUT|SELECT|TEXTAREA|BUTTON|A)$/.test(ev.target.tagName)) { return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || !state.data) { return; }
    var items = state.data.queue.items;
    if (ev.key === "j" || ev.key === "ArrowDown") {
      state.selected = Math.min(state.selected + 1, Math.max(items.length - 1, 0)); draw();
    } else if (ev.key === "k" || ev.key === "ArrowUp") {
      state.selected = Math.max(state.selected - 1, 0); draw();
    } else if (ev.key === "Enter") {
      ev.preventDefault(); decide(null);
    } else if (/^[1-9]$/.test(ev.key)) {
      var label = state.data.labels[Number(ev.key) - 1];
      if (label) { decide(label); }
    } else {
      return;
    }
    ev.preventDefault();
  }

  function upload(ev) {
    ev.preventDefault();
    var file = $("upload-file").files[0];
    if (!file) { say("Choose a file first (CSV, TSV, JSONL, Parquet, Disqus, WordPress, Reddit or an article page).", true); return; }
    say("Uploading " + file.name + "…");
    api("v1/upload?filename=" + encodeURIComponent(file.name),
        { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file })
      .then(function (r) {
        say("Queued " + r.scored + " of " + r.rows + " comments from " + r.file + " (" + r.format + ")" +
            (r.errors ? "; " + r.errors + " rows could not be scored (listed on the right)" : "") + ".");
        $("upload").reset();
        return refresh();
      })
      .catch(function (e) { say(e.message, true); });
  }

  function exportDecisions(ev) {
    if (!key()) { return; } /* the plain link downloads; with a key the request needs its header */
    ev.preventDefault();
    fetch("v1/export", { headers: { "X-API-Key": key() } }).then(function (r) {
      if (!r.ok) { throw new Error("export failed: " + r.status); }
      return r.blob();
    }).then(function (blob) {
      var a = el("a", { href: URL.createObjectURL(blob), download: "stance-decisions.jsonl" });
      document.body.appendChild(a); a.click(); a.remove();
    }).catch(function (e) { say(e.message, true); });
  }

  function startReview() {
    ["f-status", "f-article", "f-label"].forEach(function (id) {
      $(id).onchange = function () { state.selected = 0; refresh(); };
    });
    $("upload").onsubmit = upload;
    $("export").onclick = exportDecisions;
    document.addEventListener("keydown", onKey);
    if (key()) { showKey(); }
    refresh();
    setInterval(function () { if (!state.busy && document.visibilityState !== "hidden") { refresh(); } }, 3000);
  }

  /* -- the targets page ----------------------------------------------------------------------- */
  function targetRow(source, target) {
    var remove = el("button", { type: "button", class: "remove", text: "Remove" });
    var row = el("tr", {}, [
      el("td", {}, [el("input", { class: "t-key", value: source || "", "aria-label": "article id or title" })]),
      el("td", {}, [el("input", { class: "t-target", value: target || "", "aria-label": "target" })]),
      el("td", {}, [remove])
    ]);
    remove.onclick = function () { row.remove(); };
    return row;
  }

  function drawTargets(data) {
    var body = $("targets").querySelector("tbody");
    body.textContent = "";
    Object.keys(data.mapping).forEach(function (k) { body.appendChild(targetRow(k, data.mapping[k])); });
    $("targets-file").textContent = data.file ? "Saved in " + data.file + "." : "Kept in memory only (start the server with --targets FILE to keep it).";
  }

  function startTargets() {
    if (key()) { showKey(); }
    api("targets.json").then(drawTargets).catch(function (e) { say(e.message, true); });
    $("add-row").onclick = function () { $("targets").querySelector("tbody").appendChild(targetRow("", "")); };
    $("save").onclick = function () {
      var mapping = {};
      Array.prototype.forEach.call($("targets").querySelectorAll("tbody tr"), function (row) {
        var k = row.querySelector(".t-key").value.trim();
        var t = row.querySelector(".t-target").value.trim();
        if (k || t) { mapping[k] = t; }
      });
      api("v1/targets", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(mapping) })
        .then(function (data) { drawTargets(data); say("Saved " + Object.keys(data.mapping).length + " entries."); })
        .catch(function (e) { say(e.message, true); });
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.body.getAttribute("data-page");
    if (page === "review") { startReview(); } else if (page === "targets") { startTargets(); }
  });
})();
