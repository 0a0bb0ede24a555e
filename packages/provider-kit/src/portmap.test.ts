// The portmap plugin's reading of its config and previous result, on the simulator: what the
// reference decodes with Go's json is refused in Go's words, and a refused ADD writes nothing.
import { CniError } from "@podnet/cni";
import { SimKernel } from "@podnet/sim";
import { describe, expect, it } from "vitest";
import { portmapPlugin } from "./index.js";

const RESULT = { cniVersion: "1.0.0", ips: [{ address: "10.244.1.2/24" }] };

async function add(mappings: unknown, prevResult: unknown = RESULT) {
  const netlink = new SimKernel();
  await netlink.netns.add("node");
  const params = {
    containerId: "ctr1",
    netns: "pod",
    ifname: "eth0",
    args: "",
    path: [],
    host: { netlink, ns: "node" },
  };
  const config = {
    cniVersion: "1.0.0",
    name: "podnet",
    type: "portmap",
    runtimeConfig: { portMappings: mappings },
    prevResult,
  };
  let refusal: string | undefined;
  try {
    await portmapPlugin().add(params, config as never);
  } catch (error) {
    if (!(error instanceof CniError)) throw error;
    refusal = error.message;
  }
  return { refusal, nat: await netlink.iptables.save("node", "nat") };
}

const EMPTY_NAT = (async () => (await add([])).nat)();

describe("the portmap plugin's config", () => {
  it("refuses what the reference's decoding refuses, in its words, writing nothing", async () => {
    const cases: [unknown, unknown, string][] = [
      [
        [{ hostPort: "8080", containerPort: 80 }],
        RESULT,
        "failed to parse config: failed to parse network configuration: json: cannot unmarshal string into Go struct field PortMapEntry.runtimeConfig.portMappings.hostPort of type int",
      ],
      [
        { hostPort: 8080 },
        RESULT,
        "failed to parse config: failed to parse network configuration: json: cannot unmarshal object into Go struct field .runtimeConfig.portMappings of type []main.PortMapEntry",
      ],
      [[null], RESULT, "failed to parse config: Invalid container port number: 0"],
      [
        [{ hostPort: 65536, containerPort: 80 }],
        RESULT,
        "failed to parse config: Invalid host port number: 65536",
      ],
      [
        [{ hostPort: 8080, containerPort: 80 }],
        "x",
        "failed to parse config: failed to parse network configuration: json: cannot unmarshal string into Go struct field PortMapConf.prevResult of type map[string]interface {}",
      ],
      [
        [{ hostPort: 8080, containerPort: 80 }],
        { cniVersion: "1.0.0", ips: "abc" },
        "failed to parse config: could not parse prevResult: json: cannot unmarshal string into Go struct field Result.ips of type []*types100.IPConfig",
      ],
      [
        [{ hostPort: 8080, containerPort: 80 }],
        { cniVersion: "1.0.0", ips: [{ address: "10.244.1.2" }] },
        "failed to parse config: could not parse prevResult: invalid CIDR address: 10.244.1.2",
      ],
    ];
    for (const [mappings, prev, message] of cases) {
      const { refusal, nat } = await add(mappings, prev);
      expect(refusal).toBe(message);
      expect(nat).toBe(await EMPTY_NAT);
    }
  });

  it("takes tcp and udp in either case and refuses any other protocol before a rule is written", async () => {
    const lower = await add([{ hostPort: 8080, containerPort: 80, protocol: "tcp" }]);
    const upper = await add([{ hostPort: 8080, containerPort: 80, protocol: "TCP" }]);
    expect(upper).toEqual(lower);
    expect(lower.nat).toContain("--dport 8080 -j DNAT --to-destination 10.244.1.2:80");
    for (const protocol of ["sctp", "tcp -m comment --comment injected", "icmp"]) {
      const { refusal, nat } = await add([{ hostPort: 8080, containerPort: 80, protocol }]);
      expect(refusal).toBe(
        `failed to parse config: portMappings[0]: protocol ${JSON.stringify(protocol)} is not supported by podnet's portmap (tcp or udp)`,
      );
      expect(nat).toBe(await EMPTY_NAT);
    }
  });
});
