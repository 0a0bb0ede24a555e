import type { Reply, Request } from "./protocol.js";

type Payload = Request extends infer R ? (R extends Request ? Omit<R, "id"> : never) : never;

/** Promise-shaped calls into the simulation worker. */
export class Simulation {
  private readonly worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  private next = 1;
  private readonly pending = new Map<number, (reply: Reply) => void>();

  constructor() {
    this.worker.onmessage = (event: MessageEvent<Reply>) => {
      this.pending.get(event.data.id)?.(event.data);
      this.pending.delete(event.data.id);
    };
  }

  call(payload: Payload): Promise<Reply> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ ...payload, id });
    });
  }
}
