/* LiLAW alpha/beta/delta explorer for pages without a kernel (lilaw_edu/explain/assets/explorer.js).
 *
 * Inlined by lilaw_edu.explain.static.static_explorer_html next to a JSON config. No network,
 * no libraries: works from file://. The formulas mirror lilaw_edu.core.weighting (paper eqs. 2-6)
 * and lilaw_edu.explain.region.feasible_mask; on load the page checks them against reference
 * values that lilaw_edu computed at build time.
 */
(function () {
  "use strict";
  if (window.LiLAWExplorer) return; // a second explorer on the page reuses the first definition

  var ATOL = 1e-9;
  var CHECK_TOL = 1e-12;
  var VALUE_KEYS = ["w_alpha", "w_beta", "w_delta", "w", "ce", "wce"];
  var LABELS = { alpha: "\u03b1", beta: "\u03b2", delta: "\u03b4", C: "C" };
  var BAD = [238, 238, 238];
  // Lines m = k·s_y drawn over every panel for the parameters that have a slider.
  var LINES = { alpha: "#ff4d4d", beta: "#ffffff", delta: "#ffa41b" };

  /** W_alpha, W_beta, W_delta, W, CE and W*CE at (s_y, max s) = (s, m). */
  function values(s, m, a, b, d) {
    var wa = 1 / (1 + Math.exp(-(a * s - m)));
    var wb = 1 / (1 + Math.exp(b * s - m));
    var r = d * s - m;
    var wd = Math.exp(-0.5 * r * r);
    var w = wa + wb + wd;
    var ce = -Math.log(s);
    return { w_alpha: wa, w_beta: wb, w_delta: wd, w: w, ce: ce, wce: w * ce };
  }

  /** Same test, same operation order as lilaw_edu.explain.region.feasible_mask. */
  function feasible(s, m, C) {
    var inBox = s >= -ATOL && m <= 1 + ATOL;
    var onDiagonal = Math.abs(s - m) <= ATOL && C * m >= 1 - ATOL;
    var offDiagonal = s <= m + ATOL && s + m <= 1 + ATOL && s + (C - 1) * m >= 1 - ATOL;
    return inBox && (onDiagonal || offDiagonal);
  }

  /** Where the line m = k·s_y (k >= 0) leaves the unit square: [s_y, m]. */
  function lineEnd(k) {
    return k > 1 ? [1 / k, 1] : [1, k];
  }

  /** Codes of the parameter settings the explorer warns about (see WARNINGS). */
  function warningCodes(st) {
    var out = [];
    if (st.alpha !== undefined && st.alpha < 1) out.push("alpha<1");
    if (st.delta !== undefined && st.beta !== undefined && st.delta < st.beta) out.push("delta<beta");
    return out;
  }
  var WARNINGS = {
    "alpha<1": "α < 1: α·s_y − m < 0 at every attainable point (s_y ≤ m), so W_α < ½ " +
      "everywhere and no longer singles out the easy samples.",
    "delta<beta": "δ < β: the ridge of W_δ (the line m = δ·s_y) moves below the line " +
      "m = β·s_y, among samples W_β does not mark as hard; the paper's settings (10, 2, 6) and " +
      "(9, 3, 7) keep β < δ < α, the ridge between the β and α lines."
  };

  /** Grid node k of n, as numpy.linspace(0, 1, n) computes it. */
  function node(k, n) {
    return k === n - 1 ? 1 : k * (1 / (n - 1));
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmt(v) {
    if (!isFinite(v)) return v > 0 ? "\u221e" : "\u2013";
    return v.toFixed(4);
  }

  function colorIndex(v, lo, hi) {
    var t = (v - lo) / (hi - lo);
    if (!(t > 0)) return 0;
    return Math.min(255, Math.floor(t * 256));
  }

  function mount(root) {
    if (!root || root.lilawExplorer) return root && root.lilawExplorer;
    var cfg = JSON.parse(root.querySelector("script.lilaw-ex-config").textContent);
    var n = cfg.resolution;
    var state = { alpha: cfg.alpha, beta: cfg.beta, delta: cfg.delta, C: cfg.C };
    var probe = { i: Math.round(0.25 * (n - 1)), j: Math.round(0.5 * (n - 1)) };
    var grids = {}, ranges = {}, canvases = {}, markers = {}, rangeLabels = {};
    var ui = el("div", { "class": "lilaw-ex-ui" });
    root.appendChild(ui);

    // --- sliders
    var controls = el("div", { "class": "lilaw-ex-controls" });
    var sliders = {}, outputs = {};
    var controlNames = cfg.controls || ["alpha", "beta", "delta", "C"];
    controlNames.forEach(function (name) {
      var r = cfg.sliders[name];
      var label = el("label", { "class": "lilaw-ex-slider" });
      label.appendChild(el("span", { "class": "lilaw-ex-name" }, LABELS[name]));
      var input = el("input", { type: "range", min: r[0], max: r[1], step: r[2], value: state[name],
        "aria-label": name, "data-testid": "slider-" + name, "data-param": name });
      var out = el("output", { "data-testid": "value-" + name }, String(state[name]));
      input.addEventListener("input", function () {
        state[name] = name === "C" ? parseInt(input.value, 10) : parseFloat(input.value);
        out.textContent = input.value;
        redraw();
      });
      sliders[name] = input; outputs[name] = out;
      label.appendChild(input); label.appendChild(out);
      controls.appendChild(label);
    });
    ui.appendChild(controls);

    // --- panels
    var panels = el("div", { "class": "lilaw-ex-panels", "data-testid": "panels" });
    panels.style.setProperty("--lilaw-cols", String(cfg.panels.length));
    var lineNames = Object.keys(LINES).filter(function (p) { return controlNames.indexOf(p) >= 0; });
    var overlays = [];
    cfg.panels.forEach(function (key) {
      var fig = el("figure", { "class": "lilaw-ex-panel", "data-panel": key });
      fig.appendChild(el("figcaption", {}, cfg.titles[key]));
      var plot = el("div", { "class": "lilaw-ex-plot" });
      var canvas = el("canvas", { width: n, height: n, "data-testid": "canvas-" + key,
        "aria-label": cfg.titles[key] + " over (s_y, max s)" });
      var marker = el("span", { "class": "lilaw-ex-probe" });
      plot.appendChild(canvas);
      if (lineNames.length) {
        // Vector overlay: the canvas keeps the exact heat-map pixels. Grid node k sits at pixel centre k + 0.5.
        // (Parsed from markup, so the HTML parser puts it in the SVG namespace.)
        plot.insertAdjacentHTML("beforeend", '<svg class="lilaw-ex-lines" aria-hidden="true" ' +
          'preserveAspectRatio="none" viewBox="0 0 ' + n + " " + n + '">' + lineNames.map(function (p) {
            return '<line data-line="' + p + '" stroke="' + LINES[p] + '" stroke-width="1.5" ' +
              'vector-effect="non-scaling-stroke"' + (p === "beta" ? ' stroke-dasharray="4 3"' : "") + "></line>";
          }).join("") + "</svg>");
        overlays.push(plot.lastElementChild);
      }
      plot.appendChild(marker);
      plot.appendChild(el("span", { "class": "lilaw-ex-ylabel" }, "max s \u2191"));
      fig.appendChild(plot);
      fig.appendChild(el("div", { "class": "lilaw-ex-xlabel" }, "0 \u2190 s_y \u2192 1"));
      var bar = el("canvas", { width: 256, height: 1, "class": "lilaw-ex-bar" });
      var bctx = bar.getContext("2d"), bimg = bctx.createImageData(256, 1);
      for (var k = 0; k < 256; k++) {
        bimg.data.set([cfg.lut[k][0], cfg.lut[k][1], cfg.lut[k][2], 255], 4 * k);
      }
      bctx.putImageData(bimg, 0, 0);
      fig.appendChild(bar);
      var rl = el("div", { "class": "lilaw-ex-range", "data-testid": "range-" + key });
      fig.appendChild(rl);
      canvas.addEventListener("mousemove", function (ev) { setProbeFromEvent(canvas, ev); });
      canvas.addEventListener("click", function (ev) { setProbeFromEvent(canvas, ev); });
      canvases[key] = canvas; markers[key] = marker; rangeLabels[key] = rl;
      panels.appendChild(fig);
    });
    ui.appendChild(panels);

    // --- probe readout
    var readout = el("div", { "class": "lilaw-ex-readout", "data-testid": "readout" });
    var readoutSpans = {};
    readout.appendChild(el("span", {}, "At "));
    // The weights are read out where their sliders are shown; the region widget (C only) reads out CE.
    var readoutKeys = controlNames.some(function (p) { return p in LINES; }) ? VALUE_KEYS : ["ce"];
    ["s", "m"].concat(readoutKeys).forEach(function (key) {
      var name = { s: "s_y", m: "max s", w_alpha: "W_\u03b1", w_beta: "W_\u03b2", w_delta: "W_\u03b4",
        w: "W", ce: "CE", wce: "W\u00b7CE" }[key];
      var item = el("span", { "class": "lilaw-ex-item" });
      item.appendChild(el("span", {}, name + " = "));
      readoutSpans[key] = el("span", { "data-testid": "readout-" + key });
      item.appendChild(readoutSpans[key]);
      readout.appendChild(item);
    });
    var attainable = el("span", { "class": "lilaw-ex-note", "data-testid": "readout-feasible" });
    readout.appendChild(attainable);
    ui.appendChild(readout);
    ui.appendChild(el("div", { "class": "lilaw-ex-hint" },
      "Move the sliders; hover over a panel to read the weights there. Grey: (s_y, max s) pairs no softmax " +
      "over C classes attains."));

    if (lineNames.length) {
      var legend = el("div", { "class": "lilaw-ex-legend", "data-testid": "legend" });
      legend.appendChild(el("span", {}, "Lines: "));
      lineNames.forEach(function (p) {
        var item = el("span", { "class": "lilaw-ex-key" });
        var swatch = el("span", { "class": "lilaw-ex-swatch" + (p === "beta" ? " lilaw-ex-dashed" : "") });
        swatch.style.borderColor = LINES[p];
        item.appendChild(swatch);
        item.appendChild(el("span", {}, "m = " + LABELS[p] + "·s_y"));
        legend.appendChild(item);
      });
      ui.appendChild(legend);
    }
    var warnings = el("div", { "class": "lilaw-ex-warnings", "data-testid": "warnings", role: "status" });
    ui.appendChild(warnings);

    var check = el("div", { "class": "lilaw-ex-check", "data-testid": "selfcheck", "data-status": "pending" });
    ui.appendChild(check);

    function setProbeFromEvent(canvas, ev) {
      var rect = canvas.getBoundingClientRect();
      var col = Math.floor((ev.clientX - rect.left) / rect.width * n);
      var row = Math.floor((ev.clientY - rect.top) / rect.height * n);
      setProbe(Math.max(0, Math.min(n - 1, col)), n - 1 - Math.max(0, Math.min(n - 1, row)));
    }

    function setProbe(i, j) {
      probe = { i: i, j: j };
      updateReadout();
    }

    function updateReadout() {
      var s = node(probe.i, n), m = node(probe.j, n);
      var v = values(s, m, state.alpha, state.beta, state.delta);
      v.s = s; v.m = m;
      Object.keys(readoutSpans).forEach(function (key) {
        readoutSpans[key].textContent = fmt(v[key]);
        readoutSpans[key].setAttribute("data-value", String(v[key]));
      });
      var ok = feasible(s, m, state.C);
      attainable.textContent = ok ? "" : " (not attainable with C = " + state.C + ")";
      attainable.setAttribute("data-value", String(ok));
      readout.setAttribute("data-i", probe.i);
      readout.setAttribute("data-j", probe.j);
      Object.keys(markers).forEach(function (key) {
        markers[key].style.left = (100 * (probe.i + 0.5) / n) + "%";
        markers[key].style.top = (100 * (n - 1 - probe.j + 0.5) / n) + "%";
      });
    }

    function computeGrids() {
      cfg.panels.concat(["w"]).forEach(function (key) {
        if (!grids[key]) grids[key] = new Float64Array(n * n);
      });
      for (var j = 0; j < n; j++) {
        var m = node(j, n);
        for (var i = 0; i < n; i++) {
          var s = node(i, n), idx = j * n + i;
          var ok = feasible(s, m, state.C);
          var v = ok ? values(s, m, state.alpha, state.beta, state.delta) : null;
          for (var key in grids) grids[key][idx] = ok ? v[key] : NaN;
        }
      }
      cfg.panels.forEach(function (key) {
        var lo = cfg.ranges[key][0], hi = cfg.ranges[key][1];
        if (hi === null) {
          hi = -Infinity;
          var g = grids[key];
          for (var k = 0; k < g.length; k++) if (isFinite(g[k]) && g[k] > hi) hi = g[k];
          if (hi === -Infinity) hi = 1;
        }
        ranges[key] = [lo, Math.max(hi, lo + 1e-12)];
      });
    }

    function draw(key) {
      var ctx = canvases[key].getContext("2d");
      var img = ctx.createImageData(n, n), g = grids[key], lo = ranges[key][0], hi = ranges[key][1];
      for (var j = 0; j < n; j++) {
        for (var i = 0; i < n; i++) {
          var v = g[j * n + i], c = isFinite(v) ? cfg.lut[colorIndex(v, lo, hi)] : BAD;
          img.data.set([c[0], c[1], c[2], 255], 4 * ((n - 1 - j) * n + i));
        }
      }
      ctx.putImageData(img, 0, 0);
      var rl = rangeLabels[key];
      rl.textContent = fmt(lo) + " \u2013 " + fmt(hi);
      rl.setAttribute("data-vmin", String(lo));
      rl.setAttribute("data-vmax", String(hi));
    }

    function drawLines() {
      overlays.forEach(function (svg) {
        Array.prototype.forEach.call(svg.querySelectorAll("line"), function (line) {
          var end = lineEnd(state[line.getAttribute("data-line")]);
          line.setAttribute("x1", String(0.5)); line.setAttribute("y1", String(n - 0.5));
          line.setAttribute("x2", String(end[0] * (n - 1) + 0.5));
          line.setAttribute("y2", String(n - 0.5 - end[1] * (n - 1)));
          line.setAttribute("data-end", end.join(","));
        });
      });
    }

    function showWarnings() {
      var st = {};
      controlNames.forEach(function (p) { st[p] = state[p]; });
      var codes = warningCodes(st);
      warnings.textContent = "";
      codes.forEach(function (c) { warnings.appendChild(el("div", { "data-warning": c }, "⚠ " + WARNINGS[c])); });
      warnings.setAttribute("data-codes", codes.join(" "));
    }

    function redraw() {
      computeGrids();
      cfg.panels.forEach(draw);
      drawLines();
      showWarnings();
      updateReadout();
      root.setAttribute("data-redraws", String(Number(root.getAttribute("data-redraws") || 0) + 1));
    }

    function selfCheck() {
      var maxDiff = 0, count = 0;
      cfg.reference.forEach(function (ref) {
        var v = values(ref.s, ref.m, ref.alpha, ref.beta, ref.delta);
        VALUE_KEYS.forEach(function (key) {
          var d = Math.abs(v[key] - ref[key]);
          if (!(d <= maxDiff)) maxDiff = isNaN(d) ? Infinity : d;
          count++;
        });
      });
      var mismatches = cfg.maskReference.filter(function (r) { return feasible(r[0], r[1], r[2]) !== r[3]; });
      var pass = maxDiff <= CHECK_TOL && mismatches.length === 0 && count > 0;
      check.setAttribute("data-status", pass ? "pass" : "fail");
      check.setAttribute("data-maxdiff", String(maxDiff));
      check.setAttribute("data-count", String(count));
      check.textContent = (pass ? "\u2713 matches Python" : "\u2717 differs from Python") +
        " (max abs diff " + maxDiff.toExponential(1) + " over " + count + " values computed by lilaw_edu; " +
        "region test agrees at " + (cfg.maskReference.length - mismatches.length) + "/" +
        cfg.maskReference.length + " points)";
      return pass;
    }

    function referenceTable() {
      var details = el("details", { "class": "lilaw-ex-details" });
      details.appendChild(el("summary", {}, "Reference values computed by lilaw_edu at build time (" +
        cfg.reference.length + " points, C = " + cfg.C + ")"));
      var table = el("table", { "class": "lilaw-ex-table", "data-testid": "reference-table" });
      var cols = ["s", "m", "alpha", "beta", "delta"].concat(VALUE_KEYS);
      var head = el("tr");
      cols.concat(["|JS \u2212 Python|"]).forEach(function (c) { head.appendChild(el("th", {}, c)); });
      table.appendChild(head);
      cfg.reference.forEach(function (ref) {
        var tr = el("tr"), v = values(ref.s, ref.m, ref.alpha, ref.beta, ref.delta), d = 0;
        cols.forEach(function (c) { tr.appendChild(el("td", {}, String(+ref[c].toPrecision(6)))); });
        VALUE_KEYS.forEach(function (k) { d = Math.max(d, Math.abs(v[k] - ref[k])); });
        tr.appendChild(el("td", {}, d.toExponential(1)));
        table.appendChild(tr);
      });
      details.appendChild(table);
      return details;
    }

    var api = {
      state: function () { return { alpha: state.alpha, beta: state.beta, delta: state.delta, C: state.C }; },
      resolution: n,
      node: function (k) { return node(k, n); },
      setProbe: setProbe,
      panelValue: function (key, i, j) { return grids[key][j * n + i]; },
      range: function (key) { return ranges[key].slice(); },
      color: function (key, v) { return isFinite(v) ? cfg.lut[colorIndex(v, ranges[key][0], ranges[key][1])] : BAD; },
      values: values,
      feasible: feasible,
      lines: function () {
        var out = {};
        lineNames.forEach(function (p) { out[p] = lineEnd(state[p]); });
        return out;
      },
      warnings: function () { return warnings.getAttribute("data-codes").split(" ").filter(Boolean); },
      selfCheck: selfCheck
    };
    root.lilawExplorer = api;
    redraw();
    selfCheck();
    ui.appendChild(referenceTable());
    root.setAttribute("data-ready", "1");
    return api;
  }

  window.LiLAWExplorer = { mount: mount, values: values, feasible: feasible, node: node, lineEnd: lineEnd,
    warningCodes: warningCodes };
})();
