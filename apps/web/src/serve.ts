// Node only (not part of the page): serves the built app on 127.0.0.1 — `podnet web` and the
// end-to-end tests use it. The app needs nothing but static files: the simulation runs in the browser.
import { createReadStream, realpathSync, statSync, type Stats } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** Where the built app is: dist/ beside this package's package.json. */
export const DIST_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".json": "application/json",
};

/** A port already taken, or one this process may not bind: a user's mistake, not a crash. */
export class ListenError extends Error {
  constructor(
    readonly port: number,
    readonly code: string,
  ) {
    super(
      code === "EADDRINUSE"
        ? `port ${port} on 127.0.0.1 is already in use (try --port 0 for a free one)`
        : code === "EACCES"
          ? `port ${port} needs privileges this process does not have (try a port above 1023)`
          : `cannot listen on 127.0.0.1:${port} (${code})`,
    );
  }
}

/**
 * Only names that resolve to this machine: a page on another site that rebinds its own name to
 * 127.0.0.1 (DNS rebinding) sends its own Host header, and is refused here.
 */
function loopbackHost(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host.toLowerCase());
  if (!match) return false;
  if (match[2] !== undefined && Number(match[2]) !== port) return false;
  return ["127.0.0.1", "localhost", "[::1]"].includes(match[1]!);
}

function fail(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers }).end(`${text}\n`);
}

function stat(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

/** Whether `file` is `base` or below it. */
const inside = (base: string, file: string) => file === base || file.startsWith(base + sep);

/** `file` with its symbolic links followed, if it exists. */
function real(file: string): string | undefined {
  try {
    return realpathSync(file);
  } catch {
    return undefined;
  }
}

function handle(base: string, port: () => number, req: IncomingMessage, res: ServerResponse): void {
  // A body is never read: after a refusal the connection closes rather than drain one that may not end.
  if (req.method !== "GET" && req.method !== "HEAD")
    return fail(res, 405, "method not allowed", { allow: "GET, HEAD", connection: "close" });
  if (!loopbackHost(req.headers.host, port())) return fail(res, 403, "forbidden host");
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? "/", "http://127.0.0.1").pathname);
  } catch {
    return fail(res, 400, "bad request: malformed URL");
  }
  if (path.includes("\0")) return fail(res, 400, "bad request: malformed URL");
  let file = join(base, normalize(path));
  if (!inside(base, file)) return fail(res, 403, "forbidden");
  let info = stat(file);
  if (info?.isDirectory()) info = stat((file = join(file, "index.html")));
  if (!info?.isFile()) return fail(res, 404, "not found");
  // A symbolic link under the root may point anywhere: what it names is served only from the root.
  const target = real(file);
  if (!target || !inside(base, target)) return fail(res, 403, "forbidden");
  res.writeHead(200, {
    "content-type": TYPES[extname(file)] ?? "application/octet-stream",
    "content-length": String(info.size),
    "x-content-type-options": "nosniff",
  });
  if (req.method === "HEAD") return void res.end();
  createReadStream(file)
    .on("error", () => res.destroy())
    .pipe(res);
}

/** Serves `root` on 127.0.0.1; rejects with a ListenError when the port cannot be had. */
export function serveStatic(root: string, port = 0): Promise<{ server: Server; url: string }> {
  // The root with its own links followed, so that a link inside it is judged by where it ends.
  const base = real(resolve(root)) ?? resolve(root);
  const server = createServer((req, res) => {
    try {
      handle(base, () => (server.address() as { port: number }).port, req, res);
    } catch {
      // Nothing a request sends may stop the server.
      if (!res.headersSent) fail(res, 500, "internal error");
      else res.destroy();
    }
  });
  // What Node's parser refuses gets a status before the connection closes, as Node's own handler
  // would give it (this one replaced it only so that no error could reach the process).
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status =
      error.code === "HPE_HEADER_OVERFLOW"
        ? "431 Request Header Fields Too Large"
        : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? "408 Request Timeout"
          : "400 Bad Request";
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  return new Promise((ok, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(new ListenError(port, error.code ?? error.message)),
    );
    server.listen(port, "127.0.0.1", () =>
      ok({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` }),
    );
  });
}
