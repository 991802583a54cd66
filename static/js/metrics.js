/* Metrics explorer and comparison overlay (issue 13a), drawn with the vendored uPlot.
 *
 * The server reads the run's TensorBoard files and sends each series downsampled (at most ~2,000
 * points, extremes kept): /api/runs/<id>/metrics (tags) and /api/runs/<id>/metrics/series?tag=.
 * Here: choose tags, EMA smoothing, log scale (values <= 0 left out and counted on the chart; a
 * series with nothing above 0 stays linear and says why), x by frames or wall time, drag to zoom
 * (double-click resets), values on hover (uPlot's legend). While a run trains, its chart is
 * fetched again every few seconds and grows; a zoomed chart keeps its zoom. While the session is
 * active, the explorer follows it to the skill training now (unless the person chose a run: then
 * it offers it).
 * No inline script (CSP): pages mark their widgets with data attributes; the comparison's runs come
 * from a json_script element.
 */
(function () {
  "use strict";

  var POLL_MS = 3000;
  var TERMINAL = { completed: 1, failed: 1, cancelled: 1, skipped: 1, interrupted: 1 };
  var COLOURS = ["#4f46e5", "#dc2626", "#059669", "#d97706", "#0891b2", "#9333ea"];
  var DEFAULT_TAGS = ["rewards/step", "episode_lengths/step"];

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { throw new Error(url + ": " + r.status); }
      return r.json();
    });
  }

  function seriesUrl(base, tag) {
    return base + "?tag=" + encodeURIComponent(tag);
  }

  // Exponential moving average, TensorBoard's way (debiased), skipping nulls.
  function smooth(values, weight) {
    if (!weight) { return values; }
    var out = new Array(values.length), last = 0, n = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || !isFinite(v)) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * v;
      n++;
      out[i] = last / (1 - Math.pow(weight, n));
    }
    return out;
  }

  // A log axis has no place for values <= 0: they are left out and counted, so the chart can say so.
  function logSafe(values) {
    var hidden = 0, shown = 0;
    var out = values.map(function (v) {
      if (v === null || v === undefined || !isFinite(v)) { return null; }
      if (v > 0) { shown++; return v; }
      hidden++;
      return null;
    });
    return { values: out, hidden: hidden, shown: shown };
  }

  function plural(n, one, many) {
    return n.toLocaleString() + " " + (n === 1 ? one : many);
  }

  // The chart's own line under its title: what the log scale left out, or why it is not used. Never
  // a blank chart without a word.
  function setNote(box, text) {
    var note = box.querySelector(":scope > [data-mx-note]");
    if (!text) { if (note) { note.remove(); } return; }
    if (!note) {
      note = document.createElement("p");
      note.className = "mx-note small";
      note.setAttribute("data-mx-note", "");
      note.setAttribute("role", "note");
    }
    box.appendChild(note);  // under its own chart, never read as the note of the chart above
    note.textContent = text;
  }

  // Series ready for the chart under the chosen scale: with log scale, each series without its
  // values <= 0; if that would leave nothing at all, the chart stays linear. `names` label the note.
  function forScale(valueLists, opts, names) {
    if (!opts.log) { return { lists: valueLists, opts: opts, note: "" }; }
    var safe = valueLists.map(logSafe);
    var hidden = safe.reduce(function (n, s) { return n + s.hidden; }, 0);
    var shown = safe.reduce(function (n, s) { return n + s.shown; }, 0);
    if (!hidden) { return { lists: safe.map(function (s) { return s.values; }), opts: opts, note: "" }; }
    if (!shown) {
      return { lists: valueLists, opts: Object.assign({}, opts, { log: false }),
        note: "Log scale is off for this chart: all its " + plural(hidden, "value is", "values are") + " <= 0 (linear scale shown)." };
    }
    var parts = names && names.length > 1 ? safe.map(function (s, i) { return s.hidden ? names[i] + ": " + s.hidden : ""; }).filter(Boolean) : [];
    return { lists: safe.map(function (s) { return s.values; }), opts: opts,
      note: "log scale hides " + plural(hidden, "value", "values") + " <= 0" + (parts.length ? " (" + parts.join(", ") + ")" : "") + "." };
  }

  function controls(root) {
    var smoothInput = root.querySelector("[data-mx-smooth]");
    return {
      x: (root.querySelector("[data-mx-x]") || {}).value || "step",
      smooth: smoothInput ? parseFloat(smoothInput.value) || 0 : 0,
      log: !!(root.querySelector("[data-mx-log]") || {}).checked,
    };
  }

  // A log axis's ticks span decades: 0.001 must not be rounded to "0", which a log axis cannot hold.
  function logTicks(u, splits) {
    return splits.map(function (v) {
      if (v === null || v === undefined) { return ""; }
      var size = Math.abs(v);
      return size !== 0 && (size < 0.01 || size >= 1e5) ? v.toExponential(0) : String(Number(v.toPrecision(3)));
    });
  }

  function chartOptions(width, title, labels, opts) {
    var series = [{ label: opts.xLabel || (opts.x === "wall_time" ? "time" : "frames"), value: opts.x === "wall_time" ? undefined : function (u, v) { return v === null ? "—" : v.toLocaleString(); } }];
    labels.forEach(function (label, i) {
      series.push({ label: label, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: true,
        value: function (u, v) { return v === null || v === undefined ? "—" : Number(v).toPrecision(5); } });
    });
    return {
      title: title, width: width, height: 260, series: series,
      scales: { x: { time: opts.x === "wall_time" }, y: { distr: opts.log ? 3 : 1 } },
      cursor: { drag: { x: true, y: false } },
      axes: [{}, opts.log ? { size: 60, values: logTicks } : { size: 60 }],
    };
  }

  // One chart: make it, or give it new data (keeping the zoom when the person zoomed in).
  // `identity`: what, besides the options and series, makes it another chart (the overlay's tag).
  function draw(holder, key, title, labels, data, opts, identity) {
    var width = Math.max(320, holder.clientWidth || 640);
    var signature = [opts.x, opts.xLabel, opts.log, labels.join("|"), identity || ""].join(";");
    var box = holder.querySelector('[data-chart-key="' + CSS.escape(key) + '"]');
    if (box && box._plot && box._signature === signature) {
      var plot = box._plot, zoomed = box._zoomed;
      plot.setData(data, !zoomed);
      return box;
    }
    if (!box) {
      box = document.createElement("div");
      box.className = "mx-chart";
      box.setAttribute("data-chart-key", key);
      holder.appendChild(box);
    }
    if (box._plot) { box._plot.destroy(); }
    box._signature = signature;
    box._zoomed = false;
    var options = chartOptions(width - 8, title, labels, opts);
    options.hooks = { setSelect: [function () { box._zoomed = true; }] };
    box._plot = new uPlot(options, data, box);
    box.addEventListener("dblclick", function () { box._zoomed = false; });
    return box;
  }

  function xsOf(series, opts) {
    return opts.x === "wall_time" ? series.wall_time : series.step;
  }

  // -- the explorer: one skill run, one chart per chosen tag -----------------------------------------
  function Explorer(root) {
    this.root = root;
    this.runSelect = root.querySelector("[data-mx-run]");
    this.tagBox = root.querySelector("[data-mx-tags]");
    this.charts = root.querySelector("[data-mx-charts]");
    this.status = root.querySelector("[data-mx-status]");
    this.follow = root.querySelector("[data-mx-follow]");
    this.chosen = {};
    this.cache = {};
    this.timer = null;
    // Whether the person chose the skill run: then it stays, and a newly training skill is offered.
    this.explicit = false;
    var self = this;
    root.addEventListener("change", function (event) {
      if (event.target === self.runSelect) { self.explicit = true; self.showRun(); return; }
      if (event.target.matches("[data-mx-tag]")) {
        if (event.target.checked) { self.chosen[event.target.value] = true; } else { delete self.chosen[event.target.value]; }
        self.render(false);
        return;
      }
      self.render(true);
    });
    root.addEventListener("input", function (event) {
      if (event.target.matches("[data-mx-smooth]")) {
        var out = root.querySelector("[data-mx-smooth-out]");
        if (out) { out.value = event.target.value; }
        self.render(true);
      }
    });
    root.addEventListener("click", function (event) {
      var offer = event.target.closest("[data-mx-follow-run]");
      if (!offer) { return; }
      self.runSelect.value = offer.getAttribute("data-mx-follow-run");
      self.explicit = false;  // back to following the session
      self.say("");
      self.showRun();
    });
    this.loadTags();
    if (root.hasAttribute("data-mx-session-active")) { this.watchRuns(); }
  }

  Explorer.prototype.showRun = function () {
    this.gen = (this.gen || 0) + 1;  // answers still in flight for the run shown before are dropped
    this.chosen = {};
    this.cache = {};
    this.charts.innerHTML = "";
    this.loadTags();
  };

  // The follow line: what the explorer did or offers as the session moves on ("" hides it).
  Explorer.prototype.say = function (text, offerRun) {
    if (!this.follow) { return; }
    // The same again: leave it, so a button is never replaced under the person's pointer.
    var key = text + "|" + (offerRun ? offerRun.value : "");
    if (this.follow._key === key) { return; }
    this.follow._key = key;
    this.offering = !!offerRun;
    this.follow.textContent = text;
    if (offerRun) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-sm";
      button.setAttribute("data-mx-follow-run", offerRun.value);
      button.textContent = "Show " + offerRun.dataset.skill;
      this.follow.appendChild(document.createTextNode(" "));
      this.follow.appendChild(button);
    }
    this.follow.hidden = !text;
  };

  // While the session is active: its runs' statuses, from this explorer's own partial (the server
  // picks the run training now, as on opening). New runs are added and labels kept current; when
  // another skill starts training the explorer moves to it, unless the person chose a run, who is
  // offered it instead.
  Explorer.prototype.watchRuns = function () {
    var self = this, url = this.root.getAttribute("data-mx-runs-url");
    if (!url) { return; }
    var next = function () {
      if (document.body.contains(self.root)) { self.runTimer = setTimeout(function () { self.watchRuns(); }, POLL_MS); }
    };
    clearTimeout(this.runTimer);
    this.runTimer = null;
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } }).then(function (r) {
      if (r.status === 403 || r.status === 404) { return null; }  // gone or not ours any more: stop
      if (!r.ok) { throw new Error(url + ": " + r.status); }
      return r.text();
    }).then(function (html) {
      if (html === null || !document.body.contains(self.root)) { return; }
      var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-metrics-explorer]");
      if (!fresh) { next(); return; }
      self.mergeRuns(fresh);
      if (fresh.hasAttribute("data-mx-session-active")) { next(); return; }
      self.root.removeAttribute("data-mx-session-active");
      self.say("");  // the session ended: nothing trains now, the run list says how each ended
    }).catch(function () { next(); });
  };

  Explorer.prototype.mergeRuns = function (fresh) {
    var self = this, select = this.runSelect, target = null;
    var shownBefore = this.option();
    fresh.querySelectorAll("[data-mx-run] option").forEach(function (incoming) {
      var mine = select.querySelector('option[value="' + CSS.escape(incoming.value) + '"]');
      if (!mine) {
        mine = incoming.cloneNode(true);
        mine.selected = false;
        mine.removeAttribute("selected");
        select.appendChild(mine);
      } else {
        mine.textContent = incoming.textContent;
        mine.dataset.status = incoming.dataset.status;
      }
      if (incoming.hasAttribute("selected")) { target = mine; }
    });
    if (!target) { return; }
    if (target === shownBefore) {
      // Nothing new to offer, and "training now" is no longer true once the shown run ended.
      if (this.offering || target.dataset.status !== "training") { this.say(""); }
      return;
    }
    // The server's pick moved: only a run training now is worth following.
    if (target.dataset.status !== "training") { return; }
    var was = shownBefore ? shownBefore.dataset.skill + " " + shownBefore.dataset.status : "";
    // A person's choice stays, and so does a chart still training (several skills may train at once).
    if (this.explicit || (shownBefore && shownBefore.dataset.status === "training")) {
      this.say(target.dataset.skill + " is training now (shown: " + was + ").", target);
      return;
    }
    select.value = target.value;
    this.say("Now showing " + target.dataset.skill + ", which is training now" + (was ? " (" + was + ")." : "."));
    this.showRun();
  };

  Explorer.prototype.option = function () {
    return this.runSelect.options[this.runSelect.selectedIndex];
  };

  Explorer.prototype.loadTags = function () {
    var self = this, option = this.option(), gen = this.gen;
    if (!option) { return; }
    clearTimeout(this.timer);
    getJSON(option.dataset.tagsUrl).then(function (info) {
      if (gen !== self.gen) { return; }
      self.live = !TERMINAL[info.status];
      if (self.status) { self.status.textContent = info.tags.length ? (self.live ? "live: refreshes every few seconds" : "") : "No TensorBoard data yet."; }
      self.showTags(info.tags);
      return self.fetchChosen();
    }).then(function () {
      if (gen !== self.gen) { return; }
      self.render(false);
      if (self.live) { self.timer = setTimeout(function () { self.cache = {}; self.loadTags(); }, POLL_MS); }
    }).catch(function (err) {
      if (self.status) { self.status.textContent = "Could not load metrics (" + err.message + ")."; }
    });
  };

  Explorer.prototype.showTags = function (tags) {
    var self = this;
    if (!Object.keys(this.chosen).length) {
      DEFAULT_TAGS.forEach(function (t) { if (tags.indexOf(t) >= 0) { self.chosen[t] = true; } });
      if (!Object.keys(this.chosen).length && tags.length) { this.chosen[tags[0]] = true; }
    }
    var known = Array.prototype.map.call(this.tagBox.querySelectorAll("[data-mx-tag]"), function (el) { return el.value; });
    if (known.join("|") === tags.join("|")) { return; }
    this.tagBox.querySelectorAll("label").forEach(function (el) { el.remove(); });
    tags.forEach(function (tag) {
      var label = document.createElement("label");
      label.className = "mx-tag";
      var box = document.createElement("input");
      box.type = "checkbox";
      box.value = tag;
      box.setAttribute("data-mx-tag", "");
      box.checked = !!self.chosen[tag];
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + tag));
      self.tagBox.appendChild(label);
    });
  };

  Explorer.prototype.fetchChosen = function () {
    // Into the cache of the run asked about: a run shown since has a cache of its own.
    var self = this, base = this.option().dataset.seriesUrl, cache = this.cache;
    return Promise.all(Object.keys(this.chosen).filter(function (t) { return !cache[t]; }).map(function (tag) {
      return getJSON(seriesUrl(base, tag)).then(function (s) { cache[tag] = s; });
    }));
  };

  Explorer.prototype.render = function (redrawAll) {
    var self = this, opts = controls(this.root);
    var missing = Object.keys(this.chosen).filter(function (t) { return !self.cache[t]; });
    if (missing.length) { this.fetchChosen().then(function () { self.render(redrawAll); }); return; }
    Array.prototype.forEach.call(this.charts.querySelectorAll("[data-chart-key]"), function (box) {
      if (!self.chosen[box.getAttribute("data-chart-key")]) { if (box._plot) { box._plot.destroy(); } box.remove(); }
    });
    Object.keys(this.chosen).sort().forEach(function (tag) {
      var s = self.cache[tag];
      var scaled = forScale([smooth(s.value, opts.smooth)], opts);
      var data = [xsOf(s, opts), scaled.lists[0]];
      var title = tag + (s.total_points > s.value.length ? " (" + s.value.length + " of " + s.total_points + " points)" : "");
      setNote(draw(self.charts, tag, title, [tag], data, scaled.opts), scaled.note);
    });
  };

  // -- the comparison: the same skill's tag from each session, overlaid --------------------------------
  function Overlay(root) {
    this.root = root;
    this.data = JSON.parse(document.getElementById(root.dataset.compareData).textContent);
    this.skillSelect = root.querySelector("[data-cmp-skill]");
    this.tagSelect = root.querySelector("[data-cmp-tag]");
    this.charts = root.querySelector("[data-mx-charts]");
    this.status = root.querySelector("[data-mx-status]");
    var self = this;
    root.addEventListener("change", function (event) {
      if (event.target === self.skillSelect) { self.loadTags(); } else { self.render(); }
    });
    root.addEventListener("input", function (event) { if (event.target.matches("[data-mx-smooth]")) { self.render(); } });
    this.loadTags();
  }

  Overlay.prototype.runs = function () {
    var skill = this.skillSelect.value;
    var row = this.data.skills.filter(function (r) { return r.skill === skill; })[0];
    return row ? row.runs : [];
  };

  Overlay.prototype.loadTags = function () {
    var self = this, runs = this.runs();
    Promise.all(runs.map(function (run) {
      return run ? getJSON(self.data.tags_url.replace("/0/", "/" + run.run_id + "/")).then(function (i) { return i.tags; }) : [];
    })).then(function (lists) {
      self.tagLists = lists;
      var seen = {}, tags = [];
      lists.forEach(function (list) { list.forEach(function (t) { if (!seen[t]) { seen[t] = 1; tags.push(t); } }); });
      tags.sort();
      var current = self.tagSelect.value;
      self.tagSelect.innerHTML = "";
      tags.forEach(function (t) { var o = document.createElement("option"); o.value = t; o.textContent = t; self.tagSelect.appendChild(o); });
      var pick = tags.indexOf(current) >= 0 ? current : (tags.indexOf(DEFAULT_TAGS[0]) >= 0 ? DEFAULT_TAGS[0] : tags[0]);
      if (pick) { self.tagSelect.value = pick; }
      if (self.status) { self.status.textContent = tags.length ? "" : "No TensorBoard data for this skill."; }
      self.render();
    });
  };

  Overlay.prototype.render = function () {
    var self = this, tag = this.tagSelect.value, opts = controls(this.root), runs = this.runs();
    if (!tag) { return; }
    Promise.all(runs.map(function (run, i) {
      // A session whose run lacks the tag is left out of the chart, not asked for it (a 404).
      if (!run || (self.tagLists && self.tagLists[i] && self.tagLists[i].indexOf(tag) < 0)) { return null; }
      return getJSON(seriesUrl(self.data.series_url.replace("/0/", "/" + run.run_id + "/"), tag)).catch(function () { return null; });
    })).then(function (all) {
      var labels = [], xs = [], values = [];
      all.forEach(function (s, i) {
        if (!s) { return; }
        labels.push("#" + self.data.sessions[i].id);
        // Wall time overlays make no sense across sessions: seconds since each run's first point.
        xs.push(opts.x === "wall_time" ? s.wall_time.map(function (t) { return t - s.wall_time[0]; }) : s.step);
        values.push(smooth(s.value, opts.smooth));
      });
      if (!labels.length) { return; }
      var scaled = forScale(values, opts, labels);
      var joined = uPlot.join(xs.map(function (x, i) { return [x, scaled.lists[i]]; }));
      // x is a number either way (frames, or seconds since each run began), never a date.
      var xOpts = { x: "step", xLabel: opts.x === "wall_time" ? "seconds" : "frames", log: scaled.opts.log };
      var box = draw(self.charts, "overlay", tag + " · " + self.skillSelect.value, labels, joined, xOpts, tag + "@" + self.skillSelect.value);
      setNote(box, scaled.note);
    });
  };

  function init(scope) {
    if (typeof uPlot === "undefined") { return; }
    (scope || document).querySelectorAll("[data-metrics-explorer]:not([data-mx-ready])").forEach(function (root) {
      root.setAttribute("data-mx-ready", "");
      // Without runs yet there is nothing to draw; the partial reloads itself until there are.
      if (root.querySelector("[data-mx-run]")) { new Explorer(root); }
    });
    (scope || document).querySelectorAll("[data-compare-overlay]:not([data-mx-ready])").forEach(function (root) {
      root.setAttribute("data-mx-ready", "");
      new Overlay(root);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  // An outerHTML swap settles on an element no longer in the page: look in the whole document.
  document.addEventListener("htmx:afterSettle", function () { init(document); });
})();
