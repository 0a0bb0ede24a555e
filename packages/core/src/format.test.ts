import { describe, expect, it } from "vitest";
import { formatHeader, headerJson, packetJson } from "./format.js";
import { ArpOp, EtherType, IpProtocol, TcpFlags, type Packet } from "./headers.js";
import { parseIpv4 } from "./ipv4.js";
import { parseMac } from "./mac.js";

describe("packets for JSON", () => {
  it("shows addresses as text and bytes as hex, every other field as it is", () => {
    const ethernet = {
      kind: "ethernet" as const,
      src: parseMac("0a:00:00:00:00:01"),
      dst: parseMac("ff:ff:ff:ff:ff:ff"),
      etherType: EtherType.IPV4,
    };
    const ipv4 = {
      kind: "ipv4" as const,
      tos: 0,
      id: 7,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: IpProtocol.TCP,
      src: parseIpv4("10.0.1.3"),
      dst: parseIpv4("10.0.2.2"),
      options: new Uint8Array([1, 1, 1, 0]),
    };
    const tcp = {
      kind: "tcp" as const,
      srcPort: 32768,
      dstPort: 80,
      seq: 1,
      ack: 0,
      flags: TcpFlags.SYN,
      window: 64240,
      urgent: 0,
      options: new Uint8Array([2, 4, 5, 0xb4]),
    };
    const packet: Packet = { headers: [ethernet, ipv4, tcp], payload: new Uint8Array([0, 15, 16, 255]) };
    expect(JSON.parse(JSON.stringify(packetJson(packet)))).toEqual({
      headers: [
        { ...ethernet, src: "0a:00:00:00:00:01", dst: "ff:ff:ff:ff:ff:ff" },
        { ...ipv4, src: "10.0.1.3", dst: "10.0.2.2", options: "01010100" },
        { ...tcp, options: "020405b4" },
      ],
      payloadLength: 4,
      payload: "000f10ff",
    });
    expect(
      headerJson({
        kind: "arp",
        op: ArpOp.REQUEST,
        senderMac: parseMac("0a:00:00:00:00:01"),
        senderIp: parseIpv4("10.0.1.3"),
        targetMac: 0,
        targetIp: parseIpv4("10.0.1.1"),
      }),
    ).toEqual({
      kind: "arp",
      op: 1,
      senderMac: "0a:00:00:00:00:01",
      senderIp: "10.0.1.3",
      targetMac: "00:00:00:00:00:00",
      targetIp: "10.0.1.1",
    });
  });
});

describe("headers as one line", () => {
  it("names a TCP segment's acknowledgement where its ACK flag is set, as tcpdump does", () => {
    const tcp = (flags: number) =>
      formatHeader({
        kind: "tcp",
        srcPort: 32768,
        dstPort: 80,
        seq: 1,
        ack: 4097,
        flags,
        window: 64240,
        urgent: 0,
      });
    expect(tcp(TcpFlags.SYN)).toBe("tcp 32768 > 80 [SYN] seq 1");
    expect(tcp(TcpFlags.SYN | TcpFlags.ACK)).toBe("tcp 32768 > 80 [SYN,ACK] seq 1 ack 4097");
  });
});
