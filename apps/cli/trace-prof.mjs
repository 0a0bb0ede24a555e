import { readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { ClusterRuntime, loadScenario } from "@podnet/cluster";
import { getProvider } from "@podnet/providers";
const [nodes, provider, mode] = [Number(process.argv[2]), process.argv[3], process.argv[4] ?? "random"];
const scenario = loadScenario(readFileSync("/work/main/scenarios/large.yaml", "utf8"), "large.yaml", { nodes });
const rt = await ClusterRuntime.build(scenario, getProvider(provider), {});
await rt.runEvents();
const pods = [...rt.pods.keys()];
const prof = !process.env.NOPROF; const session = new Session(); if (prof) { session.connect();
await session.post("Profiler.enable"); await session.post("Profiler.start"); }
let traces = 0; const t0 = performance.now();
for (let i = 0; performance.now() - t0 < 2000; i++) {
  const a = mode === "warm" ? pods[0] : pods[(i * 7919) % pods.length];
  const b = mode === "warm" ? pods[pods.length - 1] : pods[(i * 104729 + 1) % pods.length];
  if (a === b) continue;
  rt.trace(a, b, { protocol: "icmp" }); traces++;
}
const rate = traces / ((performance.now() - t0) / 1000);
if (prof) { const { profile } = await session.post("Profiler.stop");
writeFileSync("/tmp/trace.cpuprofile", JSON.stringify(profile)); }
console.log(mode, nodes, provider, Math.round(rate), "traces/s");
