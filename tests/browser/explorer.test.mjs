// Headless-browser test of the static LiLAW explorer (lilaw_edu/explain/assets/explorer.js).
//
// usage: node explorer.test.mjs --page PAGE.html [--selector CSS] [--expected EXPECTED.json]
//                               [--screenshot OUT.png] [--chromium /usr/bin/chromium]
//
// Opens PAGE over file:// in Debian's chromium (playwright-core, fresh temporary profile) and checks:
// every explorer on the page is mounted with a unique id and its self-check against lilaw_edu passed;
// no request leaves file:/data:; no page errors. Then, on the explorer matched by --selector, it moves
// each slider (by fill and by keyboard) and asserts that the right canvases change pixels, and — with
// --expected, values that lilaw_edu computed for the same slider positions (tests/test_explorer_browser.py
// writes them) — that the drawn grid values, the colours, the colour ranges, the region and the hover
// readout all match Python. Without --expected it checks that the sliders change the drawing and readout.
// Exits non-zero on the first failure.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TOL = 1e-12;

function parseArgs(argv) {
  const out = { selector: ".lilaw-explorer", chromium: "/usr/bin/chromium", context: "standalone" };
  for (let k = 0; k < argv.length; k += 2) {
    const key = argv[k].replace(/^--/, "");
    if (!["page", "selector", "expected", "screenshot", "chromium", "context"].includes(key) || argv[k + 1] === undefined) {
      throw new Error(`unknown or incomplete argument ${argv[k]}`);
    }
    out[key] = argv[k + 1];
  }
  if (!out.page) throw new Error("--page PAGE.html is required");
  if (!["standalone", "book"].includes(out.context)) throw new Error("--context must be standalone or book");
  return out;
}

let passed = 0;
function check(cond, message) {
  if (!cond) throw new Error(`FAILED: ${message}`);
  passed += 1;
}
function close(a, b) {
  return Math.abs(a - b) <= TOL * Math.max(1, Math.abs(b));
}

// --- in-page helpers (run in the browser)
function canvasHashes(root) {
  const out = {};
  root.querySelectorAll("canvas[data-testid^='canvas-']").forEach((c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    for (let k = 0; k < d.length; k++) h = Math.imul(h ^ d[k], 16777619) >>> 0;
    out[c.dataset.testid.slice(7)] = h;
  });
  return out;
}

function snapshot([root, probes, panels]) {
  const api = root.lilawExplorer, n = api.resolution;
  const q = (id) => root.querySelector(`[data-testid='${id}']`);
  const readPixel = (key, i, j) => Array.from(
    q("canvas-" + key).getContext("2d").getImageData(i, n - 1 - j, 1, 1).data.slice(0, 3));
  let feasibleCount = 0;
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) if (isFinite(api.panelValue("w", i, j))) feasibleCount++;
  return {
    state: api.state(),
    redraws: Number(root.getAttribute("data-redraws")),
    sliderText: Object.fromEntries(["alpha", "beta", "delta", "C"].filter((p) => q("slider-" + p))
      .map((p) => [p, q("slider-" + p).value])),
    outputs: Object.fromEntries(["alpha", "beta", "delta", "C"].filter((p) => q("value-" + p))
      .map((p) => [p, q("value-" + p).textContent])),
    lines: api.lines(),
    svgEnds: Object.fromEntries(Array.from(root.querySelectorAll("svg.lilaw-ex-lines line"))
      .map((l) => [l.dataset.line + "@" + l.closest("[data-panel]").dataset.panel, l.dataset.end])),
    warnings: api.warnings(),
    warningText: q("warnings").textContent,
    ranges: Object.fromEntries(panels.map((k) => [k, [Number(q("range-" + k).dataset.vmin),
      Number(q("range-" + k).dataset.vmax)]])),
    feasibleCount,
    probes: probes.map((p) => Object.fromEntries(panels.concat(["w"]).map((k) => [k, {
      drawn: api.panelValue(k, p.i, p.j),
      pixel: panels.includes(k) ? readPixel(k, p.i, p.j) : null,
    }]))),
    resolution: n,
  };
}

function readout(root) {
  const out = {};
  root.querySelectorAll("[data-testid^='readout-']").forEach((e) => {
    out[e.dataset.testid.slice(8)] = e.dataset.value;
  });
  return out;
}

async function moveSlider(page, root, action) {
  const slider = root.locator(`[data-testid='slider-${action.param}']`);
  const before = Number(await root.getAttribute("data-redraws"));
  if (action.via === "keys") {
    await slider.focus();
    for (let k = 0; k < action.count; k++) await page.keyboard.press(action.key);
  } else {
    await slider.fill(String(action.value));
  }
  await page.waitForFunction(([el, n]) => Number(el.getAttribute("data-redraws")) > n,
    [await root.elementHandle(), before]);
}

// Hover the grid node (i, j). A panel drawn narrower than n CSS pixels (the book's column holds five
// 118 px panels of 121 nodes) has nodes no whole mouse position reaches: then the nearest positions are
// tried, and if none lands on the node the probe is set directly (noted; the standalone page checks hovering).
async function hover(page, root, key, i, j, n) {
  const canvas = root.locator(`[data-testid='canvas-${key}']`);
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  const x = box.x + (i + 0.5) / n * box.width, y = box.y + (n - 1 - j + 0.5) / n * box.height;
  const at = async () => root.evaluate((el) => {
    const r = el.querySelector("[data-testid='readout']");
    return [Number(r.getAttribute("data-i")), Number(r.getAttribute("data-j"))];
  });
  for (const [dx, dy] of [[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1], [-1, -1], [1, 1], [-1, 1], [1, -1]]) {
    await page.mouse.move(x + dx, y + dy);
    const [hi, hj] = await at();
    if (hi === i && hj === j) return;
  }
  check(box.width < n, `hovering never reaches node (${i}, ${j}) of a ${box.width} px wide panel`);
  console.log(`note - node (${i}, ${j}) is not reachable by mouse on a ${Math.round(box.width)} px panel; probe set directly`);
  await root.evaluate((el, [a, b]) => el.lilawExplorer.setProbe(a, b), [i, j]);
}

async function checkAgainstPython(page, root, handle, step, panels, others) {
  const snap = await page.evaluate(snapshot, [handle, step.probes, panels]);
  for (const p of ["alpha", "beta", "delta", "C"]) {
    check(snap.state[p] === step.state[p], `${step.name}: state ${p} = ${snap.state[p]}, Python used ${step.state[p]}`);
  }
  check(JSON.stringify(Object.keys(snap.sliderText)) === JSON.stringify(step.controls),
    `${step.name}: sliders ${Object.keys(snap.sliderText)}, expected ${step.controls}`);
  if (step.action) {
    const p = step.action.param;
    check(snap.sliderText[p] === String(step.state[p]) && snap.outputs[p] === String(step.state[p]),
      `${step.name}: slider ${p} shows ${snap.sliderText[p]} / ${snap.outputs[p]}, expected ${step.state[p]}`);
  }
  check(snap.feasibleCount === step.feasible_count,
    `${step.name}: ${snap.feasibleCount} attainable grid nodes drawn, Python's feasible_mask has ${step.feasible_count}`);
  for (const k of panels) {
    check(close(snap.ranges[k][0], step.ranges[k][0]) && close(snap.ranges[k][1], step.ranges[k][1]),
      `${step.name}: colour range of ${k} ${snap.ranges[k]} vs Python ${step.ranges[k]}`);
  }
  for (const k of Array.from(new Set(panels.concat(["w"])))) {
    step.probes.forEach((p, idx) => {
      const got = snap.probes[idx][k];
      check(close(got.drawn, p.values[k]),
        `${step.name}: ${k} drawn at (s_y=${p.s}, m=${p.m}) is ${got.drawn}, lilaw_edu gives ${p.values[k]}`);
      if (got.pixel && p.rgb && !p.rgb_ambiguous[k]) {
        check(got.pixel.every((c, ch) => c === p.rgb[k][ch]),
          `${step.name}: pixel of ${k} at (${p.s}, ${p.m}) is ${got.pixel}, matplotlib paints Python's value ${p.rgb[k]}`);
      }
    });
  }
  for (const [param, end] of Object.entries(step.lines)) {
    check(close(snap.lines[param][0], end[0]) && close(snap.lines[param][1], end[1]),
      `${step.name}: line m = ${param}·s_y ends at ${snap.lines[param]}, expected ${end}`);
    for (const k of panels) {
      const drawn = (snap.svgEnds[`${param}@${k}`] || "").split(",").map(Number);
      check(drawn.length === 2 && close(drawn[0], end[0]) && close(drawn[1], end[1]),
        `${step.name}: panel ${k} draws line ${param} to ${drawn}, expected ${end}`);
    }
  }
  check(Object.keys(snap.lines).length === Object.keys(step.lines).length,
    `${step.name}: lines ${Object.keys(snap.lines)} drawn, expected ${Object.keys(step.lines)}`);
  check(JSON.stringify(snap.warnings) === JSON.stringify(step.warnings),
    `${step.name}: warnings ${JSON.stringify(snap.warnings)}, expected ${JSON.stringify(step.warnings)}`);
  check((snap.warningText === "") === (step.warnings.length === 0), `${step.name}: warning text "${snap.warningText}"`);
  const p = step.probes[step.probes.length - 1];
  await hover(page, root, panels[step.probes.length % panels.length], p.i, p.j, snap.resolution);
  const r = await root.evaluate(readout);
  check(close(Number(r.s), p.s) && close(Number(r.m), p.m), `${step.name}: hover readout at (${r.s}, ${r.m}), expected (${p.s}, ${p.m})`);
  for (const k of step.readout) {
    check(close(Number(r[k]), p.values[k]), `${step.name}: readout ${k} = ${r[k]}, lilaw_edu gives ${p.values[k]}`);
  }
  const shown = Object.keys(r).filter((k) => !["s", "m", "feasible"].includes(k)).sort();
  check(JSON.stringify(shown) === JSON.stringify([...step.readout].sort()), `${step.name}: readout shows ${shown}`);
  check(r.feasible === "true", `${step.name}: readout says a feasible probe is not attainable`);
  for (const [id, n] of Object.entries(others)) {
    const now = Number(await page.locator(`[id='${id}']`).getAttribute("data-redraws"));
    check(now === n, `${step.name}: moving a slider of one explorer redrew another (${id})`);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const url = /^file:/.test(args.page) ? args.page : pathToFileURL(path.resolve(args.page)).href;
  const expected = args.expected ? JSON.parse(fs.readFileSync(args.expected, "utf8")) : null;
  const browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: LAUNCH_ARGS });
  const offsite = [], errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    // Every request that is not file:/data:/blob:/about: is aborted (the machine may be offline) and
    // recorded. --context standalone (default): any such request, and any page error, fails the test.
    // --context book (a built book page, whose theme may load e.g. MathJax from a CDN and whose own
    // scripts may log errors): the explorer must work with those requests blocked; they and page errors
    // that do not come from the explorer's code are printed as notes.
    await page.route("**/*", (route) => {
      const u = route.request().url();
      if (/^(file|data|blob|about):/.test(u)) return route.continue();
      if (!offsite.includes(u)) offsite.push(u);
      return route.abort();
    });
    page.on("request", (r) => {
      const u = r.url();
      if (!/^(file|data|blob|about):/.test(u) && !offsite.includes(u)) offsite.push(u);
    });
    page.on("websocket", (ws) => offsite.push(ws.url()));
    page.on("pageerror", (e) => {
      const ours = /LiLAWExplorer|lilawExplorer|computeGrids|selfCheck|updateReadout|setProbe|redraw/.test(e.stack || "");
      if (args.context === "standalone" || ours) errors.push(String(e));
      else console.log(`note - page error outside the explorer: ${e}`);
    });
    page.on("console", (m) => {
      if (m.type() !== "error" || /net::ERR_FAILED|ERR_BLOCKED|Failed to load resource/.test(m.text())) return;
      if (args.context === "standalone") errors.push(m.text());
      else console.log(`note - console error on the page: ${m.text()}`);
    });
    await page.goto(url, { waitUntil: "load" });
    await page.waitForSelector(`${args.selector}[data-ready='1']`, { timeout: 15000 });

    const all = await page.locator(".lilaw-explorer").evaluateAll((els) => els.map((e) => ({
      id: e.id, ready: e.getAttribute("data-ready"), redraws: Number(e.getAttribute("data-redraws")),
      status: e.querySelector("[data-testid='selfcheck']")?.dataset.status,
      text: e.querySelector("[data-testid='selfcheck']")?.textContent })));
    check(all.length >= 1, "no .lilaw-explorer on the page");
    check(new Set(all.map((e) => e.id)).size === all.length, `explorer ids not unique: ${all.map((e) => e.id)}`);
    for (const e of all) {
      check(e.ready === "1", `explorer ${e.id} did not mount`);
      check(e.status === "pass" && e.text.startsWith("\u2713 matches Python"), `explorer ${e.id} self-check: ${e.text}`);
      console.log(`ok - ${e.id}: ${e.text}`);
    }
    const root = page.locator(args.selector).first();
    const rootId = await root.getAttribute("id");
    const others = Object.fromEntries(all.filter((e) => e.id !== rootId).map((e) => [e.id, e.redraws]));
    const handle = await root.elementHandle();
    const panels = await root.evaluate((el) => Array.from(el.querySelectorAll("[data-panel]"), (f) => f.dataset.panel));
    if (expected) {
      check(JSON.stringify(panels) === JSON.stringify(expected.steps[0].panels),
        `panels ${panels}, expected ${expected.steps[0].panels}`);
    } else {
      check(panels.length >= 1, "no panels");
    }
    await checkLayout(root);
    console.log("ok - step layout");

    const steps = expected ? expected.steps : defaultSteps(await root.evaluate((el) => el.lilawExplorer.state()));
    for (const step of steps) {
      const before = await root.evaluate(canvasHashes);
      const readBefore = await root.evaluate(readout);
      if (step.action) await moveSlider(page, root, step.action);
      const after = await root.evaluate(canvasHashes);
      for (const k of step.changed || []) check(before[k] !== after[k], `${step.name}: canvas ${k} did not change`);
      for (const k of step.unchanged || []) check(before[k] === after[k], `${step.name}: canvas ${k} changed`);
      if (step.action && !expected) {
        const readAfter = await root.evaluate(readout);
        check(readAfter.w !== readBefore.w || step.action.param === "C", `${step.name}: readout W did not change`);
      }
      if (expected) await checkAgainstPython(page, root, handle, step, panels, others);
      console.log(`ok - step ${step.name}`);
    }
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    check(errors.length === 0, `page errors: ${errors.join(" | ")}`);
    if (args.context === "book" && offsite.length) console.log(`note - blocked off-page requests: ${offsite.join(", ")}`);
    else check(offsite.length === 0, `requests left file:/data: ${offsite.join(", ")}`);
  } finally {
    await browser.close();
  }
  console.log(`${passed} passed, 0 failed`);
}

// Every panel in one row (never 3 + 1) and nothing of the explorer (readout included) cut at its right edge.
async function checkLayout(root) {
  const box = await root.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const tops = Array.from(el.querySelectorAll("[data-panel]"), (f) => Math.round(f.getBoundingClientRect().top));
    const items = Array.from(el.querySelectorAll(".lilaw-ex-readout > *, .lilaw-ex-controls > *, [data-panel]"),
      (e) => ({ text: e.textContent.slice(0, 40), right: e.getBoundingClientRect().right }));
    return { left: r.left, right: r.right, width: r.width, tops, items,
      overflow: el.scrollWidth - el.clientWidth, panelWidth: el.querySelector("[data-panel]").getBoundingClientRect().width };
  });
  check(new Set(box.tops).size === 1, `panels wrap onto ${new Set(box.tops).size} rows (tops ${box.tops})`);
  check(box.overflow <= 1, `explorer content overflows its box by ${box.overflow} px`);
  for (const it of box.items) {
    check(it.right <= box.right + 1, `"${it.text}" ends at ${it.right} px, beyond the explorer's right edge ${box.right}`);
  }
  check(box.panelWidth >= 100, `panels only ${box.panelWidth} px wide`);
  console.log(`ok - layout: ${box.tops.length} panels in one row, ${Math.round(box.panelWidth)} px each, ` +
    `explorer ${Math.round(box.width)} px wide`);
}

function defaultSteps(state) {
  // Without Python's numbers: move each slider one notch away from its end and check the drawing changes.
  const key = (p, max) => (state[p] >= max ? "ArrowLeft" : "ArrowRight");
  return [
    { name: "alpha", action: { param: "alpha", via: "keys", key: key("alpha", 20), count: 3 },
      changed: ["w_alpha", "w", "wce"], unchanged: ["w_beta", "w_delta"] },
    { name: "beta", action: { param: "beta", via: "keys", key: key("beta", 10), count: 3 },
      changed: ["w_beta", "w", "wce"], unchanged: ["w_alpha", "w_delta"] },
    { name: "delta", action: { param: "delta", via: "keys", key: key("delta", 15), count: 3 },
      changed: ["w_delta", "w", "wce"], unchanged: ["w_alpha", "w_beta"] },
    { name: "C", action: { param: "C", via: "keys", key: state.C > 2 ? "ArrowLeft" : "ArrowRight", count: 1 },
      changed: ["w_alpha", "w_beta", "w_delta", "w", "wce"] },
  ];
}

main().catch((e) => {
  console.error(e.message || e);
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
});
