// Fuzzed scenarios through the loader and the runner: the only outcomes allowed are a result or a
// located ScenarioError. Each case has a deadline; a hang is a failure that names its seed.
// FUZZ_CASES sets how many (CI runs the default 3,000); FUZZ_SEED the first seed; FUZZ_DEBUG=1 prints
// each rejection, to see which checks the generator reaches. The worker runs the built packages.
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { fuzzCase } from "./fuzz/generate.js";

const CASES = Number(process.env.FUZZ_CASES ?? 3000);
const FIRST_SEED = Number(process.env.FUZZ_SEED ?? 1);
const DEADLINE_MS = 15_000;

interface Outcome {
  id: number;
  ms: number;
  kind: "ran" | "rejected" | "crash";
  error?: string;
  file?: string;
  issues?: { path: (string | number)[]; message: string; line?: number; column?: number }[];
}

/** A plain Node worker on the built packages (vitest's own resolve conditions would pick the sources). */
function startWorker(): Worker {
  return new Worker(new URL("./fuzz/worker.mjs", import.meta.url), { execArgv: [] });
}

describe("fuzzed scenarios", () => {
  it(`${CASES} cases: a result or a located scenario error, never a crash or a hang`, async () => {
    const counts = { ran: 0, rejected: 0 };
    const failures: string[] = [];
    let slowest = { ms: 0, seed: 0 };
    let worker = startWorker();
    try {
      for (let seed = FIRST_SEED; seed < FIRST_SEED + CASES && failures.length < 5; seed++) {
        const text = fuzzCase(seed);
        const outcome = await new Promise<Outcome | undefined>((ok) => {
          const timer = setTimeout(() => ok(undefined), DEADLINE_MS);
          worker.once("message", (m: Outcome) => (clearTimeout(timer), ok(m)));
          worker.postMessage({ id: seed, text, provider: seed });
        });
        if (!outcome) {
          failures.push(`seed ${seed}: no answer after ${DEADLINE_MS} ms\n${text}`);
          await worker.terminate();
          worker = startWorker();
          continue;
        }
        if (outcome.ms > slowest.ms) slowest = { ms: outcome.ms, seed };
        if (outcome.kind === "crash")
          failures.push(
            `seed ${seed}: ${outcome.error!.split("\n").slice(0, 4).join("\n")}` +
              (failures.length ? "" : `\n--- scenario ---\n${text}`),
          );
        else if (outcome.kind === "rejected") {
          counts.rejected++;
          if (process.env.FUZZ_DEBUG)
            console.log(outcome.issues!.map((i) => i.message.replace(/[0-9.]+/g, "N")).join(" | "));
          const unlocated = outcome.issues!.filter(
            (i) => i.line === undefined || outcome.file !== "fuzz.yaml",
          );
          if (!outcome.issues!.length || unlocated.length)
            failures.push(`seed ${seed}: rejection without a line: ${JSON.stringify(unlocated)}\n${text}`);
        } else counts.ran++;
      }
    } finally {
      await worker.terminate();
    }
    expect(failures).toEqual([]);
    // The generator must exercise both sides: a fuzzer that only produces garbage proves nothing.
    expect(counts.ran).toBeGreaterThan(CASES * 0.1);
    expect(counts.rejected).toBeGreaterThan(CASES * 0.2);
    console.log(
      `fuzz: ${counts.ran} ran, ${counts.rejected} rejected; slowest seed ${slowest.seed} ${Math.round(slowest.ms)} ms`,
    );
  }, 600_000);
});
