/**
 * Progress on stderr for builds large enough to keep a user waiting. A build is one long run of
 * microtasks, so signals would wait for its end: every callback here also lets the event loop turn
 * now and then, which is what makes Ctrl-C work mid-build and lets the bar restore line wrap.
 */
import cliProgress from "cli-progress";

/** Below this many nodes, pods and Services a build takes well under a second: no bar. */
const SHOW_FROM = 2000;
/** How often (in built objects) the event loop gets a turn. */
const YIELD_EVERY = 200;

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Lets the event loop turn every YIELD_EVERY objects, and draws nothing. */
export const yieldingProgress = (done: number) => (done % YIELD_EVERY === 0 ? turn() : undefined);

/** Stops bars that turned line wrap off, then exits as a shell expects after Ctrl-C or a TERM. */
const bars = new Set<cliProgress.SingleBar>();
function onSignal(signal: NodeJS.Signals): void {
  for (const bar of bars) bar.stop();
  process.exit(signal === "SIGINT" ? 130 : 143);
}

/**
 * A progress bar on a terminal; stops itself when done, and on Ctrl-C restores the terminal and exits
 * — unless `exitOnSignal` is false, for work that must clean up first and then stops the bar itself.
 */
export function progressBar(
  format: string,
  total: number,
  { exitOnSignal = true } = {},
): cliProgress.SingleBar | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar(
    { format, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  // The handler goes in before the bar draws: a user (or a test) may press Ctrl-C the moment it shows.
  if (exitOnSignal) {
    if (!bars.size) process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
    bars.add(bar);
  }
  bar.start(total, 0);
  return bar;
}

export function stopBar(bar: cliProgress.SingleBar | undefined): void {
  if (!bar) return;
  bar.stop();
  bars.delete(bar);
  if (!bars.size) process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
}

/**
 * An `onProgress` for ClusterRuntime.build (or any long run of steps, counted in `unit`): a bar for
 * large builds, and a turn of the loop.
 */
export function buildProgress(
  label: string,
  unit = "nodes, pods and Services",
): (done: number, total: number) => Promise<void> | undefined {
  let bar: cliProgress.SingleBar | undefined;
  return (done, total) => {
    if (total >= SHOW_FROM && done === 1)
      bar = progressBar(`${label} [{bar}] {value}/{total} ${unit}`, total);
    if (bar && (done % 100 === 0 || done === total)) bar.update(done);
    if (done === total) stopBar(bar);
    return yieldingProgress(done);
  };
}
