// The original notes' two nodes (10.100.0.2 and 10.100.0.3), pods 10.0.1.2 and 10.0.2.2, with the
// pod packet carried in VXLAN between the nodes. Builds the frames, writes them as a pcap, and prints
// them decoded back from the wire bytes. Run: node packages/core/examples/vxlan-pcap.mjs [out.pcap]
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  ArpOp,
  EtherType,
  IcmpType,
  IpProtocol,
  MacGenerator,
  TcpFlags,
  VXLAN_LINUX_PORT,
  decodePacket,
  encodePacket,
  encodePcap,
  formatPacket,
  parseIpv4,
} from "@podnet/core";

const macs = new MacGenerator("podnet-demo");
const node1 = { ip: parseIpv4("10.100.0.2"), mac: macs.next(), vtep: macs.next() };
const node2 = { ip: parseIpv4("10.100.0.3"), mac: macs.next(), vtep: macs.next() };
const pod1 = { ip: parseIpv4("10.0.1.2"), mac: macs.next() };
const pod2 = { ip: parseIpv4("10.0.2.2"), mac: macs.next() };
const ip = (src, dst, protocol, ttl = 64) => ({
  kind: "ipv4",
  tos: 0,
  id: 1,
  dontFragment: true,
  moreFragments: false,
  fragmentOffset: 0,
  ttl,
  protocol,
  src,
  dst,
});

const frames = [
  // node1 asks who has node2's underlay address
  {
    headers: [
      { kind: "ethernet", src: node1.mac, dst: 0xffffffffffff, etherType: EtherType.ARP },
      {
        kind: "arp",
        op: ArpOp.REQUEST,
        senderMac: node1.mac,
        senderIp: node1.ip,
        targetMac: 0,
        targetIp: node2.ip,
      },
    ],
    payload: new Uint8Array(),
  },
  // pod1's ping, as it leaves pod1's eth0
  {
    headers: [
      { kind: "ethernet", src: pod1.mac, dst: node1.mac, etherType: EtherType.IPV4 },
      ip(pod1.ip, pod2.ip, IpProtocol.ICMP),
      { kind: "icmp", type: IcmpType.ECHO_REQUEST, code: 0, identifier: 1, sequence: 1 },
    ],
    payload: new Uint8Array(56),
  },
  // the same ping on the underlay, wrapped by flannel.1 (TTL decremented once by node1's routing)
  {
    headers: [
      { kind: "ethernet", src: node1.mac, dst: node2.mac, etherType: EtherType.IPV4 },
      ip(node1.ip, node2.ip, IpProtocol.UDP),
      { kind: "udp", srcPort: 40001, dstPort: VXLAN_LINUX_PORT },
      { kind: "vxlan", vni: 1 },
      { kind: "ethernet", src: node1.vtep, dst: node2.vtep, etherType: EtherType.IPV4 },
      ip(pod1.ip, pod2.ip, IpProtocol.ICMP, 63),
      { kind: "icmp", type: IcmpType.ECHO_REQUEST, code: 0, identifier: 1, sequence: 1 },
    ],
    payload: new Uint8Array(56),
  },
  // a TCP SYN from pod1 to pod2:80
  {
    headers: [
      { kind: "ethernet", src: pod1.mac, dst: node1.mac, etherType: EtherType.IPV4 },
      ip(pod1.ip, pod2.ip, IpProtocol.TCP),
      {
        kind: "tcp",
        srcPort: 43210,
        dstPort: 80,
        seq: 1,
        ack: 0,
        flags: TcpFlags.SYN,
        window: 64240,
        urgent: 0,
      },
    ],
    payload: new Uint8Array(),
  },
];

const out = resolve(process.argv[2] ?? "out/podnet-demo.pcap");
const wire = frames.map(encodePacket);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  encodePcap(wire.map((data, i) => ({ timestampMicros: Date.UTC(2021, 10, 26) * 1000 + i * 1000, data }))),
);
for (const [i, bytes] of wire.entries()) {
  const overhead = i === 2 ? `  (+${bytes.length - wire[1].length} bytes of encapsulation)` : "";
  console.log(`${String(bytes.length).padStart(4)} B  ${formatPacket(decodePacket(bytes))}${overhead}`);
}
console.log(`\nwrote ${wire.length} frames to ${out}`);
console.log(`inspect with: tshark -r ${out} -d udp.port==${VXLAN_LINUX_PORT},vxlan -V`);
