// The static server behind `podnet web`: hostile requests get an HTTP answer and never stop it.
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListenError, serveStatic } from "../src/serve.js";

/** One raw HTTP/1.1 request, so that malformed paths and Host headers reach the server as sent. */
function raw(port: number, head: string): Promise<{ status: number; text: string }> {
  return new Promise((ok, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.on("data", (d) => (data += d.toString("latin1")));
    socket.on("error", reject);
    socket.on("close", () => ok({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 0), text: data }));
    socket.write(`${head}\r\nConnection: close\r\n\r\n`);
  });
}

describe("podnet web's server", () => {
  let dir: string;
  let server: Server;
  let port: number;
  const get = (path: string, host = `127.0.0.1:${port}`, method = "GET") =>
    raw(port, `${method} ${path} HTTP/1.1\r\nHost: ${host}`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "podnet-serve-"));
    mkdirSync(join(dir, "site", "assets"), { recursive: true });
    writeFileSync(join(dir, "site", "index.html"), "<!doctype html><title>podnet</title>");
    writeFileSync(join(dir, "site", "assets", "app.js"), "console.log(1)");
    writeFileSync(join(dir, "secret.txt"), "outside the root");
    // Links under the root: one out of it (to a file, to a directory), one to a file inside it.
    symlinkSync(join(dir, "secret.txt"), join(dir, "site", "leak.txt"));
    symlinkSync(dir, join(dir, "site", "up"));
    symlinkSync(join(dir, "site", "assets", "app.js"), join(dir, "site", "app-link.js"));
    const started = await serveStatic(join(dir, "site"));
    server = started.server as unknown as Server;
    port = Number(new URL(started.url).port);
  });
  afterAll(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves files and the index, with types and lengths", async () => {
    const index = await get("/");
    expect(index.status).toBe(200);
    expect(index.text).toMatch(/content-type: text\/html/i);
    expect(index.text).toContain("<title>podnet</title>");
    const js = await get("/assets/app.js", `localhost:${port}`);
    expect(js.status).toBe(200);
    expect(js.text).toMatch(/content-length: 14/i);
    const head = await get("/", `127.0.0.1:${port}`, "HEAD");
    expect(head.status).toBe(200);
    expect(head.text).not.toContain("<title>");
    expect((await get("/nope.js")).status).toBe(404);
  });

  it("answers 400 to malformed escapes and keeps serving", async () => {
    for (const path of ["/%", "/%zz", "/a%E0%A4%A", "/%00"]) expect((await get(path)).status).toBe(400);
    expect((await get("/")).status).toBe(200);
  });

  it("never serves outside its root", async () => {
    for (const path of [
      "/../secret.txt",
      "/%2e%2e/secret.txt",
      "/assets/..%2f..%2fsecret.txt",
      "/leak.txt",
      "/up/secret.txt",
    ]) {
      const res = await get(path);
      expect(res.text).not.toContain("outside the root");
      expect([403, 404]).toContain(res.status);
    }
    expect((await get("/app-link.js")).status).toBe(200);
  });

  it("refuses Host names that are not this machine (DNS rebinding)", async () => {
    for (const host of ["evil.example", "evil.example:" + port, "127.0.0.1.evil.example", "10.0.0.1"])
      expect((await get("/", host)).status).toBe(403);
    expect((await get("/", `127.0.0.1:${port + 1}`)).status).toBe(403);
    expect((await get("/", `[::1]:${port}`)).status).toBe(200);
    expect((await raw(port, "GET / HTTP/1.0")).status).toBe(403);
  });

  it("answers 405 to methods other than GET and HEAD", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS"]) {
      const res = await get("/", `127.0.0.1:${port}`, method);
      expect(res.status).toBe(405);
      expect(res.text).toMatch(/allow: GET, HEAD/i);
    }
  });

  it("answers what Node's parser refuses with a status, not a silent close", async () => {
    // The connection was destroyed with no answer.
    expect((await raw(port, "GARBAGE")).status).toBe(400);
    expect((await raw(port, "GET / HTTP/9.9")).status).toBe(400);
    expect(
      (await raw(port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Big: ${"a".repeat(20_000)}`)).status,
    ).toBe(431);
    expect((await get("/")).status).toBe(200);
  });

  it("reports a port in use as a ListenError", async () => {
    const taken = createServer();
    await new Promise<void>((ok) => taken.listen(0, "127.0.0.1", ok));
    const busy = (taken.address() as { port: number }).port;
    const error = await serveStatic(join(dir, "site"), busy).catch((e: unknown) => e);
    taken.close();
    expect(error).toBeInstanceOf(ListenError);
    expect((error as Error).message).toBe(
      `port ${busy} on 127.0.0.1 is already in use (try --port 0 for a free one)`,
    );
  });
});
