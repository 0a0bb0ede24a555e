// What the sending socket is told of an ICMP error, as Linux tells it (icmp_err_convert in
// net/ipv4/icmp.c, __udp4_lib_err, tcp_v4_err): the kernel-side pins are lab's udp-soft-errors and
// nodeport-no-endpoints fixtures, verified on the kernel.
import { describe, expect, it } from "vitest";
import { socketOutcome, socketReason } from "../src/backend.js";

const unreachable = (type: number, code: number) =>
  ({ outcome: "unreachable", answer: { ttl: 63, icmp: { type, code } } }) as const;

describe("socketOutcome", () => {
  it("refuses TCP and UDP on a port unreachable, as ECONNREFUSED", () => {
    for (const protocol of ["tcp", "udp"] as const)
      expect(socketOutcome(protocol, unreachable(3, 3))).toBe("refused");
    expect(socketOutcome("icmp", unreachable(3, 3))).toBe("unreachable");
  });

  it("tells UDP nothing of a soft error (net, host, source route, by TOS; time exceeded): dropped", () => {
    for (const code of [0, 1, 5, 11, 12])
      expect(socketOutcome("udp", unreachable(3, code)), `code ${code}`).toBe("dropped");
    expect(socketOutcome("udp", unreachable(11, 0))).toBe("dropped");
  });

  it("tells UDP of the fatal ones (prohibited, protocol, fragmentation needed), and TCP of them all", () => {
    for (const code of [2, 4, 9, 10, 13])
      expect(socketOutcome("udp", unreachable(3, code)), `code ${code}`).toBe("unreachable");
    for (const code of [0, 1, 13])
      expect(socketOutcome("tcp", unreachable(3, code)), `code ${code}`).toBe("unreachable");
    expect(socketOutcome("tcp", unreachable(11, 0))).toBe("unreachable");
  });

  it("leaves every other outcome as the walk found it", () => {
    for (const outcome of ["reached", "dropped", "refused", "wrong-destination"] as const)
      expect(socketOutcome("udp", { outcome })).toBe(outcome);
    expect(socketOutcome("udp", { outcome: "unreachable" })).toBe("unreachable");
  });

  it("says so in the reason where a UDP socket hears nothing of the path's error", () => {
    expect(socketReason("udp", unreachable(3, 1), "host unreachable at node1")).toBe(
      "host unreachable at node1 (an error a UDP socket is not told of: no answer, as far as it can tell)",
    );
    expect(socketReason("tcp", unreachable(3, 1), "host unreachable at node1")).toBe(
      "host unreachable at node1",
    );
    expect(socketReason("udp", unreachable(3, 3), "rejected")).toBe("rejected");
  });
});
