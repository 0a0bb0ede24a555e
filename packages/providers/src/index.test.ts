import { describe, expect, it } from "vitest";
import { getProvider, providerNames } from "./index.js";

describe("the provider list", () => {
  it("offers the three designs of the notes by name, and names the choices on a typo", () => {
    expect(providerNames).toEqual([
      "docker-bridge",
      "cbr0-host-gw",
      "cbr0-host-gw-gateway",
      "overlay",
      "overlay-4789",
    ]);
    // Each calls itself by the name it is picked by: one identity in tables, --json and --providers.
    for (const name of providerNames) expect(getProvider(name).name).toBe(name);
    expect(getProvider("overlay").podMtu(1500)).toBe(1450);
    expect(getProvider("cbr0-host-gw-gateway").gatewayRoutes).toBeTypeOf("function");
    expect(() => getProvider("flannel")).toThrow(
      'unknown provider "flannel"; choose one of: docker-bridge, cbr0-host-gw, cbr0-host-gw-gateway, overlay, overlay-4789',
    );
  });
});
