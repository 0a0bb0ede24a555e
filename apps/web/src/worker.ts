/// <reference lib="webworker" />
// The simulation runs here, off the page's thread: large scenarios build without freezing the UI.
import { ClusterRuntime, ScenarioError, loadScenario, runScenario, type NodeTables } from "@podnet/cluster";
import { encodePacket, encodePcap } from "@podnet/core";
import { getProvider, providerNames } from "@podnet/providers";
import type { Reply, Request } from "./protocol.js";
import { snapshotOf } from "./snapshot.js";

declare const self: DedicatedWorkerGlobalScope;
let runtime: ClusterRuntime | undefined;

/** The providers offered: overlay-4789 differs from overlay only in its UDP port. */
const OFFERED = providerNames.filter((n) => !n.endsWith("-4789"));

/**
 * A namespace's tables in the shape of nodeTables (which covers nodes only): routers, outside hosts and
 * pods have routes and neighbours too.
 */
async function tablesOf(rt: ClusterRuntime, ns: string): Promise<NodeTables> {
  return {
    routes: await rt.k.route.list(ns),
    neighbours: (await rt.k.neigh.list(ns)).filter((n) => n.state.includes("PERMANENT")),
    fdb: (await rt.k.fdb.list(ns)).filter((f) => f.dst),
    nat: await rt.k.iptables.save(ns, "nat"),
  };
}

async function handle(req: Request): Promise<Reply> {
  switch (req.type) {
    case "build": {
      runtime = await ClusterRuntime.build(loadScenario(req.text, req.file), getProvider(req.provider));
      await runtime.runEvents();
      return { id: req.id, ok: true, snapshot: await snapshotOf(runtime) };
    }
    case "trace": {
      if (!runtime) throw new Error("no scenario built");
      const trace = runtime.trace(req.from, req.to, req.protocol ? { protocol: req.protocol } : {});
      const frames = trace.hops.filter((h) => h.wire === "out" && h.packet.headers[0]?.kind === "ethernet");
      return {
        id: req.id,
        ok: true,
        trace,
        pcap: encodePcap(frames.map((h, i) => ({ timestampMicros: i, data: encodePacket(h.packet) }))),
      };
    }
    case "tables": {
      if (!runtime) throw new Error("no scenario built");
      return { id: req.id, ok: true, tables: await tablesOf(runtime, req.node) };
    }
    case "providers":
      return {
        id: req.id,
        ok: true,
        providers: OFFERED.map((name) => ({ name, description: getProvider(name).description })),
      };
    case "compare": {
      const scenario = loadScenario(req.text, req.file);
      const results = [];
      for (const name of OFFERED) {
        const { result } = await runScenario(scenario, getProvider(name));
        // Named as the buttons name them, so the same words appear everywhere on the page.
        results.push({ ...result, provider: name, tables: {} });
      }
      return { id: req.id, ok: true, results };
    }
  }
}

self.onmessage = async (event: MessageEvent<Request>) => {
  const req = event.data;
  try {
    self.postMessage(await handle(req));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    self.postMessage({
      id: req.id,
      ok: false,
      message,
      ...(error instanceof ScenarioError ? { issues: error.issues } : {}),
    } satisfies Reply);
  }
};
