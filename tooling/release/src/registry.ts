// The rehearsal's registry: Verdaccio 5, installed from npm with the pinned lockfile in registry/,
// listening on 127.0.0.1 with its storage in a temporary folder and no uplink, so nothing it holds
// or serves comes from anywhere else. Only the @podnet scope is served from it; every other package
// comes from the npm registry as for any user.
import { existsSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describeRun, run } from "./exec.js";

const registryPackage = fileURLToPath(new URL("../registry/", import.meta.url));

export interface Registry {
  url: string;
  /** .npmrc lines that route the @podnet scope to this registry (with a token when publishing). */
  npmrc(options?: { publish?: boolean }): string;
  stop(): Promise<void>;
}

/** `npm ci` of the pinned Verdaccio, once per checkout. */
export async function installRegistry(): Promise<string> {
  const bin = join(registryPackage, "node_modules", "verdaccio", "bin", "verdaccio");
  if (!existsSync(bin)) {
    const argv = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"];
    const result = await run(argv, { cwd: registryPackage });
    if (result.status !== 0) throw new Error(describeRun(argv, result));
  }
  return bin;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startRegistry(workDir: string): Promise<Registry> {
  const bin = await installRegistry();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const config = join(workDir, "verdaccio.yaml");
  writeFileSync(
    config,
    [
      `storage: ${JSON.stringify(join(workDir, "storage"))}`,
      `auth:`,
      `  htpasswd:`,
      `    file: ${JSON.stringify(join(workDir, "htpasswd"))}`,
      `    max_users: -1`,
      `uplinks: {}`,
      `packages:`,
      `  "@podnet/*":`,
      `    access: $all`,
      `    publish: $all`,
      `  "**":`,
      `    access: $all`,
      `web:`,
      `  enable: false`,
      `log: { type: stdout, format: pretty, level: warn }`,
      ``,
    ].join("\n"),
  );
  const child = spawn(process.execPath, [bin, "--config", config, "--listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (log += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (log += chunk));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`verdaccio exited (${child.exitCode}):\n${log}`);
    try {
      if ((await fetch(`${url}-/ping`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(`verdaccio did not answer on ${url} within 60 s:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  const hostPath = url.replace(/^http:/, "");
  return {
    url,
    npmrc: ({ publish = false } = {}) =>
      // npm refuses to publish without a token; Verdaccio lets anyone publish @podnet here.
      `@podnet:registry=${url}\n` + (publish ? `${hostPath}:_authToken=rehearsal\n` : ""),
    async stop() {
      child.kill();
      await exited;
    },
  };
}
