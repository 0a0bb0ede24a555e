#!/usr/bin/env node
// Runs every package's tests through turbo and ends with one line, `N passed, N failed[, N skipped]`,
// summed from each package's vitest JSON report. CI reads that line; vitest's own per-package
// summaries are not recognised. Only Node built-ins here: this script also installs the workspace
// when node_modules is missing, so `npm test` works on a fresh clone.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join, dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const pnpm = ["npx", "-y", rootManifest.packageManager];

function firstLine(text) {
  return (
    String(text ?? "")
      .split("\n")
      .find((line) => line.trim()) ?? ""
  );
}

function run(argv) {
  const result = spawnSync(argv[0], argv.slice(1), { cwd: root, stdio: "inherit", env: process.env });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

if (!existsSync(join(root, "node_modules", ".modules.yaml"))) {
  const status = run([...pnpm, "install", "--frozen-lockfile"]);
  if (status !== 0) {
    console.error("pnpm install failed");
    console.log("0 passed, 1 failed");
    process.exit(status);
  }
}

const workspaces = ["packages", "apps", "tooling"].flatMap((group) => {
  const dir = join(root, group);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => join(dir, entry.name))
    .filter((pkg) => {
      const manifest = join(pkg, "package.json");
      return existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).scripts?.test;
    });
});
for (const pkg of workspaces) rmSync(join(pkg, "test-results"), { recursive: true, force: true });

// Through pnpm, because turbo looks for the package manager's binary on PATH.
process.env.TURBO_TELEMETRY_DISABLED = "1";
const status = run([...pnpm, "exec", "turbo", "run", "test", "--continue", ...process.argv.slice(2)]);

let passed = 0;
let failed = 0;
let skipped = 0;
let ranAny = false;
// Why each failing package failed, printed just above the total: a CI log is read from its end.
const why = [];
for (const pkg of workspaces) {
  const report = join(pkg, "test-results", "vitest.json");
  if (!existsSync(report)) continue;
  ranAny = true;
  const totals = JSON.parse(readFileSync(report, "utf8"));
  passed += totals.numPassedTests;
  failed += totals.numFailedTests;
  skipped += totals.numPendingTests + (totals.numTodoTests ?? 0);
  const name = relative(root, pkg);
  for (const file of totals.testResults ?? []) {
    // A suite that failed to load (syntax error, missing module) has no failed *tests*; count it.
    if (file.status === "failed" && file.assertionResults.length === 0) {
      failed += 1;
      why.push(`${name}: ${relative(pkg, file.name)} did not load: ${firstLine(file.message)}`);
    }
    for (const test of file.assertionResults ?? [])
      if (test.status === "failed")
        why.push(`${name}: ${test.fullName}: ${firstLine(test.failureMessages?.[0])}`);
  }
  const errors = join(pkg, "test-results", "errors.json");
  if (existsSync(errors))
    for (const error of JSON.parse(readFileSync(errors, "utf8")))
      why.push(`${name}: error outside any test: ${error.stack ?? error.message}`);
}
for (const line of why) console.error(`FAILED ${line}`);
// turbo failed but every report is green: a package crashed before vitest could report.
if (status !== 0 && failed === 0) failed = 1;
if (!ranAny && status === 0) console.error("no test reports were written");
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(status !== 0 || failed > 0 ? 1 : 0);
