/**
 * Everything the CLI reads from or writes to the file system: scenarios by path or bundled name,
 * read with a size bound and only from regular files (a FIFO or /dev/zero would hang a plain read),
 * and output paths checked before any work starts, so a long run is never lost to an unwritable
 * path and an output never overwrites an input.
 */
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  openSync,
  readSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  MAX_SCENARIO_BYTES,
  loadScenario,
  type ManifestReader,
  type Scenario,
  type ScenarioScale,
} from "@podnet/cluster";
import type { NetworkProvider } from "@podnet/cni";
import { printable } from "@podnet/core";
import { UsageError } from "./errors.js";

/**
 * Where the bundled scenarios are: `scenarios/` shipped beside the CLI's dist/ when installed from a
 * registry, or the repository's own scenarios/ when run from a checkout.
 */
function bundledDir(): string | undefined {
  for (const candidate of ["../scenarios/", "../../../scenarios/"]) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(dir) && statSync(dir).isDirectory()) return dir;
  }
  return undefined;
}

export interface BundledScenario {
  name: string;
  file: string;
}

export function bundledScenarios(): BundledScenario[] {
  const dir = bundledDir();
  if (!dir) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => ({ name: f.slice(0, -".yaml".length), file: resolve(dir, f) }));
}

/** A path, or the name of a bundled scenario ("two-nodes") when no such file exists. */
export function scenarioPath(arg: string): string {
  if (!arg.trim())
    throw new UsageError(
      `${JSON.stringify(arg)}: a scenario file's path or a bundled scenario's name, not empty`,
    );
  if (existsSync(arg) || /[/\\]|\.(ya?ml|json)$/i.test(arg)) return arg;
  const bundled = bundledScenarios().find((s) => s.name === arg);
  if (bundled) return bundled.file;
  const names = bundledScenarios().map((s) => s.name);
  throw new UsageError(
    `${printable(arg)}: no such scenario file, nor a bundled scenario${names.length ? ` (bundled: ${names.join(", ")})` : ""}`,
  );
}

/** What the errors opening a file say, in words (the code follows, for a search). */
const ERRNO_WORDS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "not permitted",
  ENOTDIR: "a directory on its path is a file",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "the name is too long",
};

/** Reads a text file of at most `limit` bytes; only regular files, so nothing can block the read. */
export function readBounded(file: string, what: string, limit: number, hint = ""): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO with no writer must not wait for one.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    throw new UsageError(`${file}: cannot read the ${what}: ${ERRNO_WORDS[code] ?? "refused"} (${code})`);
  }
  try {
    const info = fstatSync(fd);
    if (info.isDirectory()) throw new UsageError(`${file}: is a directory, not a ${what}`);
    if (!info.isFile())
      throw new UsageError(`${file}: not a regular file (a device, FIFO or socket), not a ${what}`);
    if (info.size > limit)
      throw new UsageError(
        `${file}: ${info.size} bytes is larger than a ${what} can be (${limit / 2 ** 20} MiB)${hint}`,
      );
    const buffer = Buffer.alloc(info.size);
    let read = 0;
    while (read < info.size) {
      const n = readSync(fd, buffer, read, info.size - read, read);
      if (n === 0) break;
      read += n;
    }
    const text = buffer.subarray(0, read).toString("utf8");
    if (text.includes("\0")) throw new UsageError(`${file}: binary data, not a ${what}`);
    return text;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and checks a scenario given by path or bundled name; remembers its path as an input. With
 * `providers`, what each asks of a scenario is checked too, located in the file.
 */
export function readScenario(
  arg: string,
  inputs?: Set<string>,
  scale?: ScenarioScale,
  providers?: readonly NetworkProvider[],
): Scenario {
  const file = scenarioPath(arg);
  const text = readBounded(
    file,
    "scenario file",
    MAX_SCENARIO_BYTES,
    ": a large cluster is generated with a generate: block, not listed",
  );
  inputs?.add(identity(file));
  return loadScenario(text, file, scale, manifestReader(inputs), providers);
}

/**
 * Several scenarios for one run (bench, verify): one named twice, by name or by path, is refused
 * with the option's words, as a provider named twice is.
 */
export function readScenarios(
  args: readonly string[],
  inputs?: Set<string>,
  scale?: ScenarioScale,
): Scenario[] {
  const seen = new Map<string, string>();
  for (const arg of args) {
    const id = identity(scenarioPath(arg));
    const first = seen.get(id);
    if (first !== undefined)
      throw new UsageError(
        first === arg ? `scenario ${JSON.stringify(arg)} is named twice` : `${arg} is ${first} again`,
      );
    seen.set(id, arg);
  }
  return args.map((arg) => readScenario(arg, inputs, scale));
}

/** Reads a scenario's manifest files, relative to the scenario; each becomes an input too. */
export function manifestReader(inputs?: Set<string>): ManifestReader {
  return (path, from) => {
    // join() would read "https://host/x.yaml" as the relative path https:/host/x.yaml.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path))
      throw new Error(`${JSON.stringify(path)} is a URL: manifests are read from files (download it first)`);
    const file = isAbsolute(path) ? path : join(dirname(from), path);
    const text = readBounded(file, "manifest file", MAX_SCENARIO_BYTES);
    const id = identity(file);
    inputs?.add(id);
    return { text, file, id };
  };
}

/**
 * A path's identity for "is this one of the inputs?": the file's device and inode when it exists (a
 * hard link is another name for the same file, which a path comparison missed), else its path.
 */
function identity(file: string): string {
  try {
    const { dev, ino } = statSync(file);
    return `${dev}:${ino}`;
  } catch {
    return resolve(file);
  }
}

/**
 * Checks, before any work, that `file` can be written and is none of `inputs`, by opening it for
 * writing as the write will (without truncating it; a file this creates is removed again). Access
 * bits alone say nothing to root, and nothing about /proc or a read-only mount.
 */
export function checkOutput(option: string, file: string, inputs: Set<string>): void {
  if (!file) throw new UsageError(`${option}: needs a file name`);
  if (inputs.has(identity(file)))
    throw new UsageError(`${option}: ${file} is an input of this command; refusing to overwrite it`);
  const existed = existsSync(file);
  if (existed && statSync(file).isDirectory()) throw new UsageError(`${option}: ${file} is a directory`);
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO nobody reads fails at once (ENXIO) instead of waiting for a reader.
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_NONBLOCK, 0o644);
  } catch (error) {
    throw new UsageError(`${option}: cannot write ${file} (${(error as NodeJS.ErrnoException).code})`);
  }
  closeSync(fd);
  // The file this made, not the path: through a dangling symlink that is the link's target, and
  // removing the path would have removed the user's link (the output then written in its place).
  if (!existed) rmSync(realpathSync(file), { force: true });
}

/** Writes an output checked with checkOutput; a failure now (a full disk) is still the user's to fix. */
export function writeOutput(option: string, file: string, data: string | Uint8Array): void {
  try {
    writeFileSync(file, data);
  } catch (error) {
    throw new UsageError(`${option}: cannot write ${file} (${(error as NodeJS.ErrnoException).code})`);
  }
}
