/** A namespace's tables in the shapes of ip route, ip neigh, bridge fdb and iptables-save. */
import type { NodeTables } from "@podnet/cluster";
import type { Snapshot } from "./protocol.js";
import { fdbLine, neighbourLine, nftText, routeLine } from "./tables.js";

/** Why a map box has no tables to show, or undefined when it has (every namespace has). */
export function inspectable(s: Snapshot, name: string): string | undefined {
  if (!name.startsWith("seg:")) return undefined;
  const segment = s.segments.find((x) => `seg:${x.name}` === name);
  if (!segment) return `${name.slice(4)} is not in this scenario`;
  const members = [
    ...s.nodes.filter((n) => n.segment === segment.name).map((n) => `node ${n.name} ${n.address}`),
    ...s.routers.flatMap((r) =>
      r.interfaces.filter((i) => i.segment === segment.name).map((i) => `router ${r.name} ${i.address}`),
    ),
    ...s.hosts.filter((h) => h.segment === segment.name).map((h) => `host ${h.name} ${h.address}`),
  ];
  return `Segment ${segment.name} (${segment.subnet}) is the underlay's switch: it forwards frames by MAC address and holds no routes, neighbours or NAT rules of its own. Click one of its members for theirs: ${members.join(", ")}.`;
}

function kindOf(s: Snapshot | undefined, name: string): string {
  if (!s) return "";
  if (s.nodes.some((n) => n.name === name)) return "node";
  if (s.routers.some((r) => r.name === name)) return "router";
  if (s.hosts.some((h) => h.name === name)) return "host";
  if (s.pods.some((p) => p.name === name)) return "pod";
  return "";
}

export function NodeInspector({
  name,
  tables,
  snapshot,
  onClose,
}: {
  name: string;
  tables: NodeTables | { none: string };
  snapshot?: Snapshot;
  onClose: () => void;
}) {
  const title = name.startsWith("seg:")
    ? `segment ${name.slice(4)}`
    : `${kindOf(snapshot, name)} ${name}`.trim();
  return (
    <section className="inspector" aria-label={`tables of ${title}`}>
      <h3>
        {title}{" "}
        <button type="button" className="close" onClick={onClose} aria-label="close the tables">
          ×
        </button>
      </h3>
      {"none" in tables ? (
        <p className="none">{tables.none}</p>
      ) : (
        <>
          <h4>ip route</h4>
          <pre>{tables.routes.map(routeLine).join("\n") || "(empty)"}</pre>
          <h4>ip neigh (permanent)</h4>
          <pre>{tables.neighbours.map(neighbourLine).join("\n") || "(none)"}</pre>
          <h4>bridge fdb (remote entries)</h4>
          <pre>{tables.fdb.map(fdbLine).join("\n") || "(none)"}</pre>
          <h4>iptables-save -t nat</h4>
          <pre>{tables.nat || "(no rules)"}</pre>
          <h4>iptables-save -t filter</h4>
          <pre>{tables.filter || "(no rules)"}</pre>
          {tables.nft && (
            <>
              <h4>nft list table ip kube-proxy</h4>
              <pre data-testid="nft">{nftText(tables.nft) || "(no table)"}</pre>
            </>
          )}
        </>
      )}
    </section>
  );
}
