/**
 * The providers podnet ships, by the name users pick them with. Adding a provider is a package and
 * one line here.
 */
import type { NetworkProvider } from "@podnet/cni";
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { dockerBridge } from "@podnet/provider-docker-bridge";
import { overlay } from "@podnet/provider-overlay";

export const providers: Record<string, () => NetworkProvider> = {
  "docker-bridge": () => dockerBridge,
  "cbr0-host-gw": () => cbr0HostGw(),
  "cbr0-host-gw-gateway": () => cbr0HostGw({ routesOn: "gateway" }),
  overlay: () => overlay(),
  "overlay-4789": () => overlay({ port: 4789 }),
};

export const providerNames = Object.keys(providers);

export class UnknownProviderError extends Error {
  constructor(readonly requested: string) {
    super(`unknown provider ${JSON.stringify(requested)}; choose one of: ${providerNames.join(", ")}`);
  }
}

export function getProvider(name: string): NetworkProvider {
  const make = providers[name];
  if (!make) throw new UnknownProviderError(name);
  return make();
}
