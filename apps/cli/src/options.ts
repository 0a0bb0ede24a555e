/** Options several commands share, parsed and checked in one place. */
import { Option } from "commander";
import type { NetworkProvider } from "@podnet/cni";
import { PROXY_NAMES, SCENARIO_LIMITS, type ProxyName, type ScenarioScale } from "@podnet/cluster";
import { POLICY_ENGINES, policyEngine, type PolicyEngine } from "@podnet/policy";
import { getProvider, providerNames } from "@podnet/providers";
import { UsageError } from "./errors.js";

/** The providers compared by default: every one but the variants that differ only in a port. */
export const providersOption = () =>
  new Option("--providers <names>", "comma-separated providers").default(
    providerNames.filter((n) => !n.endsWith("-4789")).join(","),
  );

/**
 * A comma-separated option's entries, trimmed: every option that takes a list reads it here, so
 * that an empty entry ("a,", "a,,b") and an entry named twice are refused alike, with the option.
 */
export function commaList(option: string, list: string, noun: string, choices?: readonly string[]): string[] {
  const entries = list.split(",").map((n) => n.trim());
  if (entries.every((n) => !n))
    throw new UsageError(
      `${option}: ${JSON.stringify(list)} names no ${noun}${choices ? ` (${choices.join(", ")})` : ""}`,
    );
  const empty = entries.findIndex((n) => !n);
  if (empty >= 0)
    throw new UsageError(
      `${option}: ${JSON.stringify(list)} has an empty entry (the ${ordinal(empty + 1)} of ${entries.length})`,
    );
  const twice = entries.find((n, i) => entries.indexOf(n) !== i);
  if (twice !== undefined) throw new UsageError(`${option}: ${JSON.stringify(twice)} is named twice`);
  return entries;
}

const ordinal = (n: number) =>
  n % 100 >= 11 && n % 100 <= 13 ? `${n}th` : `${n}${["th", "st", "nd", "rd"][n % 10] ?? "th"}`;

export function parseProviders(
  list: string,
  /** The flag that gave `list`, for a message about it. */
  option = "--providers",
): { name: string; provider: NetworkProvider }[] {
  return commaList(option, list, "provider", providerNames).map((name) => ({
    name,
    provider: getProvider(name),
  }));
}

/** An integer option in [min, max], refused with the option's name otherwise. */
export const integerIn =
  (option: string, what: string, min: number, max: number) =>
  (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < min || n > max)
      throw new UsageError(`${option}: ${JSON.stringify(value)} is not ${what} (${min}-${max})`);
    return n;
  };

export const jsonOption = (shape: string) =>
  new Option("--json", `machine-readable output${shape ? ` (${shape})` : ""}`);

/** `--nodes` and `--pods-per-node`: a generated scenario (`large`) at another size. */
export const nodesOption = () =>
  new Option("--nodes <n>", "resize a generated scenario: this many nodes").argParser(
    integerIn("--nodes", "a node count", 1, SCENARIO_LIMITS.nodes),
  );

export const podsPerNodeOption = () =>
  new Option("--pods-per-node <n>", "resize a generated scenario: this many pods per node").argParser(
    integerIn("--pods-per-node", "a pod count", 0, 250),
  );

/** How many namespaces a lab may make (@podnet/lab's MAX_NAMESPACES by default: 1000). */
export const maxNamespacesOption = () =>
  new Option(
    "--max-namespaces <n>",
    "the most network namespaces the lab may make on this machine (default 1000)",
  ).argParser(integerIn("--max-namespaces", "a namespace count", 1, 1_000_000));

export type ScaleOpts = { nodes?: number; podsPerNode?: number };

export function scaleOf(opts: ScaleOpts): ScenarioScale {
  return {
    ...(opts.nodes !== undefined ? { nodes: opts.nodes } : {}),
    ...(opts.podsPerNode !== undefined ? { podsPerNode: opts.podsPerNode } : {}),
  };
}

/** `--proxy`: kube-proxy's mode for the Services; several, comma-separated, where a command compares. */
export const proxyOption = (several: boolean) =>
  new Option(
    "--proxy <name>",
    `kube-proxy's mode for Services: ${PROXY_NAMES.join(" or ")}${several ? " (comma-separated: each one, side by side)" : ""}; default: the scenario's proxy, else iptables`,
  );

/** The proxies `--proxy` names (undefined: the scenario's own), each once; one only unless `several`. */
export function parseProxies(list: string | undefined, several = true): (ProxyName | undefined)[] {
  if (list === undefined) return [undefined];
  const names = commaList("--proxy", list, "proxy", PROXY_NAMES);
  const bad = names.find((n) => !(PROXY_NAMES as string[]).includes(n));
  if (bad !== undefined)
    throw new UsageError(`--proxy: ${JSON.stringify(bad)} is not a proxy (${PROXY_NAMES.join(", ")})`);
  if (!several && names.length > 1) throw new UsageError(`--proxy: one proxy, not ${JSON.stringify(list)}`);
  return names as ProxyName[];
}

export { withProxy } from "@podnet/cluster";

/** `--policy`: the NetworkPolicy engine composed with the provider; several where a command compares. */
export const policyOption = (several = false) =>
  several
    ? new Option(
        "--policy <engines>",
        `NetworkPolicy engine on every node: ${POLICY_ENGINES.map((e) => e.name).join(" or ")} (comma-separated: each one, side by side)`,
      ).default("none")
    : new Option("--policy <engine>", "NetworkPolicy engine on every node")
        .choices(POLICY_ENGINES.map((e) => e.name))
        .default("none");

/** The engines a comma-separated `--policy` names, each once. */
export function parsePolicies(list: string): PolicyEngine[] {
  return commaList("--policy", list, "policy engine").map(parsePolicy);
}

export function parsePolicy(name: string): PolicyEngine {
  const engine = policyEngine(name);
  if (!engine)
    throw new UsageError(
      `--policy: ${JSON.stringify(name)} is no policy engine (${POLICY_ENGINES.map((e) => e.name).join(", ")})`,
    );
  return engine;
}
