#!/usr/bin/env node
// prepack/postpack of every published package (run by npm and pnpm in the package's folder):
// copies what the tarball needs from the repository root, which stays the single source —
// LICENSE into every package, and the bundled scenarios into a package whose `files` lists
// "scenarios" (@podnet/cli, which finds them at ../scenarios/ from its dist/). `--clean` (postpack)
// removes the copies again, so the repository never holds two versions of them.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pkg = process.cwd();
const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
if (!existsSync(join(root, "pnpm-workspace.yaml")) || pkg === root) {
  console.error(`prepack: run it from a package folder of the podnet repository (cwd: ${pkg})`);
  process.exit(2);
}
const clean = process.argv.includes("--clean");
const shipsScenarios = (manifest.files ?? []).includes("scenarios");

rmSync(join(pkg, "LICENSE"), { force: true });
if (shipsScenarios) rmSync(join(pkg, "scenarios"), { recursive: true, force: true });
if (!clean) {
  copyFileSync(join(root, "LICENSE"), join(pkg, "LICENSE"));
  if (shipsScenarios) {
    mkdirSync(join(pkg, "scenarios"));
    for (const file of readdirSync(join(root, "scenarios")).filter((f) => f.endsWith(".yaml"))) {
      copyFileSync(join(root, "scenarios", file), join(pkg, "scenarios", file));
    }
  }
}
