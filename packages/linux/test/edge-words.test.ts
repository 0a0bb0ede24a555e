// The host API takes values; text a user writes is parsed at the edge (@podnet/netlink's argument
// parsers), which refuse it in iproute2's words. This pins those words to what iproute2 itself
// prints for the same text on this kernel, so the edge stays as faithful as the backends.
import {
  parseAddrArgument,
  parseAddressArgument,
  parseLinkAddress,
  parseRouteDst,
  NetlinkError,
} from "@podnet/netlink";
import { describe, expect, it } from "vitest";
import { errorLine, run } from "../src/index.js";
import { kernelTestRun } from "./kernel.js";

const { system, linux, nextPrefix } = kernelTestRun(["ip"]);

function edgeMessage(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    if (error instanceof NetlinkError) return error.message;
    throw error;
  }
  throw new Error("expected the edge parser to refuse");
}

describe.skipIf(system.skip)("text refused at the edge, in iproute2's words", () => {
  it("refuses what iproute2 refuses, with the same line", async () => {
    const ns = nextPrefix();
    await linux.netns.add(ns);
    await linux.link.set(ns, "lo", { up: true });
    const cases: [string[], () => unknown][] = [
      [["addr", "add", "10.1.1.300/24", "dev", "lo"], () => parseAddrArgument("10.1.1.300/24")],
      [["route", "add", "10.9.3.5/24", "dev", "lo"], () => parseRouteDst("10.9.3.5/24")],
      [["route", "add", "10.9.3.0/33", "dev", "lo"], () => parseRouteDst("10.9.3.0/33")],
      [["route", "add", "10.9.3.0/24", "via", "10.9.3.300"], () => parseAddressArgument("10.9.3.300")],
      [
        ["neigh", "replace", "127.0.0.5", "lladdr", "96:fe:d6:d5:45", "dev", "lo"],
        () => parseLinkAddress("96:fe:d6:d5:45"),
      ],
      [
        ["neigh", "replace", "127.0.0.5", "lladdr", "zz:fe:d6:d5:45:cf", "dev", "lo"],
        () => parseLinkAddress("zz:fe:d6:d5:45:cf"),
      ],
    ];
    for (const [args, parse] of cases) {
      const result = await run(["ip", "-n", ns, ...args]);
      expect(result.code, args.join(" ")).not.toBe(0);
      expect(edgeMessage(parse), args.join(" ")).toBe(errorLine(result.stderr));
    }
    await linux.netns.del(ns);
  });
});
