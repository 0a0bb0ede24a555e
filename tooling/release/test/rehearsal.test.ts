// The publish rehearsal (issue "Publish for real"): the project's own release path run against a
// local registry, then every public package used from clean folders exactly as a user would.
//   1. Verdaccio on 127.0.0.1 (src/registry.ts), storage in a temporary folder.
//   2. On a copy of the repository: `changeset version --snapshot rehearsal`, `changeset publish`.
//   3. Per package, in its own empty folder: `npm install <package>` alone (size and dependency
//      count reported), its files (LICENSE, README, CHANGELOG), an ESM import and a CommonJS require
//      of each entry, a TypeScript consumer with module nodenext whose types must list exactly the
//      exports each format has at run time, and the README's examples typechecked and run.
//   4. `npx @podnet/cli …` and `npx -p @podnet/ipam podnet-ipam` ADD/DEL from empty folders.
// The figures go to test-results/rehearsal.md and the log.
import { createRequire } from "node:module";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireSystem } from "@podnet/testing";
import { consumerSources, consumerTsconfig, exportsProbe, type EntryExports } from "../src/consumer.js";
import { describeRun, run, type RunResult } from "../src/exec.js";
import { installedNames, measureInstall, megabytes, type InstallFigures } from "../src/measure.js";
import { readmeBlocks, type ReadmeBlock } from "../src/readme.js";
import { startRegistry, type Registry } from "../src/registry.js";
import { copyWorkspace, pnpmShim, publicPackages, type WorkspacePackage } from "../src/stage.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const require = createRequire(import.meta.url);
const tscBin = require.resolve("typescript/bin/tsc");
const typeRoot = dirname(dirname(require.resolve("@types/node/package.json")));
const changesetBin = join(root, "node_modules", ".bin", "changeset");
const LICENSE = readFileSync(join(root, "LICENSE"), "utf8");
const CLI_LIMIT = 15e6;

// Names known before anything is built, so each package gets its own test.
const names = publicPackages(root).map((p) => p.name);
const work = mkdtempSync(join(tmpdir(), "podnet-rehearsal-"));
let registry: Registry | undefined;
let published: Map<string, WorkspacePackage>;
const steps: { version?: RunResult; publish?: RunResult; versionMs?: number; publishMs?: number } = {};
const figures = new Map<string, InstallFigures & { installMs: number }>();

/** The environment a user's shell would have: none of the variables pnpm and turbo set for scripts. */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(npm_|pnpm_|turbo_)/i.test(key)),
  );
  // Nor the workspace's bins (the repository's node_modules/.bin) on PATH.
  env.PATH = (process.env.PATH ?? "")
    .split(":")
    .filter((dir) => !dir.includes("node_modules"))
    .join(":");
  return { ...env, ...extra };
}

async function ok(argv: string[], options: Parameters<typeof run>[1]): Promise<RunResult> {
  const result = await run(argv, options);
  if (result.status !== 0) throw new Error(describeRun(argv, result));
  return result;
}

/** An empty folder that resolves @podnet from the local registry (and everything else from npm). */
function consumerFolder(name: string): string {
  const dir = join(work, "consumers", name.replace(/[@/]/g, "_"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), '{ "name": "rehearsal-consumer", "private": true }\n');
  writeFileSync(join(dir, ".npmrc"), registry!.npmrc());
  return dir;
}

function pkg(name: string): WorkspacePackage {
  const found = published.get(name);
  if (!found) throw new Error(`${name} was not published`);
  return found;
}

async function npmInstall(dir: string, specs: string[]) {
  const started = performance.now();
  await ok(["npm", "install", "--no-audit", "--no-fund", ...specs], { cwd: dir, env: userEnv() });
  return performance.now() - started;
}

beforeAll(async () => {
  registry = await startRegistry(mkdtempSync(join(work, "registry-")));
  const stage = join(work, "stage");
  copyWorkspace(root, stage);
  const userconfig = join(work, "publish.npmrc");
  // Every @podnet question npm, pnpm and changesets ask during the release goes to the local registry.
  writeFileSync(userconfig, registry.npmrc({ publish: true }));
  const env = userEnv({
    PATH: `${pnpmShim(root, join(work, "bin"))}:${process.env.PATH}`,
    NPM_CONFIG_USERCONFIG: userconfig,
    "npm_config_@podnet:registry": registry.url,
  });
  let started = performance.now();
  steps.version = await run([changesetBin, "version", "--snapshot", "rehearsal"], { cwd: stage, env });
  steps.versionMs = performance.now() - started;
  started = performance.now();
  if (steps.version.status === 0) {
    steps.publish = await run([changesetBin, "publish", "--no-git-tag"], { cwd: stage, env });
  }
  steps.publishMs = performance.now() - started;
  published = new Map(publicPackages(stage).map((p) => [p.name, p]));
}, 900_000);

afterAll(async () => {
  await registry?.stop();
  const rows = [...figures].sort(([a], [b]) => a.localeCompare(b));
  const report = [
    "# Publish rehearsal",
    "",
    `changeset version --snapshot: ${Math.round(steps.versionMs ?? 0)} ms; changeset publish: ${Math.round(steps.publishMs ?? 0)} ms`,
    "",
    "| package | version | install size | dependencies installed | npm install |",
    "| --- | --- | ---: | ---: | ---: |",
    ...rows.map(
      ([name, f]) =>
        `| ${name} | ${published.get(name)?.version} | ${megabytes(f.bytes)} | ${f.dependencies} | ${(f.installMs / 1000).toFixed(1)} s |`,
    ),
    "",
  ].join("\n");
  mkdirSync(join(root, "tooling", "release", "test-results"), { recursive: true });
  writeFileSync(join(root, "tooling", "release", "test-results", "rehearsal.md"), report);
  console.log(report);
  rmSync(work, { recursive: true, force: true });
});

describe("the release path against a local registry", () => {
  it("changeset version --snapshot, then changeset publish, publish every public package", async () => {
    expect(steps.version?.status, describeRun(["changeset", "version"], steps.version!)).toBe(0);
    expect(steps.publish?.status, describeRun(["changeset", "publish"], steps.publish!)).toBe(0);
    expect([...published.keys()].sort()).toEqual([...names].sort());
    for (const { name, version } of published.values()) {
      expect(version, name).toMatch(/-rehearsal-/);
      const packument = (await (await fetch(`${registry!.url}${name.replace("/", "%2f")}`)).json()) as {
        versions?: Record<string, unknown>;
      };
      expect(Object.keys(packument.versions ?? {}), name).toContain(version);
    }
  });
});

describe.each(names)("%s from the registry", (name) => {
  it.concurrent(
    "installs alone, ships its files, and its ESM, CommonJS and nodenext types agree; README examples run",
    async () => {
      const { version } = pkg(name);
      const dir = consumerFolder(name);
      const installMs = await npmInstall(dir, [`${name}@${version}`]);
      figures.set(name, { ...measureInstall(dir), installMs });
      const installed = join(dir, "node_modules", name);

      // What the tarball holds: built files, the license, the readme, the changelog; no sources.
      expect(readFileSync(join(installed, "LICENSE"), "utf8")).toBe(LICENSE);
      for (const file of ["README.md", "CHANGELOG.md"])
        expect(existsSync(join(installed, file)), file).toBe(true);
      expect(readdirSync(installed)).not.toContain("src");
      if (name === "@podnet/core") expect(figures.get(name)!.dependencies).toBe(0);
      if (name === "@podnet/ipam") expect(installedNames(dir)).not.toContain("zod");

      // Optional peers (zod for @podnet/cni/schemas, vitest for the conformance suite) as a user adds them.
      const shipped = JSON.parse(
        readFileSync(join(installed, "package.json"), "utf8"),
      ) as WorkspacePackage["manifest"];
      const peers = Object.entries(shipped.peerDependencies ?? {}).filter(
        ([peer]) => shipped.peerDependenciesMeta?.[peer]?.optional,
      );
      if (peers.length)
        await npmInstall(
          dir,
          peers.map(([peer, range]) => `${peer}@${range}`),
        );
      const specifiers = Object.keys(shipped.exports ?? {})
        .filter((sub) => sub !== "./package.json")
        .map((sub) => name + sub.slice(1));
      const files: string[] = [];
      if (specifiers.length) {
        const underVitest = "vitest" in (shipped.peerDependencies ?? {});
        if (underVitest) {
          writeFileSync(join(dir, "probe.test.mjs"), exportsProbe(specifiers, { underVitest }));
          const vitest = join(dir, "node_modules", "vitest", "vitest.mjs");
          await ok(["node", vitest, "run", "probe.test.mjs"], { cwd: dir, env: userEnv() });
        } else {
          writeFileSync(join(dir, "probe.mjs"), exportsProbe(specifiers));
          await ok(["node", "probe.mjs"], { cwd: dir, env: userEnv() });
        }
        const runtime = JSON.parse(readFileSync(join(dir, "probe.json"), "utf8")) as Record<
          string,
          { esm: string[]; cjs: string[] | string }
        >;
        const entries: EntryExports[] = specifiers.map((specifier) => ({
          specifier,
          ...runtime[specifier]!,
        }));
        for (const entry of entries) {
          expect(entry.esm.length, `${entry.specifier} exports something`).toBeGreaterThan(0);
          const conditions = (shipped.exports as Record<string, object>)[
            `.${entry.specifier.slice(name.length)}`
          ]!;
          if ("require" in conditions) {
            expect(entry.cjs, `${entry.specifier}: require() gives what import() gives`).toEqual(entry.esm);
          } else {
            expect(entry.cjs, `${entry.specifier} is for import only`).toBe("ERR_PACKAGE_PATH_NOT_EXPORTED");
          }
        }
        for (const [file, text] of Object.entries(consumerSources(entries))) {
          writeFileSync(join(dir, file), text);
          files.push(file);
        }
      }

      // README examples, in order in this folder: sh blocks run in bash (their `npm install` lines
      // too); ts blocks run once typechecked — all of them with the consumer, in one tsc run when
      // the first is reached (after the install lines before it).
      const blocks = readmeBlocks(readFileSync(join(installed, "README.md"), "utf8"), `${name}/README.md`);
      const runnable = blocks.filter(
        (block) => !block.skip && !(block.root && requireSystem({ tools: ["ip"], root: true }).skip),
      );
      const script = (block: ReadmeBlock) => `readme-${block.line}`;
      for (const block of runnable.filter((b) => b.language !== "sh")) {
        writeFileSync(join(dir, `${script(block)}.mts`), block.code);
        files.push(`${script(block)}.mts`);
      }
      let typechecked = false;
      for (const block of runnable) {
        const env = userEnv(block.env);
        env.PATH = `${join(dir, "node_modules", ".bin")}:${env.PATH}`;
        if (block.language === "sh") {
          await ok(["bash", "-eo", "pipefail", "-c", block.code], { cwd: dir, env });
          continue;
        }
        if (!typechecked) await typecheck(dir, files);
        typechecked = true;
        const js = ts.transpileModule(block.code, {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        }).outputText;
        writeFileSync(join(dir, `${script(block)}.mjs`), js);
        await ok(["node", `${script(block)}.mjs`], { cwd: dir, env });
      }
      if (!typechecked && files.length) await typecheck(dir, files);
    },
    600_000,
  );
});

async function typecheck(dir: string, files: string[]) {
  writeFileSync(join(dir, "tsconfig.json"), consumerTsconfig(files, typeRoot));
  await ok(["node", tscBin, "-p", "."], { cwd: dir, env: userEnv() });
}

describe("the commands from npx, in empty folders", () => {
  it.concurrent(
    "@podnet/cli: installed size under 15 MB, bundled scenarios shipped and run, podnet web serves the app",
    async () => {
      const dir = consumerFolder("cli-installed");
      await npmInstall(dir, [`@podnet/cli@${pkg("@podnet/cli").version}`]);
      const { bytes } = measureInstall(dir);
      expect(bytes, megabytes(bytes)).toBeLessThan(CLI_LIMIT);

      const shipped = join(dir, "node_modules", "@podnet", "cli", "scenarios");
      const bundled = readdirSync(join(root, "scenarios")).filter((f) => f.endsWith(".yaml"));
      expect(readdirSync(shipped).sort()).toEqual(bundled.sort());
      for (const file of bundled) {
        expect(readFileSync(join(shipped, file), "utf8"), file).toBe(
          readFileSync(join(root, "scenarios", file), "utf8"),
        );
      }
      const podnet = join(dir, "node_modules", ".bin", "podnet");
      const compare = await ok([podnet, "compare", join(shipped, "two-nodes.yaml"), "--json"], {
        cwd: dir,
        env: userEnv(),
      });
      const results = JSON.parse(compare.stdout) as { provider: string }[];
      expect(results.map((r) => r.provider)).toEqual(
        expect.arrayContaining(["docker-bridge", "cbr0-host-gw", "overlay"]),
      );

      // podnet web finds the app in @podnet/web's dist/ and serves it on 127.0.0.1.
      const server = spawn(podnet, ["web", "--port", "0"], {
        cwd: dir,
        env: userEnv(),
        stdio: ["ignore", "pipe", "pipe"],
      });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let out = "";
          server.stdout.setEncoding("utf8").on("data", (chunk: string) => {
            out += chunk;
            const match = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
            if (match) resolve(match[0]);
          });
          server.on("exit", (code) => reject(new Error(`podnet web exited ${code}: ${out}`)));
        });
        const page = await fetch(url);
        expect(page.status).toBe(200);
        const html = await page.text();
        const asset = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
        expect(asset, html).toBeDefined();
        expect((await fetch(url + asset)).status).toBe(200);
      } finally {
        server.kill();
      }
    },
    600_000,
  );

  it.concurrent(
    "npx @podnet/cli compare two-nodes; podnet scenarios; podnet --version",
    async () => {
      const dir = consumerFolder("cli-npx");
      const env = userEnv();
      const compare = await ok(["npx", "-y", "@podnet/cli", "compare", "two-nodes"], { cwd: dir, env });
      for (const provider of ["docker-bridge", "cbr0-host-gw", "overlay"])
        expect(compare.stdout).toContain(provider);
      const list = await ok(["npx", "-y", "@podnet/cli", "scenarios"], { cwd: dir, env });
      // The bundled scenarios are the folder's YAML files (prepack ships those, not its subfolders).
      for (const file of readdirSync(join(root, "scenarios")).filter((f) => f.endsWith(".yaml")))
        expect(list.stdout).toContain(file.replace(/\.yaml$/, ""));
      const version = await ok(["npx", "-y", "@podnet/cli", "--version"], { cwd: dir, env });
      expect(version.stdout.trim()).toBe(pkg("@podnet/cli").version);
    },
    600_000,
  );

  it.concurrent(
    "npx -p @podnet/ipam podnet-ipam: ADD then DEL against a host-local config",
    async () => {
      const dir = consumerFolder("ipam-npx");
      const dataDir = join(dir, "ipam-state");
      const config = JSON.stringify({
        cniVersion: "1.0.0",
        name: "rehearsal",
        ipam: { type: "host-local", ranges: [[{ subnet: "10.22.0.0/24" }]], dataDir },
      });
      const argv = ["npx", "-y", "-p", `@podnet/ipam@${pkg("@podnet/ipam").version}`, "podnet-ipam"];
      const cni = (command: string) =>
        userEnv({
          CNI_COMMAND: command,
          CNI_CONTAINERID: "rehearsal1",
          CNI_NETNS: "/run/netns/rehearsal1",
          CNI_IFNAME: "eth0",
          CNI_PATH: "/opt/cni/bin",
        });
      const add = await ok(argv, { cwd: dir, env: cni("ADD"), input: config });
      expect(JSON.parse(add.stdout)).toEqual({
        cniVersion: "1.0.0",
        ips: [{ address: "10.22.0.2/24", gateway: "10.22.0.1" }],
        dns: {},
      });
      expect(readFileSync(join(dataDir, "rehearsal", "10.22.0.2"), "utf8")).toMatch(/^rehearsal1/);
      const del = await ok(argv, { cwd: dir, env: cni("DEL"), input: config });
      expect(del.stdout).toBe("");
      expect(existsSync(join(dataDir, "rehearsal", "10.22.0.2"))).toBe(false);
    },
    600_000,
  );
});
