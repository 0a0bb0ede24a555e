import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import type { Netlink } from "@podnet/netlink";
import { namespaceName } from "./netns-path.js";

/**
 * Names for one run's namespaces ("pn" + 6 hex chars + a suffix), so several runs never collide and
 * cleanup can find everything a run made. Link names stay the caller's: they live inside the
 * run's namespaces.
 */
export function runPrefix(): string {
  return `pn${randomBytes(3).toString("hex")}`;
}

/** Deletes every namespace whose name starts with `prefix`. */
export async function removeNamespaces(netlink: Netlink, prefix: string): Promise<string[]> {
  const mine = (await netlink.netns.list()).filter((n) => n.startsWith(prefix));
  for (const ns of mine) await netlink.netns.del(ns).catch(() => undefined);
  return mine;
}

/**
 * Removes the run's namespaces on Ctrl-C, SIGTERM and normal exit too. Returns a function that
 * uninstalls the handlers.
 */
export function cleanupOnExit(netlink: Netlink, prefix: string): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    void removeNamespaces(netlink, prefix).finally(() => {
      process.kill(process.pid, signal);
    });
  };
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((signal) => {
    const handler = () => {
      uninstall();
      onSignal(signal);
    };
    process.once(signal, handler);
    return [signal, handler] as const;
  });
  const uninstall = () => {
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
  };
  return uninstall;
}

/**
 * The name of the namespace this process runs in (as `ip netns exec NAME` puts it there), or "" when
 * it is not a named one (the host's own). The host API takes "" to mean "here".
 */
export function currentNamespace(): string {
  return namespaceName(statSync("/proc/self/ns/net")) ?? "";
}
