import { lstatSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

export interface InstallFigures {
  /** Bytes of every file under node_modules (apparent size, as the tarballs unpack). */
  bytes: number;
  /** Packages installed besides the one asked for, from package-lock.json. */
  dependencies: number;
}

function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += bytesUnder(path);
    else if (entry.isFile()) total += lstatSync(path).size;
  }
  return total;
}

/** Size and dependency count of a folder where `npm install <one package>` ran. */
export function measureInstall(folder: string): InstallFigures {
  const lock = JSON.parse(readFileSync(join(folder, "package-lock.json"), "utf8")) as {
    packages: Record<string, unknown>;
  };
  const installed = Object.keys(lock.packages).filter((key) => key.startsWith("node_modules/"));
  return { bytes: bytesUnder(join(folder, "node_modules")), dependencies: installed.length - 1 };
}

/** Names installed in a folder (from package-lock.json), e.g. to show zod is not among them. */
export function installedNames(folder: string): string[] {
  const lock = JSON.parse(readFileSync(join(folder, "package-lock.json"), "utf8")) as {
    packages: Record<string, unknown>;
  };
  return Object.keys(lock.packages)
    .filter((key) => key.startsWith("node_modules/"))
    .map((key) => key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length));
}

export const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;
