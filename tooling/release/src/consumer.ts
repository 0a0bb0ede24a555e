// A TypeScript consumer of installed packages, typechecked with module "nodenext": one ES module file
// that imports every entry and one CommonJS file that requires it. Each file states, for each entry,
// that the value exports its declarations describe are exactly the keys the module has at run time
// (measured by importing and requiring it), so the types a consumer compiles against match the file
// Node loads for that consumer, in both formats.

export interface EntryExports {
  /** e.g. "@podnet/cni/node" */
  specifier: string;
  /**
   * Object.keys of the namespace import() gives, and of what require() gives — or, for an entry
   * whose exports have no "require" condition, the error code require() fails with.
   */
  esm: string[];
  cjs: string[] | string;
}

const HELPERS = `type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
`;

const union = (keys: string[]) => (keys.length ? keys.map((k) => JSON.stringify(k)).join(" | ") : "never");

export function consumerSources(entries: EntryExports[]): { "consumer.mts": string; "consumer.cts": string } {
  const requirable = entries.filter((e) => Array.isArray(e.cjs));
  const esm = entries.map((e, i) => `import * as m${i} from ${JSON.stringify(e.specifier)};`);
  const cjs = requirable.map((e, i) => `import m${i} = require(${JSON.stringify(e.specifier)});`);
  const checks = (list: EntryExports[], keys: (e: EntryExports) => string[]) =>
    `export type Checks = [\n${list
      .map((e, i) => `  Assert<Same<keyof typeof m${i}, ${union(keys(e))}>>,`)
      .join("\n")}\n];\n`;
  return {
    "consumer.mts": `${esm.join("\n")}\n${HELPERS}${checks(entries, (e) => e.esm)}`,
    "consumer.cts": `${cjs.join("\n")}\n${HELPERS}${checks(requirable, (e) => e.cjs as string[])}`,
  };
}

/** tsconfig of the consumer: Node's own module rules, strict, and the library files checked too. */
export function consumerTsconfig(files: string[], typeRoot: string): string {
  return JSON.stringify(
    {
      compilerOptions: {
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        lib: ["es2023"],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ["node"],
        typeRoots: [typeRoot],
      },
      files,
    },
    null,
    2,
  );
}

/**
 * A script that writes probe.json, { specifier: { esm, cjs } } for each entry, run inside the consumer
 * folder. An entry that imports vitest (a conformance suite) loads only inside a vitest run, so for a
 * package with vitest among its peers the probe is a vitest test file.
 */
export function exportsProbe(specifiers: string[], { underVitest = false } = {}): string {
  const body = `const out = {};
  for (const specifier of ${JSON.stringify(specifiers)}) {
    let cjs;
    try {
      cjs = Object.keys(require(specifier)).sort();
    } catch (error) {
      cjs = error.code ?? String(error);
    }
    out[specifier] = { esm: Object.keys(await import(specifier)).sort(), cjs };
  }
  writeFileSync("probe.json", JSON.stringify(out));`;
  return `import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
${underVitest ? 'import { test } from "vitest";\n' : ""}const require = createRequire(import.meta.url);
${underVitest ? `test("exports", async () => {\n  ${body}\n});` : `{\n  ${body}\n}`}
`;
}
