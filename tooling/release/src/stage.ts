// The release path on a copy of the repository, so `changeset version` never edits the checkout:
// sources and built dist/ folders are copied, each package's node_modules (links to its workspace
// dependencies, which pnpm publish reads to replace workspace: ranges) keeps its relative links, and
// the root node_modules is linked, not copied.
import {
  chmodSync,
  cpSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  existsSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, sep } from "node:path";

const SKIPPED = new Set([".git", ".turbo", "test-results"]);

export function copyWorkspace(root: string, dest: string): void {
  cpSync(root, dest, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (source) => {
      const rel = relative(root, source);
      if (rel === "node_modules" || rel.startsWith(`tooling${sep}release${sep}registry${sep}node_modules`))
        return false;
      return !rel.split(sep).some((part) => SKIPPED.has(part));
    },
  });
  symlinkSync(join(root, "node_modules"), join(dest, "node_modules"));
}

export interface WorkspacePackage {
  name: string;
  version: string;
  dir: string;
  manifest: Record<string, unknown> & {
    exports?: Record<string, unknown>;
    bin?: Record<string, string>;
    peerDependencies?: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  };
}

/** The packages changesets publishes: every workspace package that is not private. */
export function publicPackages(root: string): WorkspacePackage[] {
  return ["packages", "apps", "tooling"].flatMap((group) =>
    existsSync(join(root, group))
      ? readdirSync(join(root, group))
          .map((name) => join(root, group, name))
          .filter((dir) => existsSync(join(dir, "package.json")))
          .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) }))
          .filter(({ manifest }) => !manifest.private)
          .map(({ dir, manifest }) => ({ name: manifest.name, version: manifest.version, dir, manifest }))
      : [],
  );
}

/**
 * A `pnpm` on PATH for changesets (it spawns the package manager by name), as the repository pins it:
 * the pnpm that runs the tests when there is one (npm_execpath), else through npx.
 */
export function pnpmShim(root: string, binDir: string): string {
  const { packageManager } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    packageManager: string;
  };
  const running = process.env.npm_execpath ?? "";
  const manifest = join(dirname(running), "..", "package.json");
  const same =
    /pnpm\.c?js$/.test(running) &&
    existsSync(manifest) &&
    `pnpm@${(JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version}` === packageManager;
  const command = same
    ? `${JSON.stringify(process.execPath)} ${JSON.stringify(running)}`
    : `npx -y ${packageManager}`;
  mkdirSync(binDir, { recursive: true });
  const shim = join(binDir, "pnpm");
  writeFileSync(shim, `#!/bin/sh\nexec ${command} "$@"\n`);
  chmodSync(shim, 0o755);
  return binDir;
}
