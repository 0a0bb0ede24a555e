/**
 * Probe endpoints as users write them — `web`, `web/nginx`, `svc/db:5432`, `svc/web:http`, `10.0.2.5:80` — parsed in
 * one place, so the scenario checker, the runtime and the CLI agree on what a port is.
 */
import { quoteInput as q } from "@podnet/core";

export interface TargetText {
  /** A pod, node or host name, `svc/<name>[.<namespace>]`, or an address. */
  name: string;
  port?: number;
  /** A Service's port by its name (`svc/web:http`), as kubectl port-forward takes it. */
  portName?: string;
}

/** A Service port named in a target that the Service does not have: the check's and the runtime's words. */
export const noPortNamed = (target: string, portName: string, ports: readonly { name?: string }[]) =>
  `${target} has no port named ${q(portName)} (its ports: ${ports.map((p) => p.name || "(unnamed)").join(", ")})`;

/** A router as a probe's source or target: the words the scenario check and a trace share. */
export const routerSource = (name: string) => `${name} is a router: probes start from a pod, node or host`;
export const routerTarget = (name: string) => `${name} is a router: probe one of its addresses instead`;

/**
 * An IPv6 address as ping or curl take it: `::1`, `fe80::1%eth0`, `[2001:db8::1]:80` (groups of up to
 * four hex digits, at most one `::`, an IPv4 tail allowed). `web::` and `db:80:90` are not.
 */
function looksIpv6(text: string): boolean {
  const bracketed = /^\[([^\]]*)\](:\d*)?$/.exec(text);
  const address = (bracketed ? bracketed[1]! : text).split("%")[0]!;
  const halves = address.split("::");
  if (halves.length > 2 || !address.includes(":")) return false;
  const groups = halves.flatMap((h) => (h ? h.split(":") : []));
  if (halves.length === 1 ? groups.length !== 8 : groups.length > 7) return false;
  return groups.every(
    (g, i) => /^[0-9a-f]{1,4}$/i.test(g) || (i === groups.length - 1 && /^\d+\.\d+\.\d+\.\d+$/.test(g)),
  );
}

/**
 * Parses `<name>[:port]`; returns a message instead when the port is not 1-65535, when the text is an
 * IPv6 address (podnet does not model them), or `svc/` without a Service's name.
 */
export function parseTarget(text: string): TargetText | { error: string } {
  const colon = text.lastIndexOf(":");
  if (looksIpv6(text))
    return {
      error: `${q(text)} is an IPv6 address: podnet's clusters are IPv4 only (dual-stack is not modelled yet)`,
    };
  if (text === "svc/" || text.startsWith("svc/:"))
    return { error: `${q(text)}: svc/ needs a Service's name (svc/<name>)` };
  if (colon < 0) return text ? { name: text } : { error: "empty target" };
  const name = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (!name) return { error: `${q(text)} has a port but no target` };
  // A Service port's name is a DNS-1123 label with a letter (the API server's IANA_SVC_NAME).
  if (name.startsWith("svc/") && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(port) && /[a-z]/.test(port))
    return { name, portName: port };
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    return { error: `${q(port)} in ${q(text)} is not a port (1-65535)` };
  return { name, port: Number(port) };
}

/** Splits `pod/container`; a name without a container is the pod (or node, or host) itself. */
export function parseOrigin(text: string): { name: string; container?: string } {
  const slash = text.indexOf("/");
  return slash < 0 ? { name: text } : { name: text.slice(0, slash), container: text.slice(slash + 1) };
}
