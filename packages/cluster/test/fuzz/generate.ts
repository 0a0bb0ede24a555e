/**
 * Fuzzed scenarios: a random scenario shaped like the schema (names that refer to each other,
 * addresses on their segments, services that select pods), then mutated the way hand-written files
 * go wrong — fields dropped, duplicated, swapped, boundary numbers, odd strings, wrong types, cut
 * text. Seeded, so a failure names the seed that reproduces it.
 */
import { stringify } from "yaml";

/** mulberry32: a small seeded PRNG; enough for test-case generation. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const BOUNDARY_NUMBERS = [
  0,
  -1,
  1,
  7,
  8,
  29,
  30,
  31,
  32,
  33,
  575,
  576,
  9216,
  9217,
  29999,
  30000,
  32767,
  32768,
  65535,
  65536,
  2 ** 31,
  2 ** 53,
  1.5,
  -0.5,
  1e300,
];
const ODD_STRINGS = [
  "",
  " ",
  "-",
  "a_b",
  "UPPER",
  "..",
  "../../etc/passwd",
  "x".repeat(300),
  "ünïcødé",
  "10.0.0.999",
  "10.0.0.0/33",
  "0.0.0.0/0",
  "255.255.255.255",
  "1.2.3",
  "node1:abc",
  "svc/",
  "svc/nope",
  "a/b/c",
  ":80",
  "web:0",
  "web:65536",
  "web:-1",
  "10.0.0.1:99999",
  "null",
  "true",
  "0x10",
  "\t",
  "a\nb",
];

/**
 * `policyRand` draws the NetworkPolicy events, apart from `rand`, so that adding them left every
 * other field of a seed's scenario as it was.
 */
export function randomScenario(rand: () => number, policyRand: () => number = rand): Json {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => rand() < p;

  const segments = Array.from({ length: 1 + int(3) }, (_, i) => {
    const len = pick([24, 24, 24, 24, 25]);
    return {
      name: `seg${i}`,
      subnet: `10.${100 + i}.0.0/${len}`,
      ...(chance(0.7) ? { gateway: `10.${100 + i}.0.1` } : {}),
      ...(chance(0.3) ? { mtu: pick([1500, 1400, 9000, 576, 1450]) } : {}),
    };
  });
  const addressOn = (seg: number, host: number) => `10.${100 + seg}.0.${host}`;
  const routers =
    segments.length > 1 || chance(0.5)
      ? [
          {
            name: "gw",
            interfaces: segments.map((_, i) => ({ segment: `seg${i}`, address: addressOn(i, 1) })),
            ...(chance(0.3)
              ? { routes: [{ dst: "10.200.0.0/16", via: addressOn(0, pick([2, 3, 9, 200])) }] }
              : {}),
          },
        ]
      : [];
  const hosts = Array.from({ length: int(3) }, (_, i) => {
    const seg = int(segments.length);
    return {
      name: `host${i}`,
      segment: `seg${seg}`,
      address: addressOn(seg, 50 + i),
      ...(chance(0.5) ? { listen: [{ port: pick([80, 443, 8080]), protocol: pick(["tcp", "udp"]) }] } : {}),
    };
  });
  const nodes = Array.from({ length: int(5) }, (_, i) => {
    const seg = int(segments.length);
    return {
      name: `node${i}`,
      segment: `seg${seg}`,
      address: addressOn(seg, 10 + i),
      ...(chance(0.15) ? { podCidr: `10.0.${i + 1}.0/24` } : {}),
    };
  });
  const nodeNames = nodes.map((n) => n.name);
  const pods = nodeNames.length
    ? Array.from({ length: int(7) }, (_, i) => ({
        name: `pod${i}`,
        node: pick(nodeNames),
        labels: { app: pick(["a", "b"]) },
        containers: Array.from({ length: 1 + int(2) }, (_, j) => ({
          name: `c${j}`,
          ports: chance(0.6)
            ? [
                {
                  containerPort: pick([80, 443, 5432, 8080]) + j,
                  ...(chance(0.3) ? { protocol: pick(["tcp", "udp"]) } : {}),
                  ...(chance(0.2) ? { hostPort: pick([8080, 9090]) } : {}),
                },
              ]
            : [],
        })),
      }))
    : [];
  const services = Array.from({ length: int(3) }, (_, i) => {
    const nodePort = chance(0.4);
    return {
      name: `svc${i}`,
      ...(nodePort ? { type: "NodePort" } : {}),
      ...(chance(0.3) ? { clusterIP: `10.96.0.${10 + i}` } : {}),
      selector: { app: pick(["a", "b", "c"]) },
      ports: [
        {
          port: pick([80, 443]),
          ...(chance(0.5) ? { targetPort: pick([80, 443, 5432, 8080]) } : {}),
          ...(nodePort && chance(0.7) ? { nodePort: 30000 + int(100) } : {}),
        },
      ],
    };
  });
  const sources = [...pods.map((p) => p.name), ...nodeNames, ...hosts.map((h) => h.name)];
  const targets = [...sources, ...services.map((s) => `svc/${s.name}`), "10.100.0.1", "8.8.8.8", "127.0.0.1"];
  const traffic = sources.length
    ? Array.from({ length: int(5) }, () => ({
        from: chance(0.1) && pods.length ? `${pick(pods).name}/c0` : pick(sources),
        to: pick(targets) + (chance(0.4) ? `:${pick([80, 443, 5432, 8080, 53])}` : ""),
        ...(chance(0.5) ? { protocol: pick(["icmp", "tcp", "udp"]) } : {}),
        ...(chance(0.2) ? { size: pick([0, 56, 1400, 1472, 1500, 9000]) } : {}),
      }))
    : [];
  const events: Json[] = Array.from({ length: int(4) }, (_, i): Json => {
    const at = int(10);
    switch (int(6)) {
      case 0:
        return {
          at,
          action: "addNode",
          node: { name: `late${i}`, segment: "seg0", address: addressOn(0, 100 + i) },
        };
      case 1:
        return { at, action: "removeNode", node: nodeNames.length ? pick(nodeNames) : "node0" };
      case 2:
        return {
          at,
          action: "addPod",
          pod: { name: `newpod${i}`, node: nodeNames.length ? pick(nodeNames) : `late${i}` },
        };
      case 3:
        return pods.length
          ? { at, action: "removePod", pod: pick(pods).name }
          : { at, action: "addPod", pod: { name: `newpod${i}`, node: `late${i}` } };
      case 4:
        return {
          at,
          action: "setService",
          service: { name: `svc${int(4)}`, selector: { app: "a" }, ports: [{ port: 80 }] },
        };
      default:
        return services.length
          ? { at, action: "removeService", service: pick(services).name }
          : {
              at,
              action: "setService",
              service: { name: "svc0", selector: { app: "b" }, ports: [{ port: 443 }] },
            };
    }
  });
  // A NetworkPolicy set by an event (now and then in a namespace that does not exist), and removed
  // after it, or before it (refused: nothing to remove yet).
  if (policyRand() < 0.2) {
    const at = Math.floor(policyRand() * 10);
    events.push({
      at,
      action: "setNetworkPolicy",
      networkPolicy: {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "np0", namespace: policyRand() < 0.1 ? "nope" : "default" },
        spec: {
          podSelector: { matchLabels: { app: ["a", "b", "c"][Math.floor(policyRand() * 3)]! } },
          ...(policyRand() < 0.5
            ? { ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }] }] }
            : {}),
        },
      },
    });
    if (policyRand() < 0.5)
      events.push({
        at: policyRand() < 0.9 ? at + 1 : Math.max(0, at - 1),
        action: "removeNetworkPolicy",
        networkPolicy: { name: "np0" },
      });
  }
  return {
    name: "fuzz",
    ...(chance(0.5)
      ? {
          cluster: {
            clusterCidr: pick(["10.0.0.0/16", "10.0.0.0/20", "10.0.0.0/24", "10.1.0.0/16"]),
            nodeMaskSize: pick([24, 24, 22, 26, 28, 30, 16]),
            serviceCidr: pick(["10.96.0.0/16", "10.96.0.0/28", "10.96.0.0/14", "172.30.0.0/16"]),
          },
        }
      : { cluster: { serviceCidr: "10.96.0.0/16" } }),
    underlay: { segments, ...(routers.length ? { routers } : {}), ...(hosts.length ? { hosts } : {}) },
    nodes,
    ...(chance(0.15)
      ? {
          generate: {
            nodes: 1 + int(4),
            podsPerNode: int(3),
            segment: "seg0",
            firstAddress: addressOn(0, 150),
          },
        }
      : {}),
    pods,
    services,
    traffic,
    events,
  } as unknown as Json;
}

/** Every place in the tree: [parent, key] pairs, the root excluded. */
function places(root: Json): [Json[] | { [k: string]: Json }, string | number][] {
  const out: [Json[] | { [k: string]: Json }, string | number][] = [];
  const walk = (node: Json) => {
    if (Array.isArray(node))
      node.forEach((child, i) => {
        out.push([node, i]);
        walk(child);
      });
    else if (node && typeof node === "object")
      for (const [k, child] of Object.entries(node)) {
        out.push([node, k]);
        walk(child);
      }
  };
  walk(root);
  return out;
}

export function mutate(scenario: Json, rand: () => number): Json {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)]!;
  const all = places(scenario);
  if (!all.length) return scenario;
  const [parent, key] = pick(all);
  const get = () => (parent as Record<string | number, Json>)[key]!;
  const set = (v: Json) => ((parent as Record<string | number, Json>)[key] = v);
  switch (int(6)) {
    case 0: // dropped
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
      break;
    case 1: // duplicated
      if (Array.isArray(parent)) parent.push(structuredClone(get()));
      else set(structuredClone(get()));
      break;
    case 2: {
      // swapped with another place's value
      const [p2, k2] = pick(all);
      const other = (p2 as Record<string | number, Json>)[k2]!;
      (p2 as Record<string | number, Json>)[k2] = structuredClone(get());
      set(structuredClone(other));
      break;
    }
    case 3:
      set(pick(BOUNDARY_NUMBERS));
      break;
    case 4:
      set(pick(ODD_STRINGS));
      break;
    case 5:
      set(pick([null, [], {}, true, [1, 2], { a: 1 }] as Json[]));
      break;
    case 6: {
      // a value copied from a sibling field: names, addresses and ports that collide
      const [p2, k2] = pick(all);
      const v = (p2 as Record<string | number, Json>)[k2]!;
      if (typeof v !== "object" || v === null) set(v);
      break;
    }
    default:
      if (typeof get() === "number") set((get() as number) + pick([-1, 1, 1000, -1000]));
      else if (typeof get() === "string") set((get() as string) + pick(["", "0", "/24", ":80", "-x"]));
  }
  return scenario;
}

/** Case `seed`: a scenario, mutated 0-3 times, as YAML or JSON text, sometimes cut or corrupted. */
export function fuzzCase(seed: number): string {
  const rand = prng(seed);
  let tree = randomScenario(rand, prng(seed ^ 0x9e3779b9));
  const mutations = rand() < 0.45 ? 0 : 1 + Math.floor(rand() * 3);
  for (let i = 0; i < mutations; i++) tree = mutate(tree, rand);
  let text = rand() < 0.2 ? JSON.stringify(tree, null, rand() < 0.5 ? 2 : 0) : stringify(tree);
  const r = rand();
  if (r < 0.05) text = text.slice(0, Math.floor(rand() * text.length));
  else if (r < 0.1) {
    const at = Math.floor(rand() * text.length);
    text =
      text.slice(0, at) +
      ["{", "]", ":", "&a", "*a", "\t", "'", '"', "- ", "\0"][Math.floor(rand() * 10)]! +
      text.slice(at);
  }
  return text;
}
