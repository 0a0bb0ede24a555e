/**
 * Plain Kubernetes manifests (multi-document YAML, as `kubectl apply -f` takes them) read into a
 * scenario: Namespace objects give namespace labels, NetworkPolicy objects join the scenario's
 * policies, Service objects (a scenario's manifests only) its Services. Other kinds are refused by
 * name; every problem is located in the manifest file.
 */
import { NamespaceSchema, NetworkPolicySchema, policyKey, type NetworkPolicy } from "@podnet/policy";
import { LineCounter, parseAllDocuments } from "yaml";
import {
  MAX_SCENARIO_BYTES,
  ScenarioError,
  locate,
  protoIssues,
  shapeIssues,
  yamlError,
  yamlMessage,
  zodIssues,
  type ScenarioIssue,
} from "./load.js";
import { missingNamespace } from "./check.js";
import type { NamespaceSpec, Scenario, ServiceSpec } from "./schema.js";
import { ServiceManifestSchema, serviceFromManifest } from "./service-manifest.js";

/** Reads a manifest path written in the scenario `from` (relative to it): its text and display name. */
export type ManifestReader = (path: string, from: string) => { text: string; file: string };

/**
 * A Service read from a manifest, with where it is: `path` in its document, `locate` a path in that
 * document, so that the scenario's check can point at the manifest's own line.
 */
export interface ManifestService {
  service: ServiceSpec;
  path: (string | number)[];
  locate: (path: (string | number)[]) => { line?: number; column?: number };
}

export interface Manifests {
  namespaces: NamespaceSpec[];
  policies: NetworkPolicy[];
  services: ManifestService[];
}

/**
 * Parses a manifest file; throws ScenarioError naming the file, line and column of each problem.
 * Given the cluster's `namespaces`, a policy must go into one of them or one the file creates.
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
  const out: Manifests = { namespaces: [], policies: [], services: [] };
  const issues: ScenarioIssue[] = [];
  /** Where each policy's namespace is written, for the check after every document is read. */
  const namespaceAt: Omit<ScenarioIssue, "message">[] = [];
  for (const doc of docs) {
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
    const read = (object: unknown, path: (string | number)[]) => {
      const kind = (object as { kind?: unknown } | null)?.kind;
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
            message: "a List needs items",
            ...locate(doc, counter, path),
          });
        return;
      }
      if (!schema) {
        issues.push({
          path: [...path, "kind"],
          // Shown after the path ("kind: …"), so the message does not say "kind" again.
          message:
            kind === undefined
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
        issues.push(...zodIssues(parsed.error, doc, counter, path));
        return;
      }
      const located = (message: string) =>
        issues.push({
          path: [...path, "metadata", "name"],
          message,
          ...locate(doc, counter, [...path, "metadata", "name"]),
        });
      if (parsed.data.kind === "Service") {
        out.services.push({
          service: serviceFromManifest(parsed.data),
          path,
          locate: (at) => locate(doc, counter, at),
        });
      } else if (parsed.data.kind === "Namespace") {
        const name = parsed.data.metadata.name;
        if (out.namespaces.some((n) => n.name === name)) located(`namespace ${name} is defined twice`);
        else out.namespaces.push({ name, labels: parsed.data.metadata.labels ?? {} });
      } else {
        const key = policyKey(parsed.data);
        if (out.policies.some((p) => policyKey(p) === key)) located(`NetworkPolicy ${key} is defined twice`);
        else {
          out.policies.push(parsed.data);
          const at = [...path, "metadata", "namespace"];
          namespaceAt.push({ path: at, ...locate(doc, counter, at) });
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
          ...namespaceAt[i]!,
          message: missingNamespace(
            ns,
            ", the scenario does not declare it and this file has no Namespace for it",
          ),
        });
    });
  }
  if (issues.length) throw new ScenarioError(file, issues);
  return out;
}

/** The objects of a scenario's manifest files, each file's with its place in `manifests:`. */
export type ManifestObjects = ({ index: number; file: string } & Manifests)[];

/** Reads a scenario's manifest files. `at(i)` locates manifests[i] in the scenario file. */
export function readManifests(
  scenario: Scenario,
  file: string,
  at: (i: number) => Omit<ScenarioIssue, "message">,
  reader: ManifestReader | undefined,
): ManifestObjects {
  return scenario.manifests.map((path, i) => {
    if (!reader)
      throw new ScenarioError(file, [
        { ...at(i), message: "manifests can only be read from a scenario file" },
      ]);
    let manifest: { text: string; file: string };
    try {
      manifest = reader(path, file);
    } catch (error) {
      throw new ScenarioError(file, [{ ...at(i), message: (error as Error).message }]);
    }
    return {
      index: i,
      file: manifest.file,
      ...loadManifests(manifest.text, manifest.file, { services: true }),
    };
  });
}

/** Adds what `readManifests` read to the scenario; an object the scenario or another file holds is refused. */
export function includeManifests(
  scenario: Scenario,
  objects: ManifestObjects,
  file: string,
  at: (i: number) => Omit<ScenarioIssue, "message">,
): void {
  for (const { index, file: from, namespaces, policies } of objects) {
    for (const ns of namespaces) {
      if (scenario.namespaces.some((n) => n.name === ns.name))
        throw new ScenarioError(file, [
          { ...at(index), message: `${from}: namespace ${ns.name} is already defined` },
        ]);
      scenario.namespaces.push(ns);
    }
    for (const p of policies) {
      if (scenario.networkPolicies.some((q) => policyKey(q) === policyKey(p)))
        throw new ScenarioError(file, [
          { ...at(index), message: `${from}: NetworkPolicy ${policyKey(p)} is already defined` },
        ]);
      scenario.networkPolicies.push(p);
    }
  }
}
