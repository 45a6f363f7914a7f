// The built book offline: every page in headless chromium with all network requests blocked.
//
// usage: node book.test.mjs --root _build/html [--chromium /usr/bin/chromium] [--page REL.html ...]
//
// For every page (default: every .html under --root except genindex/search) it records page errors,
// console errors and requests that leave file:/data:/blob:/about: (each is aborted), waits for MathJax
// to typeset, and checks: no JavaScript error; MathJax came from the book itself (no request left the
// machine for it); every math element was typeset (mjx-container elements exist and no raw \( \) or
// \[ \] delimiters remain in the page's text outside code). Prints one line per page and
// "N passed, 0 failed"; exits non-zero on any failure.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

function parseArgs(argv) {
  const out = { chromium: "/usr/bin/chromium", pages: [] };
  for (let k = 0; k < argv.length; k += 2) {
    const key = argv[k].replace(/^--/, "");
    if (argv[k + 1] === undefined || !["root", "chromium", "page"].includes(key)) {
      throw new Error(`unknown or incomplete argument ${argv[k]}`);
    }
    if (key === "page") out.pages.push(argv[k + 1]); else out[key] = argv[k + 1];
  }
  if (!out.root) throw new Error("--root BUILD_HTML_DIR is required");
  return out;
}

// The url of a page that is only a meta-refresh redirect, else null.
function redirectTarget(file) {
  const text = fs.readFileSync(file, "utf-8");
  const m = text.match(/<meta\s+http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"/i);
  return m && text.length < 1000 ? m[1] : null;
}

function listPages(root) {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && !["_static", "_sources", "_images", ".doctrees", "_sphinx_design_static"].includes(e.name)) walk(p);
      else if (e.isFile() && e.name.endsWith(".html") && !["genindex.html", "search.html"].includes(e.name)) out.push(p);
    }
  };
  walk(root);
  return out.sort();
}

// In the page: count math elements, MathJax output and raw TeX delimiters left in visible text.
function mathState() {
  const math = document.querySelectorAll(".math, span.math, div.math").length;
  const typeset = document.querySelectorAll("mjx-container").length;
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll("pre, code, script, style, textarea, mjx-container, .highlight").forEach((e) => e.remove());
  const text = clone.textContent;
  const raw = (text.match(/\\\(|\\\)|\\\[|\\\]/g) || []).length;
  const sample = raw ? text.slice(Math.max(0, text.search(/\\\(|\\\[/) - 40), text.search(/\\\(|\\\[/) + 60) : "";
  return { math, typeset, raw, sample, mathjax: typeof window.MathJax === "object" && !!window.MathJax.startup };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const pages = args.pages.length ? args.pages.map((p) => path.resolve(args.root, p)) : listPages(args.root);
  if (!pages.length) throw new Error(`no pages under ${args.root}`);
  const browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: LAUNCH_ARGS });
  let passed = 0, totalTypeset = 0;
  const failures = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    for (const file of pages) {
      const page = await context.newPage();
      const errors = [], offsite = [];
      await page.route("**/*", (route) => {
        const u = route.request().url();
        if (/^(file|data|blob|about):/.test(u)) return route.continue();
        offsite.push(u);
        return route.abort();
      });
      page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error" && !/net::ERR_FAILED|Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
      });
      const rel = path.relative(args.root, file);
      // A redirect stub (Jupyter Book's index.html): its meta refresh navigates away while the checks below run,
      // a race; check that its target exists instead (the target is checked as a page of its own).
      const target = redirectTarget(file);
      if (target !== null) {
        await page.close();
        if (fs.existsSync(path.resolve(path.dirname(file), target))) {
          passed++;
          console.log(`ok - ${rel}: redirect to ${target}, checked as its own page`);
        } else {
          failures.push(`${rel}: redirects to ${target}, which does not exist`);
          console.log(`not ok - ${rel}: redirects to ${target}, which does not exist`);
        }
        continue;
      }
      try {
        await page.goto(pathToFileURL(file).href, { waitUntil: "load", timeout: 30000 });
        // MathJax 3 resolves startup.promise once the first typeset is done.
        try {
          await page.waitForFunction(() => !document.querySelector(".math") ||
            (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise), null, { timeout: 20000 });
          await page.evaluate(() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise);
        } catch (e) {
          errors.push(`MathJax did not start within 20 s (${offsite.length} off-site requests blocked: ${offsite.slice(0, 3)})`);
        }
        const st = await page.evaluate(mathState);
        const problems = [...errors];
        const mathjaxRequests = offsite.filter((u) => /mathjax/i.test(u));
        if (mathjaxRequests.length) problems.push(`MathJax requested from the network: ${mathjaxRequests.join(", ")}`);
        if (st.math > 0 && !st.mathjax) problems.push("the page has math but MathJax did not load");
        if (st.math > 0 && st.typeset < st.math) problems.push(`${st.math} math elements but ${st.typeset} typeset`);
        if (st.raw > 0) problems.push(`${st.raw} raw TeX delimiters left, e.g. "${st.sample}"`);
        totalTypeset += st.typeset;
        if (problems.length) {
          failures.push(`${rel}: ${problems.join(" | ")}`);
          console.log(`not ok - ${rel}: ${problems.join(" | ")}`);
        } else {
          passed++;
          console.log(`ok - ${rel}: ${st.typeset} formulas typeset, no JS error` +
            (offsite.length ? ` (${offsite.length} off-site requests blocked: ${offsite.slice(0, 3).join(", ")})` : ""));
        }
      } catch (e) {
        failures.push(`${rel}: ${e.message}`);
        console.log(`not ok - ${rel}: ${e.message}`);
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
  }
  console.log(`formulas typeset in all pages: ${totalTypeset}`);
  if (totalTypeset === 0) failures.push("no formula typeset in the whole book");
  console.log(`${passed} passed, ${failures.length} failed`);
  if (failures.length) process.exit(1);
}

main().catch((e) => {
  console.error(e.message || e);
  console.log("0 passed, 1 failed");
  process.exit(1);
});
