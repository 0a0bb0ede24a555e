/// <reference lib="webworker" />
// The simulation runs here, off the page's thread: large scenarios build without freezing the UI.
import { ClusterRuntime, ScenarioError, loadScenario, nodeTables, runScenario } from "@podnet/cluster";
import { encodePacket, encodePcap } from "@podnet/core";
import { getProvider } from "@podnet/providers";
import type { Reply, Request } from "./protocol.js";
import { snapshotOf } from "./snapshot.js";

declare const self: DedicatedWorkerGlobalScope;
let runtime: ClusterRuntime | undefined;

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
      const tables = (await nodeTables(runtime))[req.node];
      if (!tables) throw new Error(`unknown node ${req.node}`);
      return { id: req.id, ok: true, tables };
    }
    case "compare": {
      const scenario = loadScenario(req.text, req.file);
      const results = [];
      for (const name of req.providers) {
        const { result } = await runScenario(scenario, getProvider(name));
        results.push({ ...result, tables: {} });
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
