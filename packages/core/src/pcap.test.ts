import { requireSystem, tsharkFields } from "@podnet/testing";
import { describe, expect, it } from "vitest";
import { decodePacket, encodePacket } from "./codec.js";
import {
  ArpOp,
  EtherType,
  IcmpType,
  IpProtocol,
  TcpFlags,
  type Header,
  type Ipv4Header,
  type Packet,
} from "./headers.js";
import { parseIpv4 } from "./ipv4.js";
import { parseMac } from "./mac.js";
import { decodePcap, encodePcap, LINKTYPE_ETHERNET } from "./pcap.js";
import { decodePcapng, encodePcapng } from "./pcapng.js";

function ipv4(src: string, dst: string, protocol: number, ttl = 64): Ipv4Header {
  return {
    kind: "ipv4",
    tos: 0,
    id: 0x1234,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl,
    protocol,
    src: parseIpv4(src),
    dst: parseIpv4(dst),
  };
}
const eth = (src: string, dst: string, etherType: number): Header => ({
  kind: "ethernet",
  src: parseMac(src),
  dst: parseMac(dst),
  etherType,
});

/** Pod 10.244.1.2 pings pod 10.244.2.2 through flannel.1: node 192.168.50.1 -> 192.168.50.2, VNI 1, port 8472. */
const vxlanPing: Packet = {
  headers: [
    eth("0a:00:00:00:00:01", "0a:00:00:00:00:02", EtherType.IPV4),
    ipv4("192.168.50.1", "192.168.50.2", IpProtocol.UDP),
    { kind: "udp", srcPort: 51234, dstPort: 8472 },
    { kind: "vxlan", vni: 1 },
    eth("f6:76:92:87:7d:63", "96:fe:d6:d5:45:cf", EtherType.IPV4),
    ipv4("10.244.1.2", "10.244.2.2", IpProtocol.ICMP, 63),
    { kind: "icmp", type: IcmpType.ECHO_REQUEST, code: 0, identifier: 7, sequence: 1 },
  ],
  payload: new TextEncoder().encode("podnet ping payload 0123456789"),
};
const tcpSyn: Packet = {
  headers: [
    eth("0a:00:00:00:00:01", "0a:00:00:00:00:02", EtherType.IPV4),
    ipv4("10.0.1.2", "10.0.2.2", IpProtocol.TCP),
    {
      kind: "tcp",
      srcPort: 40000,
      dstPort: 80,
      seq: 1000,
      ack: 0,
      flags: TcpFlags.SYN,
      window: 64240,
      urgent: 0,
    },
  ],
  payload: new Uint8Array(),
};
const arpRequest: Packet = {
  headers: [
    eth("0a:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", EtherType.ARP),
    {
      kind: "arp",
      op: ArpOp.REQUEST,
      senderMac: parseMac("0a:00:00:00:00:01"),
      senderIp: parseIpv4("10.100.0.2"),
      targetMac: 0,
      targetIp: parseIpv4("10.100.0.3"),
    },
  ],
  payload: new Uint8Array(),
};

describe("pcap files", () => {
  it("round-trip through our own reader", () => {
    const frames = [vxlanPing, tcpSyn, arpRequest].map(encodePacket);
    const file = decodePcap(
      encodePcap(frames.map((data, i) => ({ timestampMicros: 1_700_000_000_000_000 + i * 1500, data }))),
    );
    expect(file.linkType).toBe(LINKTYPE_ETHERNET);
    expect(file.records.map((r) => r.data)).toEqual(frames);
    expect(file.records[1]!.timestampMicros).toBe(1_700_000_000_001_500);
    expect(decodePacket(file.records[0]!.data).headers.map((h) => h.kind)).toEqual([
      "ethernet",
      "ipv4",
      "udp",
      "vxlan",
      "ethernet",
      "ipv4",
      "icmp",
    ]);
  });
});

const system = requireSystem({ tools: ["tshark"] });

describe.skipIf(system.skip)("pcap files decoded by the real tshark", () => {
  const tshark = (packets: Packet[], fields: string[]): string[][] =>
    tsharkFields(
      system.paths.tshark!,
      encodePcap(
        packets.map((p, i) => ({ timestampMicros: 1_700_000_000_000_000 + i, data: encodePacket(p) })),
      ),
      fields,
      ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"],
    );

  it("decodes ICMP in VXLAN in UDP/IPv4/Ethernet, a TCP SYN and an ARP request with good checksums", () => {
    const rows = tshark(
      [vxlanPing, tcpSyn, arpRequest],
      [
        "frame.protocols",
        "ip.src",
        "ip.dst",
        "ip.ttl",
        "ip.flags.df",
        "ip.checksum.status",
        "udp.dstport",
        "udp.checksum.status",
        "vxlan.vni",
        "icmp.type",
        "icmp.checksum.status",
        "icmp.ident",
        "icmp.seq",
        "tcp.flags.syn",
        "tcp.flags.ack",
        "tcp.dstport",
        "tcp.checksum.status",
        "arp.opcode",
        "arp.src.proto_ipv4",
        "arp.dst.proto_ipv4",
        "_ws.expert",
      ],
    );
    const [ping, syn, arp] = rows.map((cols) => ({
      protocols: cols[0],
      ipSrc: cols[1],
      ipDst: cols[2],
      ttl: cols[3],
      df: cols[4],
      ipChecksum: cols[5],
      udpPort: cols[6],
      udpChecksum: cols[7],
      vni: cols[8],
      icmpType: cols[9],
      icmpChecksum: cols[10],
      icmpId: cols[11],
      icmpSeq: cols[12],
      syn: cols[13],
      ack: cols[14],
      tcpPort: cols[15],
      tcpChecksum: cols[16],
      arpOp: cols[17],
      arpSrc: cols[18],
      arpDst: cols[19],
      expert: cols[20],
    }));
    // Outer and inner IP headers, in order.
    expect(ping!.protocols).toBe("eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:icmp:data");
    expect(ping!.ipSrc).toBe("192.168.50.1,10.244.1.2");
    expect(ping!.ipDst).toBe("192.168.50.2,10.244.2.2");
    expect(ping!.ttl).toBe("64,63");
    expect(ping!.ipChecksum).toBe("1,1"); // 1 = good, for both IP headers
    expect(ping!.udpPort).toBe("8472");
    expect(ping!.udpChecksum).toBe("1");
    expect(ping!.vni).toBe("1");
    expect(ping!.icmpType).toBe("8");
    expect(ping!.icmpChecksum).toBe("1");
    expect([ping!.icmpId, ping!.icmpSeq]).toEqual(["7", "1"]);
    expect(syn!.protocols).toBe("eth:ethertype:ip:tcp");
    expect([syn!.syn, syn!.ack, syn!.tcpPort, syn!.tcpChecksum, syn!.ipChecksum]).toEqual([
      "1",
      "0",
      "80",
      "1",
      "1",
    ]);
    expect(arp!.protocols).toBe("eth:ethertype:arp");
    expect([arp!.arpOp, arp!.arpSrc, arp!.arpDst]).toEqual(["1", "10.100.0.2", "10.100.0.3"]);
    for (const row of [ping, syn, arp]) expect(row!.expert ?? "").not.toMatch(/[Mm]alformed|[Bb]ad checksum/);
  });

  it("reports a corrupted checksum as bad, so the good verdict above is not vacuous", () => {
    const broken = {
      ...tcpSyn,
      headers: tcpSyn.headers.map((h) => (h.kind === "tcp" ? { ...h, checksum: 0xbeef } : h)),
    };
    const [row] = tshark([broken], ["tcp.checksum.status"]);
    expect(row![0]).toBe("0"); // 0 = bad
  });
});

describe("pcapng files", () => {
  const frames = [vxlanPing, tcpSyn, arpRequest].map(encodePacket);
  // Names of lengths that need no padding, and some that do (4-byte blocks).
  const interfaces = [{ name: "node1/eth0" }, { name: "pod-a/eth0" }, { name: "n2/flannel.1" }];
  const file = encodePcapng({
    interfaces,
    records: frames.map((data, i) => ({
      interface: i,
      timestampMicros: 1_700_000_000_000_000 + i * 1500,
      data,
    })),
  });

  it("round-trip through our own reader: interfaces named, frames on theirs, 64-bit microseconds", () => {
    const back = decodePcapng(file);
    expect(back.interfaces).toEqual(interfaces.map((i) => ({ ...i, linkType: LINKTYPE_ETHERNET })));
    expect(back.records.map((r) => [r.interface, r.timestampMicros, r.data])).toEqual(
      frames.map((data, i) => [i, 1_700_000_000_000_000 + i * 1500, data]),
    );
    expect(() => decodePcapng(file.subarray(0, 20))).toThrow(/pcapng/);
  });

  it.skipIf(system.skip)("is read by the real tshark: each frame on its named interface, at its time", () => {
    const rows = tsharkFields(system.paths.tshark!, file, [
      "frame.interface_name",
      "frame.time_epoch",
      "frame.protocols",
    ]);
    expect(rows).toEqual([
      ["node1/eth0", "1700000000.000000000", "eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:icmp:data"],
      ["pod-a/eth0", "1700000000.001500000", "eth:ethertype:ip:tcp"],
      ["n2/flannel.1", "1700000000.003000000", "eth:ethertype:arp"],
    ]);
  });
});
