/** What a first-time user needs beside the map: what to do, what each provider is, what the colours mean. */
import type { ProviderInfo } from "./protocol.js";

const BOXES: [string, string][] = [
  ["segment", "underlay segment (a switch)"],
  ["router", "router or outside host"],
  ["node", "node, holding its devices and pods"],
  ["device", "a node's device: eth0, the bridge, the VXLAN device"],
  ["service", "Service, with dashed links to its endpoints"],
  ["pod", "pod, with its containers and the ports they listen on"],
];

/** A tiny box drawn with the map's own classes, so the legend cannot drift from the map. */
function Swatch({ className }: { className: string }) {
  return <span className={`swatch ${className}`} aria-hidden="true" />;
}

export function Guide({ providers, open }: { providers: ProviderInfo[]; open: boolean }) {
  return (
    <details className="guide" open={open}>
      <summary>How to read this page</summary>
      <p>
        Click a pod to send a packet from it, then click where it should go (or choose both above, with a
        protocol and port). The walk then plays hop by hop: press play, or step with ← and →. Click a node,
        router or host for its routing, neighbour, FDB and NAT tables.
      </p>
      <h4>Providers</h4>
      <ul className="provider-lines">
        {providers.map((p) => (
          <li key={p.name}>
            <strong>{p.name}</strong>: {p.description}
          </li>
        ))}
      </ul>
      <h4>Legend</h4>
      <ul className="legend">
        {BOXES.map(([kind, words]) => (
          <li key={kind}>
            <Swatch className={`box ${kind}${kind === "node" ? " container" : ""}`} /> {words}
          </li>
        ))}
        <li>
          <Swatch className="box pod source" /> source <Swatch className="box pod destination" /> destination
        </li>
        <li>
          <Swatch className="box device current" /> where the packet is now
        </li>
        <li>
          <Swatch className="box router inspected" /> whose tables are open
        </li>
        <li>
          <Swatch className="box node refused" /> a node where the kernel refused an entry (listed above the
          map)
        </li>
        <li>
          <svg className="swatch" viewBox="0 0 30 18" aria-hidden="true">
            <line className="active-link" x1={2} y1={9} x2={28} y2={9} />
          </svg>{" "}
          the link it is crossing;{" "}
          <svg className="swatch" viewBox="0 0 30 18" aria-hidden="true">
            <line className="edge crossed" x1={2} y1={9} x2={28} y2={9} />
          </svg>{" "}
          links crossed before
        </li>
        <li>
          <svg className="swatch" viewBox="-16 -10 32 20" aria-hidden="true">
            <g className="packet">
              <rect className="inner" x={-13} y={-7} width={26} height={14} rx={3} />
            </g>
          </svg>{" "}
          the packet;{" "}
          <svg className="swatch" viewBox="-22 -14 44 28" aria-hidden="true">
            <g className="packet">
              <rect className="outer" x={-21} y={-13} width={42} height={26} rx={4} />
              <rect className="inner" x={-13} y={-7} width={26} height={14} rx={3} />
            </g>
          </svg>{" "}
          a packet inside a VXLAN packet
        </li>
        <li>
          <svg className="swatch" viewBox="-12 -12 24 24" aria-hidden="true">
            <g className="failure">
              <circle r={11} />
              <path d="M-5,-5 L5,5 M5,-5 L-5,5" />
            </g>
          </svg>{" "}
          where the packet was dropped or went wrong
        </li>
      </ul>
    </details>
  );
}
