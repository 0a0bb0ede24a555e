// The app in a real browser: Debian's chromium driven by playwright-core (no downloaded browser),
// loaded from a local static server. Screenshots go to test-results/screens/.
import { mkdirSync } from "node:fs";
import type { Server } from "node:http";
import { fileURLToPath } from "node:url";
import { requireSystem } from "@podnet/testing";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIST_DIR, serveStatic } from "../src/serve.js";

const system = requireSystem({ tools: ["/usr/bin/chromium"] });
const SHOTS = fileURLToPath(new URL("../test-results/screens/", import.meta.url));

describe.skipIf(system.skip)("the web app in chromium", () => {
  let browser: Browser;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    ({ server, url } = await serveStatic(DIST_DIR));
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
  });
  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  const PHONE = { width: 390, height: 844 };
  const DESKTOP = { width: 1280, height: 800 };
  const problems = new Map<Page, string[]>();

  /** Opens the app; every console error or warning and page error is kept for `close` to check. */
  async function open(
    query = "",
    ready = "svg.topology",
    viewport: { width: number; height: number } = DESKTOP,
  ): Promise<Page> {
    const page = await browser.newPage({ viewport });
    const seen: string[] = [];
    problems.set(page, seen);
    page.on("pageerror", (e) => seen.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") seen.push(`${m.type()}: ${m.text()}`);
    });
    await page.goto(`${url}${query}`);
    await page.waitForSelector(ready, { timeout: 30_000 });
    return page;
  }

  /** Screenshots the page at the desktop and phone sizes, then closes it with a clean console. */
  async function shoot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: `${SHOTS}${name}-1280.png` });
    await page.setViewportSize(PHONE);
    await page.waitForTimeout(150);
    await page.screenshot({ path: `${SHOTS}${name}-390.png` });
    // Nothing scrolls sideways on a phone.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await page.setViewportSize(DESKTOP);
  }

  async function close(page: Page): Promise<void> {
    const seen = problems.get(page) ?? [];
    await page.close();
    expect(seen).toEqual([]);
  }

  const position = (page: Page) => page.locator('[data-testid="position"]').textContent();

  it("walks client → db under the overlay: steps 1…n, arrow keys, the device and link, a packet in a packet", async () => {
    const page = await open(
      "?scenario=two-nodes&provider=overlay&from=client&to=db",
      '[data-testid="outcome"]',
    );
    await expect.poll(() => page.locator('[data-testid="outcome"] strong').textContent()).toBe("reached");
    const numbers = await page.locator("ol.hops .n").allTextContents();
    expect(numbers).toEqual(numbers.map((_, i) => String(i + 1)));
    expect(await position(page)).toBe(`step 1 of ${numbers.length}`);
    expect(await page.locator(".box.current").getAttribute("data-box")).toBe("ns:client");
    await page.keyboard.press("ArrowRight");
    expect(await position(page)).toBe(`step 2 of ${numbers.length}`);
    await page.keyboard.press("ArrowLeft");
    expect(await position(page)).toBe(`step 1 of ${numbers.length}`);

    // The encapsulation: only flannel.1 on node1 is current, the packet is drawn inside another.
    await page.locator('button.hop[data-hop="encap"]').first().click();
    expect(
      await page.locator(".box.current").evaluateAll((els) => els.map((e) => e.getAttribute("data-box"))),
    ).toEqual(["dev:node1:flannel.1"]);
    expect(await page.locator('[data-testid="packet"].encapsulated rect').count()).toBe(2);
    const outer = page.locator(".header-group.outer > ul > li");
    expect(
      await outer.evaluateAll((els) => els.map((e) => [e.getAttribute("data-kind"), e.className])),
    ).toEqual([
      ["ipv4", "added"],
      ["udp", "added"],
      ["vxlan", "added"],
    ]);
    await shoot(page, "walk-encap");

    // Moving on from the encap step crosses node1 → segment: that link is drawn with its direction.
    await page.keyboard.press("ArrowRight");
    await page.waitForSelector('[data-testid="active-link"]');
    expect(await page.locator('[data-testid="active-link"]').getAttribute("marker-end")).toBe("url(#arrow)");
    expect(await page.locator(".edge.crossed").count()).toBeGreaterThan(0);

    // The decapsulation shows the outer headers as taken off.
    await page.locator('button.hop[data-hop="decap"]').first().click();
    expect(
      await page
        .locator(".header-group.removed li")
        .evaluateAll((els) => els.map((e) => e.getAttribute("data-kind"))),
    ).toEqual(["ethernet", "ipv4", "udp", "vxlan"]);
    expect(await page.locator(".box.current").getAttribute("data-box")).toBe("dev:node2:flannel.1");
    await shoot(page, "walk-decap");

    // Play runs the walk on its own, smoothly; pause stops it.
    await page.getByRole("button", { name: "first step" }).click();
    await page.getByRole("button", { name: "play", exact: true }).click();
    const fps = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          let frames = 0;
          const start = performance.now();
          const tick = (now: number) => {
            frames++;
            if (now - start < 1000) requestAnimationFrame(tick);
            else resolve((frames * 1000) / (now - start));
          };
          requestAnimationFrame(tick);
        }),
    );
    console.log(`walk animation: ${fps.toFixed(1)} frames per second`);
    expect(fps).toBeGreaterThan(50);
    await expect.poll(() => position(page)).not.toBe(`step 1 of ${numbers.length}`);
    await page.getByRole("button", { name: "pause", exact: true }).click();
    const paused = await position(page);
    await page.waitForTimeout(1200);
    expect(await position(page)).toBe(paused);
    await page.getByLabel("speed").selectOption("4");
    await close(page);
  }, 60_000);

  it("marks where a walk fails, and shows DNAT as before → after", async () => {
    const page = await open(
      "?scenario=two-nodes&provider=docker-bridge&from=client&to=db",
      '[data-testid="outcome"]',
    );
    await expect
      .poll(() => page.locator('[data-testid="outcome"] strong').textContent())
      .toBe("wrong-destination");
    expect(await page.locator('[data-testid="failure"] text').textContent()).toBe("wrong destination");
    await page.getByRole("button", { name: "last step" }).click();
    await shoot(page, "walk-failure");
    await page.goto(`${url}?scenario=service&provider=cbr0-host-gw&from=client&to=svc%2Fweb`);
    await page.locator('button.hop[data-hop="nat"]').first().click();
    expect(await page.locator(".headers .nat del").first().textContent()).toBe("10.96.0.10");
    expect(await page.locator(".headers .nat ins").first().textContent()).toMatch(/^10\.0\.\d\.\d+$/);
    await shoot(page, "walk-nat");
    await close(page);
  }, 60_000);

  it("traces the two-node scenario's client → db under each provider, showing the hops", async () => {
    const page = await open("?scenario=two-nodes");
    const expected: Record<string, { outcome: string; hop: string }> = {
      "docker-bridge": { outcome: "wrong-destination", hop: "arp-request" },
      "cbr0-host-gw": { outcome: "reached", hop: "forward" },
      overlay: { outcome: "reached", hop: "encap" },
    };
    for (const [provider, want] of Object.entries(expected)) {
      await page.getByRole("button", { name: provider, exact: true }).click();
      await page.waitForFunction((p) => new URLSearchParams(location.search).get("provider") === p, provider);
      await page.waitForSelector('[data-box="ns:client"]');
      if (!(await page.locator('[data-testid="outcome"]').count()) || !(await page.url()).includes("to=db")) {
        await page.locator('[data-box="ns:client"]').click();
        await page.locator('[data-box="ns:db"]').click();
      }
      await expect
        .poll(() => page.locator('[data-testid="outcome"] strong').textContent())
        .toBe(want.outcome);
      expect(await page.locator(`button.hop[data-hop="${want.hop}"]`).count()).toBeGreaterThan(0);
      // The selection of pods survives the provider switch: it lives in the URL.
      expect(new URL(page.url()).searchParams.get("from")).toBe("client");
      await page.locator(`button.hop[data-hop="${want.hop}"]`).first().click();
      expect(await page.locator(".headers li").count()).toBeGreaterThan(0);
      await shoot(page, `trace-${provider}`);
    }
    await close(page);
  }, 60_000);

  it("chooses a scenario with its control, and traces to a service and to an outside host from the pickers", async () => {
    const page = await open("?scenario=single-pod");
    await page.getByLabel("Scenario").selectOption("service");
    await page.waitForSelector('[data-box="ns:web-a"]');
    await page.getByLabel("source").selectOption("client");
    await page.getByLabel("destination").selectOption("svc/web");
    await page.getByRole("button", { name: "Trace", exact: true }).click();
    await expect
      .poll(() => page.locator('[data-testid="outcome"]').textContent())
      .toMatch(/^reached: connected: SYN-ACK from 10\.0\.\d\.\d:8080/);
    expect(await page.locator('button.hop[data-hop="nat"]').count()).toBeGreaterThan(0); // DNAT there, un-DNAT back
    await page.getByLabel("source").selectOption("client");
    await page.getByLabel("destination").selectOption("outside");
    await page.getByRole("button", { name: "Trace", exact: true }).click();
    await expect
      .poll(() => page.locator('[data-testid="outcome"]').textContent())
      .toBe("reached: echo reply from 10.100.0.50 (outside)");
    await shoot(page, "service");
    await close(page);
  }, 60_000);

  it("shows a node's tables in ip route's shape", async () => {
    const page = await open("?scenario=two-nodes&provider=cbr0-host-gw");
    await page.locator('[data-box="ns:node1"]').click();
    await expect
      .poll(() => page.locator(".inspector pre").first().textContent())
      .toContain("10.0.2.0/24 via 10.100.0.3 dev eth0");
    await shoot(page, "inspector");
    await close(page);
  });

  it("compares the providers: reachability matrices with the reason on hover, and charts", async () => {
    const page = await open("?scenario=two-nodes&view=compare", "table.heatmap");
    const captions = await page.locator("table.heatmap caption").allTextContents();
    expect(captions).toEqual([
      "docker-bridge: 14/21 reachable",
      "cbr0-host-gw: 21/21 reachable",
      "cbr0-host-gw (routes on the gateway): 21/21 reachable",
      "overlay: 21/21 reachable",
    ]);
    const failing = page.locator('table.heatmap[data-provider="docker-bridge"] .cell.fail').first();
    expect(await failing.getAttribute("title")).toMatch(/which also holds 172\.17\.0\.2/);
    expect(await page.locator("canvas").count()).toBe(4);
    await shoot(page, "compare");
    await close(page);
  }, 60_000);

  it("shows a broken scenario's error inline, at its line, with the CLI's words", async () => {
    const page = await open("?scenario=two-nodes");
    await page.getByRole("button", { name: "Edit or paste YAML" }).click();
    const yaml = await page.locator("#yaml").inputValue();
    await page.locator("#yaml").fill(yaml.replace("address: 10.100.0.3", "address: 10.100.0.300"));
    await page.getByRole("button", { name: "Validate and build" }).click();
    const error = page.locator(".inline-error");
    await expect
      .poll(() => error.first().textContent())
      .toBe('pasted.yaml: nodes[1].address: "10.100.0.300" is not an IPv4 address');
    const line =
      yaml.split("\n").findIndex((l) => l.includes("address: 10.100.0.3") && !l.includes("10.100.0.30")) + 1;
    expect(await page.locator(".annotated li").first().getAttribute("value")).toBe(String(line));
    await shoot(page, "error");
    await close(page);
  });
});
