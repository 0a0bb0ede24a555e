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

  async function open(query = "", ready = "svg.topology"): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${url}${query}`);
    await page.waitForSelector(ready, { timeout: 30_000 });
    expect(errors).toEqual([]);
    return page;
  }

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
      expect(await page.locator(".headers li.changed").count()).toBeGreaterThan(0);
      await page.screenshot({ path: `${SHOTS}trace-${provider}.png` });
    }
    await page.close();
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
    await page.screenshot({ path: `${SHOTS}service.png` });
    await page.close();
  }, 60_000);

  it("shows a node's tables in ip route's shape", async () => {
    const page = await open("?scenario=two-nodes&provider=cbr0-host-gw");
    await page.locator('[data-box="ns:node1"]').click();
    await expect
      .poll(() => page.locator(".inspector pre").first().textContent())
      .toContain("10.0.2.0/24 via 10.100.0.3 dev eth0");
    await page.screenshot({ path: `${SHOTS}inspector.png` });
    await page.close();
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
    await page.screenshot({ path: `${SHOTS}compare.png` });
    await page.close();
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
    await page.screenshot({ path: `${SHOTS}error.png` });
    await page.close();
  });
});
