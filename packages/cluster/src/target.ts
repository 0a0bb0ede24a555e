/**
 * Probe endpoints as users write them — `web`, `web/nginx`, `svc/db:5432`, `10.0.2.5:80` — parsed in
 * one place, so the scenario checker, the runtime and the CLI agree on what a port is.
 */
import { quoteInput as q } from "@podnet/core";

export interface TargetText {
  /** A pod, node or host name, `svc/<name>`, or an address. */
  name: string;
  port?: number;
}

/**
 * Parses `<name>[:port]`; returns a message instead when the port is not 1-65535, or when the text is
 * an IPv6 address (two colons or more: no name or IPv4 address holds one), which podnet does not model.
 */
export function parseTarget(text: string): TargetText | { error: string } {
  const colon = text.lastIndexOf(":");
  if (text.indexOf(":") !== colon)
    return {
      error: `${q(text)} is an IPv6 address: podnet's clusters are IPv4 only (dual-stack is not modelled yet)`,
    };
  if (colon < 0) return text ? { name: text } : { error: "empty target" };
  const name = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (!name) return { error: `${q(text)} has a port but no target` };
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    return { error: `${q(port)} in ${q(text)} is not a port (1-65535)` };
  return { name, port: Number(port) };
}

/** Splits `pod/container`; a name without a container is the pod (or node, or host) itself. */
export function parseOrigin(text: string): { name: string; container?: string } {
  const slash = text.indexOf("/");
  return slash < 0 ? { name: text } : { name: text.slice(0, slash), container: text.slice(slash + 1) };
}
