/**
 * The trace form above the map: everything `podnet trace` takes — the source (a pod, a container, a
 * node, an outside host), the target with an optional port (a pod, node, host, svc/<name>[.<namespace>], an address,
 * 127.0.0.1:<port> inside the source pod, <node>:<nodePort>), the protocol and the payload size.
 */
import { HEADLESS, ServiceIndex, headlessTarget, noPortNamed, parseTarget } from "@podnet/cluster";
import { useEffect, useState } from "react";
import type { Snapshot } from "./protocol.js";
import type { Pmtudisc, Protocol, ViewState } from "./url.js";

/** Where a packet can start: a pod, one of its containers, a node, an outside host. */
export function sources(s: Snapshot): string[] {
  return [
    ...s.pods.flatMap((p) => [p.name, ...p.containers.map((c) => `${p.name}/${c}`)]),
    ...s.nodes.map((n) => n.name),
    ...s.hosts.map((h) => h.name),
  ];
}

/** The Services a packet can be sent to: all but the headless ones, which have no address. */
const addressed = (s: Snapshot) => s.services.filter((x) => x.clusterIP !== HEADLESS);

/** Where it can go: a pod, a node, an outside host or router, a service. */
export function destinations(s: Snapshot): string[] {
  return [
    ...s.pods.map((p) => p.name),
    ...s.nodes.map((n) => n.name),
    ...s.hosts.map((h) => h.name),
    ...s.routers.map((r) => r.name),
    ...addressed(s).map((x) => `svc/${x.ref}`),
  ];
}

/** Suggestions for the target field: every destination, each service port and NodePort, loopback. */
export function suggestions(s: Snapshot): string[] {
  return [
    ...destinations(s),
    ...addressed(s).flatMap((x) => [
      ...x.ports.flatMap((p) => [`svc/${x.ref}:${p.port}`, ...(p.name ? [`svc/${x.ref}:${p.name}`] : [])]),
      ...x.ports.flatMap((p) => (p.nodePort ? s.nodes.map((n) => `${n.name}:${p.nodePort}`) : [])),
    ]),
    ...[...new Set(s.pods.flatMap((p) => p.ports))].map((port) => `127.0.0.1:${port}`),
  ];
}

/** Why a target text cannot be traced, in the CLI's words, or undefined when it can. */
export function targetProblem(s: Snapshot, to: string): string | undefined {
  const parsed = parseTarget(to.trim());
  if ("error" in parsed) return parsed.error;
  const name = parsed.name;
  if (name.startsWith("svc/")) {
    const index = new ServiceIndex<Snapshot["services"][number]>();
    for (const x of s.services) index.set(x.namespace, x.name, x);
    const found = index.find(name.slice(4));
    if ("error" in found) return found.error;
    if (found.value.clusterIP === HEADLESS)
      return headlessTarget(name.slice(4), found.value.endpoints.length);
    const { ports } = found.value;
    if (parsed.portName !== undefined && !ports.some((p) => p.name === parsed.portName))
      return noPortNamed(name, parsed.portName, ports);
    return undefined;
  }
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name) || destinations(s).includes(name)) return undefined;
  return `unknown target ${JSON.stringify(to)}: not a pod, node, host, svc/<name>[.<namespace>] or IPv4 address`;
}

export function Picker({
  label,
  name,
  value,
  options,
  onChange,
}: {
  label: string;
  name: string;
  value: string | undefined;
  options: string[];
  onChange: (v: string | undefined) => void;
}) {
  return (
    <label>
      {label}{" "}
      <select
        name={name}
        value={value ?? ""}
        onChange={(e) => onChange(e.target.value || undefined)}
        aria-label={name}
      >
        <option value="">choose…</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </label>
  );
}

export interface TraceRequest {
  from: string;
  to: string;
  protocol?: Protocol;
  size?: number;
  dontFragment?: boolean;
  events?: number;
  endpoint?: string;
  hooks?: boolean;
}

export function TraceBar({
  snapshot,
  state,
  update,
}: {
  snapshot: Snapshot;
  state: ViewState;
  update: (patch: Partial<ViewState>) => void;
}) {
  const [to, setTo] = useState(state.to ?? "");
  const [size, setSize] = useState(state.size !== undefined ? String(state.size) : "");
  useEffect(() => setTo(state.to ?? ""), [state.to]);
  useEffect(() => setSize(state.size !== undefined ? String(state.size) : ""), [state.size]);
  const problem = to ? targetProblem(snapshot, to) : undefined;
  const sizeProblem =
    size && !(/^\d+$/.test(size) && Number(size) <= 65000) ? "a number of bytes, 0 to 65000" : undefined;
  return (
    <form
      className="endpoints"
      aria-label="trace"
      onSubmit={(e) => {
        e.preventDefault();
        if (!state.from || !to || problem || sizeProblem) return;
        // A trace from the form is kube-proxy's random draw; the walk's Endpoint choice picks one.
        update({
          to: to.trim(),
          size: size ? Number(size) : undefined,
          step: undefined,
          endpoint: undefined,
        });
      }}
    >
      <Picker
        label="From"
        name="source"
        value={state.from}
        options={sources(snapshot)}
        onChange={(from) => update({ from, step: undefined })}
      />
      <label>
        To{" "}
        <input
          name="destination"
          aria-label="destination"
          list="targets"
          value={to}
          placeholder="pod, svc/name:port, 127.0.0.1:80…"
          aria-invalid={problem ? true : undefined}
          aria-describedby={problem ? "target-problem" : undefined}
          onChange={(e) => setTo(e.target.value)}
        />
        <datalist id="targets">
          {suggestions(snapshot).map((o) => (
            <option key={o} value={o} />
          ))}
        </datalist>
      </label>
      <label>
        Protocol{" "}
        <select
          name="protocol"
          value={state.proto ?? ""}
          onChange={(e) =>
            update({ proto: (e.target.value || undefined) as Protocol | undefined, step: undefined })
          }
        >
          <option value="">auto (ICMP; TCP with a port)</option>
          <option value="icmp">ICMP</option>
          <option value="tcp">TCP</option>
          <option value="udp">UDP</option>
        </select>
      </label>
      <label title="bytes after the ICMP/UDP/TCP header, as ping -s: the IP packet is 28 bytes more for ICMP and UDP, 40 for TCP">
        Payload{" "}
        <input
          name="size"
          className="size"
          inputMode="numeric"
          value={size}
          placeholder="default"
          aria-invalid={sizeProblem ? true : undefined}
          onChange={(e) => setSize(e.target.value)}
        />{" "}
        bytes
      </label>
      <label title="Don't-Fragment as ping -M: want sets DF on what fits the route and fragments the rest in the sender; do always sets DF (too big fails); dont never sets it (routers fragment)">
        DF{" "}
        <select
          name="pmtudisc"
          value={state.pmtudisc ?? ""}
          onChange={(e) =>
            update({ pmtudisc: (e.target.value || undefined) as Pmtudisc | undefined, step: undefined })
          }
        >
          <option value="">want (ping's default)</option>
          <option value="do">do</option>
          <option value="dont">dont</option>
        </select>
      </label>
      <label title="a step at every filter hook the packet passes (INPUT, FORWARD, OUTPUT), naming the rules or the policy that let it on, as podnet trace --hooks; otherwise only a hook that drops, rejects or translates is a step">
        <input
          type="checkbox"
          name="hooks"
          checked={state.hooks === true}
          onChange={(e) => update({ hooks: e.target.checked || undefined, step: undefined })}
        />{" "}
        every filter hook
      </label>
      <button type="submit" disabled={!state.from || !to || Boolean(problem) || Boolean(sizeProblem)}>
        Trace
      </button>
      {(problem ?? sizeProblem) && (
        <span className="form-problem" id="target-problem" role="alert">
          {problem ?? `payload: ${sizeProblem}`}
        </span>
      )}
      {!problem && !sizeProblem && (
        <span className="hint">
          {!state.from
            ? "Click a pod on the map to send from it, or choose one here."
            : !state.to
              ? "Now click the destination, or type it."
              : "Click a node, router or host for its tables."}
        </span>
      )}
    </form>
  );
}
