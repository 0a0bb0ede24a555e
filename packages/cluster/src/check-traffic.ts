/** The scenario check's traffic: each probe's origin and target exist once the events have happened. */
import { isIpv4, quoteInput as q } from "@podnet/core";
import type { CheckState, Path } from "./check-state.js";
import { noPortNamed, parseOrigin, parseTarget, routerSource, routerTarget } from "./target.js";
import { HEADLESS, headlessTarget } from "./schema.js";

/** Probes run after every event: they name what exists once the events have all happened. */
export function checkTraffic(check: CheckState): void {
  const after = check.s.events.length ? " after the scenario's events" : "";
  check.s.traffic.forEach((t, i) => {
    const path: Path = ["traffic", i];
    const from = parseOrigin(t.from);
    const pod = check.pods.get(from.name);
    if (!check.names.has(from.name)) {
      if (!check.unmadeName(from.name))
        check.fail([...path, "from"], `unknown pod, node or host ${q(from.name)}${after}`);
    } else if (from.container !== undefined) {
      if (!pod) check.fail([...path, "from"], `${from.name} is not a pod: it has no containers`);
      else if (!pod.containers.some((c) => c.name === from.container))
        check.fail(
          [...path, "from"],
          `pod ${from.name} has no container ${q(from.container)} (containers: ${pod.containers.map((c) => c.name).join(", ")})`,
        );
    } else if (check.names.get(from.name) === "router")
      check.fail([...path, "from"], routerSource(from.name));
    const target = parseTarget(t.to);
    if ("error" in target) return check.fail([...path, "to"], target.error);
    if (target.name.startsWith("svc/")) {
      const svc = check.serviceState.find(target.name.slice(4));
      if ("error" in svc) check.fail([...path, "to"], `${svc.error}${after}`);
      else if (svc.value.clusterIP === HEADLESS)
        check.fail([...path, "to"], headlessTarget(target.name.slice(4)));
      else if (target.portName !== undefined && !svc.value.ports.some((p) => p.name === target.portName))
        check.fail([...path, "to"], noPortNamed(target.name, target.portName, svc.value.ports));
    } else if (check.names.get(target.name) === "router")
      check.fail([...path, "to"], routerTarget(target.name));
    else if (!check.names.has(target.name) && !isIpv4(target.name) && !check.unmadeName(target.name))
      check.fail(
        [...path, "to"],
        `unknown target ${q(target.name)}${after} (a pod, node or host name, an address, or svc/<name>[.<namespace>])`,
      );
    if (
      t.protocol !== "icmp" &&
      target.port === undefined &&
      t.port === undefined &&
      !target.name.startsWith("svc/")
    )
      check.fail(
        [...path, "to"],
        `a ${t.protocol} probe needs a port: ${q(`${t.to}:<port>`)} or port: <port>`,
      );
    // A ping to "db:80" would report on db, not on port 80 (protocol defaults to icmp).
    const inTarget = target.port !== undefined || target.portName !== undefined;
    if (t.protocol === "icmp" && (inTarget || t.port !== undefined))
      check.fail(
        [...path, inTarget ? "to" : "port"],
        `ICMP has no ports: add protocol: tcp or udp, or name no port`,
      );
    if (target.portName !== undefined && t.port !== undefined)
      check.fail(
        [...path, "port"],
        `port ${t.port} and the port ${q(target.portName)} in ${q(t.to)}: name one`,
      );
    if (target.port !== undefined && t.port !== undefined && target.port !== t.port)
      check.fail([...path, "port"], `port ${t.port} contradicts the port in ${q(t.to)}`);
  });
}
