import { addPod, cniChainName, createSandbox, delPod, podAttachment } from "@podnet/cni";
import { SimKernel } from "@podnet/sim";
import { describe, expect, it } from "vitest";
import { dockerBridge } from "./index.js";

const node = {
  name: "node1",
  ns: "node1",
  address: "10.100.0.2",
  nic: "eth0",
  underlayMtu: 1500,
  annotations: {},
};
const cluster = { clusterCidr: "10.0.0.0/16", nodeMaskSize: 24, serviceCidr: "10.96.0.0/12" };

describe("the docker-bridge provider", () => {
  it("publishes a port as a DNAT for the node's own addresses, and DEL removes it even after the pod is gone", async () => {
    const k = new SimKernel();
    await k.netns.add("node1");
    await createSandbox(k, "web");
    await dockerBridge.setupNode({ netlink: k, ns: "node1" }, node, cluster);
    const pod = podAttachment(dockerBridge, node, cluster, {
      containerId: "web",
      podNs: "web",
      publish: [{ hostPort: 8080, containerPort: 80 }],
    });
    expect(pod.config.runtimeConfig).toEqual({ portMappings: [{ hostPort: 8080, containerPort: 80 }] });
    const result = await addPod(dockerBridge, k, pod);
    expect(result.ips![0]!.address).toBe("172.17.0.2/16");
    const nat = await k.iptables.save("node1", "nat");
    expect(nat).toContain("-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT");
    expect(nat).toContain(
      `-A ${cniChainName("bridge", "web", "DN-")} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80`,
    );
    expect(nat).toContain("-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE");
    await k.netns.del("web");
    await delPod(dockerBridge, k, pod);
    expect(await k.iptables.save("node1", "nat")).not.toContain("CNI-DN-");
    expect(dockerBridge.peerEntries(node, node, cluster)).toEqual({ routes: [], neighbours: [], fdb: [] });
  });

  it("turns bridge-nf-call-iptables on as dockerd does, even where it was off", async () => {
    const k = new SimKernel();
    await k.netns.add("node1");
    await k.sysctl.set("node1", "net.bridge.bridge-nf-call-iptables", "0");
    await dockerBridge.setupNode({ netlink: k, ns: "node1" }, node, cluster);
    expect(await k.sysctl.get("node1", "net.bridge.bridge-nf-call-iptables")).toBe("1");
  });
});
