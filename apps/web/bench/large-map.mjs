// The 1,000-node map in Debian's chromium: how long it takes to draw (grouped, then expanded), and the
// frame times while it is panned and zoomed — at the fitted zoom and zoomed out to the whole grid.
// Figures for the README; run after the build: `node bench/large-map.mjs` (or `pnpm bench`).
// The functions passed to page.evaluate run in the browser.
/* global window, requestAnimationFrame */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { chromium } from "playwright-core";
import { DIST_DIR, serveStatic } from "../dist-node/serve.js";

const YAML = readFileSync(new URL("../test/fixtures/thousand.yaml", import.meta.url), "utf8");

/** Starts counting animation frames in the page; the returned function stops and summarises. */
async function frames(page) {
  await page.evaluate(() => {
    const times = [];
    window.__long = [];
    new PerformanceObserver((l) =>
      window.__long.push(...l.getEntries().map((e) => Math.round(e.duration))),
    ).observe({ type: "longtask" });
    let last = performance.now();
    let on = true;
    const tick = (now) => {
      times.push(now - last);
      last = now;
      if (on) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    window.__stopFrames = () => {
      on = false;
      return times.slice(1);
    };
  });
  return async () => {
    const [times, longTasks] = await page.evaluate(() => [window.__stopFrames(), window.__long]);
    const total = times.reduce((a, b) => a + b, 0);
    const sorted = [...times].sort((a, b) => a - b);
    return {
      fps: Math.round((times.length * 10000) / total) / 10,
      p95: Math.round(sorted[Math.floor(sorted.length * 0.95)] * 10) / 10,
      longest: Math.round(sorted.at(-1)),
      // A frame that took longer than one and a half 60 Hz intervals missed at least one.
      dropped: times.filter((t) => t > 25).length,
      frames: times.length,
      longTasks,
    };
  };
}

async function pan(page, box, dx, dy, steps = 40) {
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= steps; i++) {
    await page.mouse.move(
      box.x + box.width / 2 + (dx * i) / steps,
      box.y + box.height / 2 + (dy * i) / steps,
    );
    await page.waitForTimeout(16);
  }
  await page.mouse.up();
}

async function wheel(page, box, deltaY, times) {
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  for (let i = 0; i < times; i++) {
    await page.mouse.wheel(0, deltaY);
    await page.waitForTimeout(16);
  }
}

const { server, url } = await serveStatic(DIST_DIR);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.addInitScript((text) => localStorage.setItem("podnet:pasted-yaml", text), YAML);
  const started = Date.now();
  await page.goto(`${url}?scenario=pasted&provider=docker-bridge`);
  await page.waitForSelector('[data-box="sum:lan"]', { timeout: 120_000 });
  const grouped = Date.now() - started;
  const expandStart = Date.now();
  await page.locator('[data-box="sum:lan"]').click();
  await page.waitForSelector(".topology .box.node");
  const expanded = Date.now() - expandStart;
  const pane = await page.locator(".react-flow__pane").boundingBox();
  const count = () => page.locator(".topology .box.node").count();

  let stop = await frames(page);
  await pan(page, pane, -400, -250);
  const panFitted = { ...(await stop()), boxes: await count() };

  stop = await frames(page);
  await wheel(page, pane, 300, 15);
  await page.waitForTimeout(200);
  const zoomOut = { ...(await stop()), boxes: await count() };
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/large-zoomed-out.png` });

  stop = await frames(page);
  await pan(page, pane, 300, 200);
  const panAll = { ...(await stop()), boxes: await count() };

  stop = await frames(page);
  await wheel(page, pane, -300, 15);
  const zoomIn = { ...(await stop()), boxes: await count() };

  const figures = {
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    drawGroupedMs: grouped,
    expandMs: expanded,
    panFitted,
    zoomOut,
    panAll,
    zoomIn,
  };
  console.log(JSON.stringify(figures, null, 2));
} finally {
  await browser.close();
  server.close();
}
