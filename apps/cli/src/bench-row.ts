/**
 * One `podnet bench` row measured in a process of its own (forked by `measureApart`): a row's peak
 * RSS is then its own cluster's. In one process, the clusters measured before still weighed in: V8
 * keeps the pages it grew to (a forced GC left a 2,000-node build's 427 MiB in place), and a
 * provider measured second at 5,000 nodes read 2,018 MiB against 1,032 alone.
 */
import { getProvider } from "@podnet/providers";
import type { Scenario } from "@podnet/cluster";
import { measure } from "./commands/bench.js";
import { parsePolicy } from "./options.js";

export interface RowJob {
  scenario: Scenario;
  provider: string;
  policy: string;
}

// The parent gone (Ctrl-C, a TERM), the row has no reader. A Ctrl-C on a terminal reaches the whole
// process group, this process too: it is the parent's to answer (stop its bar, exit 130), and this
// one dying of it first would race that answer with a "process ended" error. So a signal is ignored
// here, and the parent's end (the IPC channel closing) ends this process.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => {});
process.once("disconnect", () => process.exit(0));
process.once("message", (job: RowJob) => {
  measure(job.scenario, getProvider(job.provider), parsePolicy(job.policy)).then(
    (row) => process.send!({ row }, () => process.disconnect()),
    (error: Error) => process.send!({ error: error.message }, () => process.disconnect()),
  );
});
