/**
 * Plain Kubernetes manifests (multi-document YAML, as `kubectl apply -f` takes them) read into a
 * scenario: Namespace objects give namespace labels, NetworkPolicy objects join the scenario's
 * policies, Service objects (a scenario's manifests only) its Services. Other kinds are refused by
 * name; every problem is located in the manifest file.
 */
import { NamespaceSchema, NetworkPolicySchema, policyKey, type NetworkPolicy } from "@podnet/policy";
import { LineCounter, parseAllDocuments, type Document } from "yaml";
import {
  MAX_SCENARIO_BYTES,
  ScenarioError,
  kindOf,
  locate,
  protoIssues,
  shapeIssues,
  yamlError,
  yamlMessage,
  zodIssues,
  type ScenarioIssue,
} from "./load.js";
import { missingNamespace } from "./check.js";
import {
  SCENARIO_LIMITS,
  beyondEnvelope,
  plural,
  type NamespaceSpec,
  type Scenario,
  type ServiceSpec,
} from "./schema.js";
import { ServiceManifestSchema, serviceFromManifest, serviceManifestPath } from "./service-manifest.js";

/**
 * Reads a manifest path written in the scenario `from` (relative to it): its text, display name and,
 * when the reader knows it, the file's identity (the same file under two paths is one file).
 */
export type ManifestReader = (path: string, from: string) => { text: string; file: string; id?: string };

type Path = (string | number)[];

/**
 * Where an object read from a manifest is written: its file, and where a path in the scenario's shape
 * of the object (`ports[0].nodePort` of a Service) is in the manifest (`items[2].spec.ports[0].nodePort`,
 * with its line and column), so that the scenario's check points at the manifest's own line.
 */
export interface ManifestOrigin {
  file: string;
  locate: (path: Path) => { path: Path; line?: number; column?: number };
}

export interface Manifests {
  namespaces: NamespaceSpec[];
  policies: NetworkPolicy[];
  services: ServiceSpec[];
  /** Where each of the objects above is written, in the same order. */
  origins: { namespaces: ManifestOrigin[]; policies: ManifestOrigin[]; services: ManifestOrigin[] };
}

/**
 * Locations in `text`'s documents, parsed again on first use: the scenario's check needs them only for
 * its mistakes, and holding every manifest's document tree until then cost hundreds of MB.
 */
function lazyLocator(text: string): (doc: number, path: Path) => { line?: number; column?: number } {
  let parsed: { docs: Document[]; counter: LineCounter } | undefined;
  return (doc, path) => {
    if (!parsed) {
      const counter = new LineCounter();
      const docs = parseAllDocuments(text, { lineCounter: counter, prettyErrors: false, merge: true });
      parsed = { docs: Array.isArray(docs) ? docs : [docs], counter };
    }
    return locate(parsed.docs[doc]!, parsed.counter, path);
  };
}

/** Keys a scenario file has and a manifest does not: a scenario given as a manifest. */
const SCENARIO_KEYS = ["nodes", "underlay", "generate", "pods", "traffic"];

/**
 * Parses a manifest file; throws ScenarioError naming the file, line and column of each problem.
 * Given the cluster's `namespaces`, a policy must go into one of them or one the file creates.
 * Services are read only when `services` is set (a scenario's manifests).
 */
export function loadManifests(
  text: string,
  file: string,
  options: { namespaces?: ReadonlySet<string>; services?: boolean } = {},
): Manifests {
  const kinds = `Namespace, NetworkPolicy${options.services ? ", Service" : ""}, or a List of them`;
  if (text.length > MAX_SCENARIO_BYTES)
    throw new ScenarioError(file, [{ path: [], message: `larger than ${MAX_SCENARIO_BYTES / 2 ** 20} MiB` }]);
  const counter = new LineCounter();
  let docs;
  try {
    docs = parseAllDocuments(text, { lineCounter: counter, prettyErrors: false, merge: true });
  } catch (error) {
    throw yamlError(file, error);
  }
  if (!Array.isArray(docs)) docs = [docs];
  const out: Manifests = {
    namespaces: [],
    policies: [],
    services: [],
    origins: { namespaces: [], policies: [], services: [] },
  };
  const located = lazyLocator(text);
  const issues: ScenarioIssue[] = [];
  for (const [index, doc] of docs.entries()) {
    for (const e of doc.errors) {
      const pos = counter.linePos(e.pos[0]);
      issues.push({
        path: [],
        message: yamlMessage(e.message),
        line: pos.line,
        column: pos.col,
      });
    }
    if (doc.errors.length) continue;
    const shape = shapeIssues(doc, counter);
    if (shape.length) {
      issues.push(...shape);
      continue;
    }
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: 1000 });
    } catch (error) {
      throw yamlError(file, error);
    }
    if (raw === null || raw === undefined) continue;
    const proto = protoIssues(raw, doc, counter);
    if (proto.length) {
      issues.push(...proto);
      continue;
    }
    /** An object at `path` of this document, its scenario-shaped paths mapped by `manifestPath`. */
    const origin = (path: Path, manifestPath: (p: Path) => Path): ManifestOrigin => ({
      file,
      locate: (at) => {
        const where = [...path, ...manifestPath(at)];
        return { path: where, ...located(index, where) };
      },
    });
    const read = (object: unknown, path: Path) => {
      if (typeof object !== "object" || object === null || Array.isArray(object)) {
        issues.push({
          path,
          message: `a manifest is a mapping (apiVersion:, kind:, metadata:, …), not ${kindOf(object)}`,
          ...locate(doc, counter, path),
        });
        return;
      }
      const kind = (object as { kind?: unknown }).kind;
      const schema =
        kind === "Namespace"
          ? NamespaceSchema
          : kind === "NetworkPolicy"
            ? NetworkPolicySchema
            : kind === "Service" && options.services
              ? ServiceManifestSchema
              : undefined;
      if (kind === "List" || (typeof kind === "string" && kind.endsWith("List"))) {
        const items = (object as { items?: unknown }).items;
        if (Array.isArray(items)) items.forEach((item, i) => read(item, [...path, "items", i]));
        else
          issues.push({
            path: [...path, "items"],
            message:
              items === undefined
                ? "required: a List holds its objects under items"
                : `expected a list, not ${kindOf(items)}`,
            ...locate(doc, counter, items === undefined ? path : [...path, "items"]),
          });
        return;
      }
      if (!schema) {
        const scenario = kind === undefined && SCENARIO_KEYS.some((k) => k in object);
        issues.push({
          path: [...path, "kind"],
          // Shown after the path ("kind: …"), so the message does not say "kind" again.
          message: scenario
            ? "missing: this is a podnet scenario, not a Kubernetes manifest (give it as the scenario)"
            : kind === undefined
              ? `missing: a manifest names its kind (${kinds})`
              : kind === "Service"
                ? `"Service" is read from a scenario's manifests, not here (${kinds})`
                : `${JSON.stringify(kind)} is not read by podnet (${kinds})`,
          ...locate(doc, counter, [...path, "kind"]),
        });
        return;
      }
      const parsed = schema.safeParse(object);
      if (!parsed.success) {
        const found = zodIssues(parsed.error, doc, counter, path);
        // A type podnet does not model says so; what that type's own fields would need adds nothing.
        const type = found.find((i) => i.path.at(-1) === "type" && /is not modelled/.test(i.message));
        issues.push(...(type ? [type] : found));
        return;
      }
      const twice = (message: string) =>
        issues.push({
          path: [...path, "metadata", "name"],
          message,
          ...locate(doc, counter, [...path, "metadata", "name"]),
        });
      if (parsed.data.kind === "Service") {
        const service = serviceFromManifest(parsed.data);
        // A ClusterIP given only as clusterIPs[0] is mistaken there, not at a clusterIP the file lacks.
        const fromClusterIPs = parsed.data.spec.clusterIP === undefined && service.clusterIP !== undefined;
        out.services.push(service);
        out.origins.services.push(
          origin(path, (at) =>
            fromClusterIPs && at[0] === "clusterIP" ? ["spec", "clusterIPs", 0] : serviceManifestPath(at),
          ),
        );
      } else if (parsed.data.kind === "Namespace") {
        const name = parsed.data.metadata.name;
        if (out.namespaces.some((n) => n.name === name)) twice(`namespace ${name} is defined twice`);
        else {
          out.namespaces.push({ name, labels: parsed.data.metadata.labels ?? {} });
          out.origins.namespaces.push(origin(path, (at) => ["metadata", ...at]));
        }
      } else {
        const key = policyKey(parsed.data);
        if (out.policies.some((p) => policyKey(p) === key)) twice(`NetworkPolicy ${key} is defined twice`);
        else {
          out.policies.push(parsed.data);
          out.origins.policies.push(origin(path, (at) => at));
        }
      }
    };
    read(raw, []);
  }
  if (options.namespaces) {
    const created = new Set(out.namespaces.map((n) => n.name));
    out.policies.forEach((p, i) => {
      const ns = p.metadata.namespace;
      if (!options.namespaces!.has(ns) && !created.has(ns))
        issues.push({
          ...out.origins.policies[i]!.locate(["metadata", "namespace"]),
          message: missingNamespace(
            ns,
            ", the scenario does not declare it and this file has no Namespace for it",
          ),
        });
    });
  }
  if (!issues.length && !out.namespaces.length && !out.policies.length && !out.services.length)
    issues.push({ path: [], message: "holds no objects (kubectl apply: no objects passed to apply)" });
  if (issues.length) throw new ScenarioError(file, issues);
  return out;
}

/** Reads a scenario's manifest files, each once. `at(i)` locates manifests[i] in the scenario file. */
export function readManifests(
  scenario: Scenario,
  file: string,
  at: (i: number) => Omit<ScenarioIssue, "message">,
  reader: ManifestReader | undefined,
): Manifests[] {
  const seen = new Map<string, number>();
  let services = scenario.services.length;
  return scenario.manifests.map((path, i) => {
    if (!reader)
      throw new ScenarioError(file, [
        {
          ...at(i),
          message:
            "manifests are files beside a scenario file, and this scenario has none (pasted text): put their objects in it instead, under namespaces:, networkPolicies: and services:",
        },
      ]);
    let manifest: { text: string; file: string; id?: string };
    try {
      manifest = reader(path, file);
    } catch (error) {
      throw new ScenarioError(file, [{ ...at(i), message: (error as Error).message }]);
    }
    const id = manifest.id ?? manifest.file;
    const first = seen.get(id);
    if (first !== undefined)
      throw new ScenarioError(file, [
        { ...at(i), message: `${manifest.file} is manifests[${first}] again: each file is read once` },
      ]);
    seen.set(id, i);
    const read = loadManifests(manifest.text, manifest.file, { services: true });
    // Counted file by file, so the file that passes the envelope is named, and the next is not read.
    services += read.services.length;
    if (services > SCENARIO_LIMITS.services)
      throw new ScenarioError(file, [
        {
          ...at(i),
          message: `${manifest.file} holds ${plural(read.services.length, "Service")}: with the scenario's own and those of the files before it, ${beyondEnvelope(services, "Service")}`,
        },
      ]);
    return read;
  });
}

/**
 * Adds the manifests' objects to the scenario after its own, before the check, which then checks them
 * as it checks the scenario's; returns what a check issue about one of them says in its manifest (its
 * file, path, line and column), or undefined for an issue about the scenario's own.
 */
export function joinManifests(
  scenario: Scenario,
  manifests: Manifests[],
): (issue: ScenarioIssue) => ScenarioIssue | undefined {
  const listed = {
    namespaces: scenario.namespaces.length,
    networkPolicies: scenario.networkPolicies.length,
    services: scenario.services.length,
  };
  const origins = {
    namespaces: [] as ManifestOrigin[],
    networkPolicies: [] as ManifestOrigin[],
    services: [] as ManifestOrigin[],
  };
  for (const m of manifests) {
    // One at a time: a spread of 100,000 arguments overflows the stack.
    for (const ns of m.namespaces) scenario.namespaces.push(ns);
    for (const p of m.policies) scenario.networkPolicies.push(p);
    for (const svc of m.services) scenario.services.push(svc);
    for (const o of m.origins.namespaces) origins.namespaces.push(o);
    for (const o of m.origins.policies) origins.networkPolicies.push(o);
    for (const o of m.origins.services) origins.services.push(o);
  }
  return (issue) => {
    const [key, index] = issue.path;
    if (key !== "namespaces" && key !== "networkPolicies" && key !== "services") return undefined;
    const origin = origins[key][Number(index) - listed[key]];
    return origin ? { ...issue, file: origin.file, ...origin.locate(issue.path.slice(2)) } : undefined;
  };
}
