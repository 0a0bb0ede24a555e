/**
 * Reading a scenario: YAML or JSON text → zod validation → semantic checks. Every problem names the
 * file, the line and column, the path inside it and what was expected:
 * `scenarios/x.yaml:9:30: nodes[2].address: "10.100.0.300" is not an IPv4 address`.
 */
import { PodnetError, quoteInput } from "@podnet/core";
import {
  LineCounter,
  isAlias,
  isCollection,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  type Document,
  type Node,
} from "yaml";
import { checkScenario, providerIssues } from "./check.js";
import { joinManifests, readManifests, type ManifestReader } from "./manifests.js";
import type { ProxyName } from "@podnet/route-manager";
import { ScenarioSchema, plural, type Scenario } from "./schema.js";
import type { z } from "zod";

export interface ScenarioIssue {
  path: (string | number)[];
  message: string;
  line?: number;
  column?: number;
  /** The file the issue is in, when not the scenario's own (a Service from one of its manifests). */
  file?: string;
  /** For a second definition: where the first is (said after the message). */
  first?: { path: (string | number)[]; file?: string; line?: number; column?: number };
}

/**
 * The most mistakes a scenario error lists: one mistake in a `generate:` block repeats for every pod
 * it makes (145,000 lines, 20 MB, for a pod subnet too small), and the first ones say it all.
 */
export const MAX_ISSUES = 50;

export class ScenarioError extends PodnetError {
  readonly issues: ScenarioIssue[];
  constructor(
    readonly file: string,
    unordered: ScenarioIssue[],
  ) {
    const issues = inFileOrder(unordered);
    const shown =
      issues.length > MAX_ISSUES
        ? [
            ...issues.slice(0, MAX_ISSUES),
            // At the first one left out, so that every line of the error is located.
            {
              ...issues[MAX_ISSUES],
              path: [],
              message: `and ${(issues.length - MAX_ISSUES).toLocaleString("en-US")} more mistakes not listed`,
            },
          ]
        : issues;
    super("ESCENARIO", shown.map((i) => formatIssue(file, i)).join("\n"));
    this.issues = shown;
  }
}

/**
 * Issues as a reader meets them: the scenario's own first, then each manifest in the order it first
 * comes up, each file's by line and column (the check and zod find them in their own orders). A sort
 * that keeps equal places in the order found, and an unlocated issue (the whole file) first.
 */
function inFileOrder(issues: ScenarioIssue[]): ScenarioIssue[] {
  const files = new Map<string | undefined, number>([[undefined, 0]]);
  for (const issue of issues) if (!files.has(issue.file)) files.set(issue.file, files.size);
  return issues
    .map((issue, found) => ({ issue, found }))
    .sort(
      (a, b) =>
        files.get(a.issue.file)! - files.get(b.issue.file)! ||
        (a.issue.line ?? 0) - (b.issue.line ?? 0) ||
        (a.issue.column ?? 0) - (b.issue.column ?? 0) ||
        a.found - b.found,
    )
    .map(({ issue }) => issue);
}

/** `file:line:column: path: message`, the form editors and terminals turn into a link. */
export function formatIssue(scenarioFile: string, issue: ScenarioIssue): string {
  const place = (at: { file?: string; line?: number; column?: number }) => {
    const file = at.file ?? scenarioFile;
    return at.line !== undefined ? `${file}:${at.line}:${at.column ?? 1}` : file;
  };
  const first = issue.first?.line !== undefined ? ` (the first at ${place(issue.first)})` : "";
  return `${place(issue)}: ${formatPath(issue.path)}${issue.path.length ? ": " : ""}${issue.message}${first}`;
}

export function formatPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

export function locate(
  doc: Document,
  counter: LineCounter,
  path: (string | number)[],
): { line: number; column: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) {
      const pos = counter.linePos(node.range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  // Nothing in the document to point at (an empty file): its start.
  return { line: 1, column: 1 };
}

/** The scalar written at `path` (undefined for a collection or nothing). */
function valueAt(doc: Document, path: (string | number)[]): unknown {
  const node = doc.getIn(path, true);
  return isScalar(node) ? node.value : undefined;
}

/** The key node of the mapping entry at `path` (locate finds its value). */
function keyNode(doc: Document, path: (string | number)[]): Node | undefined {
  const parent = doc.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path.at(-1));
  return isNode(pair?.key) ? pair.key : undefined;
}

/** YAML's kinds of value as a scenario's author names them. */
export const KINDS: Record<string, string> = {
  array: "a list",
  object: "a mapping (key: value)",
  record: "a mapping (key: value)",
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  null: "null (nothing written)",
};

/** A value's kind, as KINDS words it. */
export const kindOf = (value: unknown): string =>
  KINDS[Array.isArray(value) ? "array" : value === null ? "null" : typeof value] ?? typeof value;

/** zod's "Invalid input: expected array, received string", in the words of YAML. */
function wrongType(root: boolean, expected: string, received = "something else"): string {
  const got = KINDS[received] ?? received;
  return root
    ? `a scenario is a mapping of its parts (name:, underlay:, nodes: …), not ${got}`
    : `expected ${KINDS[expected] ?? expected}, not ${got}`;
}

/**
 * zod's own wording of an issue ("Too small: expected number to be >=0", "Invalid option: expected
 * one of …") in the words of the value the author wrote (`value`, read from the document); undefined
 * for a message a schema words itself.
 */
function zodWording(issue: z.core.$ZodIssue, value: unknown, root: boolean): string | undefined {
  const { message } = issue;
  const said = value === undefined ? "" : `${quoteInput(value)} `;
  switch (issue.code) {
    case "invalid_type":
      // "required (a mapping)": the kind without what follows it in parentheses.
      if (/received undefined/.test(message))
        return `required (${(KINDS[issue.expected] ?? issue.expected).replace(/ \(.*\)$/, "")})`;
      if (!message.startsWith("Invalid input: expected")) return undefined;
      if (issue.expected === "int" && typeof value === "number") return `${said}is not a whole number`;
      return wrongType(root, issue.expected, /received (\w+)/.exec(message)?.[1]);
    case "too_small":
    case "too_big": {
      if (!/^Too (small|big)/.test(message)) return undefined;
      const small = issue.code === "too_small";
      const bound = Number(small ? issue.minimum : issue.maximum);
      if (issue.origin === "number")
        return `${said}is ${small ? "below" : "above"} ${bound}${issue.inclusive ? "" : ` (or equal to it)`}`;
      if (issue.origin === "array")
        return small ? `needs at least ${plural(bound, "item")}` : `holds at most ${plural(bound, "item")}`;
      if (issue.origin === "string")
        return small
          ? bound === 1
            ? "must not be empty"
            : `needs at least ${plural(bound, "character")}`
          : `is longer than ${plural(bound, "character")}`;
      return undefined;
    }
    case "invalid_value": {
      if (!/^Invalid (option|input)/.test(message)) return undefined;
      const values = issue.values.map((v) => quoteInput(v));
      if (values.length === 1)
        return `expected ${values[0]}${value === undefined ? "" : `, not ${quoteInput(value)}`}`;
      return value === undefined
        ? `required: one of ${values.join(", ")}`
        : `${said}is not one of ${values.join(", ")}`;
    }
    case "invalid_union": {
      const options = (issue as { options?: unknown[] }).options;
      if (!options || !message.startsWith("Invalid discriminator")) return undefined;
      const list = options.map((o) => String(o)).join(", ");
      return value === undefined ? `required: one of ${list}` : `${said}is not one of ${list}`;
    }
    default:
      return undefined;
  }
}

/** zod's issues, worded and located in the YAML document they came from. */
export function zodIssues(
  error: z.ZodError,
  doc: Document,
  counter: LineCounter,
  /** Where the parsed value sits in the document (an item of a List): issues' paths start there. */
  prefix: (string | number)[] = [],
): ScenarioIssue[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
    let message = issue.message;
    if (issue.code === "unrecognized_keys")
      message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    else message = zodWording(issue, valueAt(doc, path), path.length === prefix.length) ?? message;
    // A record's bad key (a label key): the key's own check says what is wrong, at the key.
    if (issue.code === "invalid_key") {
      message = issue.issues[0]?.message ?? message;
      const key = keyNode(doc, path);
      if (key?.range) {
        const pos = counter.linePos(key.range[0]);
        return { path, message, line: pos.line, column: pos.col };
      }
    }
    // An unknown key is located at the key itself, not at the object holding it or at its value.
    if (issue.code === "unrecognized_keys") {
      const key = keyNode(doc, [...path, issue.keys[0]!]);
      if (key?.range) {
        const pos = counter.linePos(key.range[0]);
        return { path, message, line: pos.line, column: pos.col };
      }
    }
    return { path, message, ...locate(doc, counter, path) };
  });
}

/** Aliases one document may expand: enough for anchors users write, far too few for a bomb. */
const MAX_ALIASES = 1000;
/**
 * The largest scenario text read: a 5,000-node cluster listed node by node is well under 1 MiB. The
 * YAML library's document keeps about 160 bytes for each byte of flow-style text (a 16 MiB file of
 * probes took 2.3 GB and 19 s to read), so this bound is also the reader's memory: 4 MiB, under
 * 700 MB. Larger clusters are generated (`generate:`), not listed.
 */
export const MAX_SCENARIO_BYTES = 4 * 2 ** 20;

/**
 * A YAML parser's message as a user reads it: its first line, and for input nested deep enough to
 * exhaust the parser's stack what that means, not the engine's "Maximum call stack size exceeded".
 */
export const yamlMessage = (message: string) =>
  `YAML: ${
    /Maximum call stack size exceeded/.test(message)
      ? "nested too deeply to read (collections inside collections, thousands of levels)"
      : /contains multiple documents/.test(message)
        ? "a scenario is one document, and this --- starts another"
        : message.split("\n")[0]!
  }`;

/**
 * What the YAML library would throw (or print as a Node warning) only when the document is made
 * into objects, with no place: an alias of no anchor, a merge (`<<`) of something that is not a
 * mapping, a key that is a list or mapping. Walked without recursion, as the document may be as
 * deep as the parser allows.
 */
export function shapeIssues(doc: Document, counter: LineCounter): ScenarioIssue[] {
  const issues: (ScenarioIssue & { offset: number })[] = [];
  const at = (node: Node, message: string) => {
    const offset = node.range?.[0] ?? 0;
    const pos = counter.linePos(offset);
    issues.push({ path: [], message: `YAML: ${message}`, line: pos.line, column: pos.col, offset });
  };
  const mapping = (node: unknown): boolean =>
    isMap(node) || (isAlias(node) && isMap(node.resolve(doc))) || (isSeq(node) && node.items.every(mapping));
  const stack: unknown[] = [doc.contents];
  while (stack.length) {
    const node = stack.pop();
    if (isAlias(node)) {
      if (!node.resolve(doc)) at(node, `*${node.source} names no anchor set before it`);
    } else if (isCollection(node)) for (const item of node.items) stack.push(item);
    else if (isPair(node)) {
      if (isCollection(node.key)) at(node.key, "a key is a name or a number, not a list or mapping");
      else if (isScalar(node.key) && typeof node.key.value === "symbol" && !mapping(node.value))
        at(
          isNode(node.value) ? node.value : node.key,
          "<< merges a mapping (or an alias of one) into this one",
        );
      else stack.push(node.key);
      stack.push(node.value);
    }
  }
  return issues.sort((a, b) => a.offset - b.offset).map(({ offset: _, ...issue }) => issue);
}

export const yamlError = (file: string, error: unknown) =>
  new ScenarioError(file, [{ path: [], message: yamlMessage((error as Error).message), line: 1, column: 1 }]);

/** Overrides of a scenario's `generate` block: the same cluster shape at another size. */
export interface ScenarioScale {
  nodes?: number;
  podsPerNode?: number;
}

/**
 * Parses, validates and checks a scenario. Throws ScenarioError listing every problem found. With
 * `scale`, a generated cluster is resized before it is checked (its capacity checks see the new size).
 */
export function loadScenario(
  text: string,
  file = "scenario.yaml",
  scale: ScenarioScale = {},
  readManifest?: ManifestReader,
  /** The providers it is for: what each asks of a scenario (`providerIssues`) is checked too. */
  providers: readonly { name: string; podRange?: string }[] = [],
): Scenario {
  if (text.length > MAX_SCENARIO_BYTES)
    throw new ScenarioError(file, [
      {
        path: [],
        message: `larger than ${MAX_SCENARIO_BYTES / 2 ** 20} MiB: not a scenario (a large cluster is generated with a generate: block, not listed)`,
      },
    ]);
  const counter = new LineCounter();
  let doc: Document;
  try {
    // `<<: *anchor` merge keys, as kubectl's YAML reader takes them.
    doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, merge: true });
  } catch (error) {
    // Input deep enough to exhaust the parser's stack: a located refusal, not a crash.
    throw yamlError(file, error);
  }
  if (doc.errors.length) {
    throw new ScenarioError(
      file,
      doc.errors.map((e) => {
        const pos = counter.linePos(e.pos[0]);
        return { path: [], message: yamlMessage(e.message), line: pos.line, column: pos.col };
      }),
    );
  }
  const shape = shapeIssues(doc, counter);
  if (shape.length) throw new ScenarioError(file, shape);
  let raw: unknown;
  try {
    // The YAML library's own guard against alias bombs ("billion laughs") throws here.
    raw = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (error) {
    throw yamlError(file, error);
  }
  const proto = protoIssues(raw, doc, counter);
  if (proto.length) throw new ScenarioError(file, proto);
  const parsed = ScenarioSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new ScenarioError(file, zodIssues(parsed.error, doc, counter));
  const scenario = parsed.data;
  if (scale.nodes !== undefined || scale.podsPerNode !== undefined) {
    if (!scenario.generate)
      throw new ScenarioError(file, [
        {
          path: [],
          message:
            "lists its nodes, so it has no size to change: --nodes and --pods-per-node resize a scenario with a generate block (such as large)",
          line: 1,
          column: 1,
        },
      ]);
    scenario.generate = {
      ...scenario.generate,
      ...(scale.nodes !== undefined ? { nodes: scale.nodes } : {}),
      ...(scale.podsPerNode !== undefined ? { podsPerNode: scale.podsPerNode } : {}),
    };
  }
  // The manifests' objects join the scenario before the check, which checks them as its own; a
  // mistake in one is located in its manifest, at the manifest's path.
  const at = (i: number) => ({ path: ["manifests", i], ...locate(doc, counter, ["manifests", i]) });
  const inManifest = joinManifests(scenario, readManifests(scenario, file, at, readManifest));
  const place = (issue: ScenarioIssue) =>
    inManifest(issue) ?? scaledIssue(issue, scale) ?? { ...issue, ...locate(doc, counter, issue.path) };
  const found = checkScenario(scenario);
  // A provider's needs only of a scenario that is right in itself (its pod range against a valid CIDR).
  if (!found.length) for (const p of providers) found.push(...providerIssues(scenario, p));
  const issues = found.map((issue) => {
    const placed = place(issue);
    if (!issue.first) return placed;
    const first = place({ path: issue.first.path, message: "" });
    return {
      ...placed,
      first: {
        path: first.path,
        ...(first.file ? { file: first.file } : {}),
        ...(first.line !== undefined ? { line: first.line, column: first.column ?? 1 } : {}),
      },
    };
  });
  if (issues.length) throw new ScenarioError(file, issues);
  return scenario;
}

export { checkScenario };

/**
 * Every "__proto__" key of a document, located. zod's records skip such a key without a word (a
 * guard against prototype pollution), so a label or selector spelled so would vanish unseen.
 */
export function protoIssues(raw: unknown, doc: Document, counter: LineCounter): ScenarioIssue[] {
  return protoKeyPaths(raw).map((path) => ({
    path: path.slice(0, -1),
    message: `"__proto__" is not a key podnet takes`,
    ...locate(doc, counter, path),
  }));
}

/**
 * Iterative, as the document may be as deep as the parser allows; each object once, as an anchor
 * may hold an alias of itself (a cycle once made into objects).
 */
function protoKeyPaths(raw: unknown): (string | number)[][] {
  const found: (string | number)[][] = [];
  const seen = new Set<object>();
  const stack: [unknown, (string | number)[]][] = [[raw, []]];
  while (stack.length) {
    const [value, path] = stack.pop()!;
    if (typeof value !== "object" || value === null || seen.has(value)) continue;
    seen.add(value);
    // Children pushed last first, so that they are visited in document order: an object an alias
    // shares is reported where it is written, not where it is used again.
    if (Array.isArray(value))
      for (let i = value.length - 1; i >= 0; i--) stack.push([value[i], [...path, i]]);
    else
      for (const key of Object.keys(value).reverse()) {
        if (key === "__proto__") found.push([...path, key]);
        else stack.push([(value as Record<string, unknown>)[key], [...path, key]]);
      }
  }
  return found;
}

/**
 * A problem with the generated size when the size came from `--nodes` or `--pods-per-node`: the
 * flags are what to change, not the file's line (which still reads the size it had).
 */
function scaledIssue(issue: ScenarioIssue, scale: ScenarioScale): ScenarioIssue | undefined {
  const [head, field] = issue.path;
  // The size itself only: a generated name or address clashing is the file's, whatever the size.
  if (issue.path.length !== 2 || head !== "generate" || (field !== "nodes" && field !== "podsPerNode"))
    return undefined;
  const flags = [
    ...(scale.nodes !== undefined ? [`--nodes ${scale.nodes}`] : []),
    ...(scale.podsPerNode !== undefined ? [`--pods-per-node ${scale.podsPerNode}`] : []),
  ];
  return flags.length ? { path: [], message: `${flags.join(" ")}: ${issue.message}` } : undefined;
}

/** The scenario under another kube-proxy mode (undefined: as it is, its own `proxy:` or iptables). */
export const withProxy = (scenario: Scenario, proxy: ProxyName | undefined): Scenario =>
  proxy ? { ...scenario, proxy } : scenario;
