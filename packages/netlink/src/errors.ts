import { PodnetError } from "@podnet/core";

/** errno names the kernel (or iproute2) answers with. */
export type Errno =
  | "EEXIST"
  | "ENOENT"
  | "ESRCH"
  | "ENODEV"
  | "EINVAL"
  | "ENETDOWN"
  | "ENETUNREACH"
  | "EADDRNOTAVAIL"
  | "EBUSY"
  | "EPERM"
  | "EOPNOTSUPP";

/**
 * A refused host change. `message` is the line iproute2 prints for it on a real kernel
 * ("RTNETLINK answers: File exists", "Error: Nexthop has invalid gateway."), so the simulator and
 * the Linux backend fail the same way, and `command` is what was asked, in iproute2 syntax.
 */
export class NetlinkError extends PodnetError {
  constructor(
    readonly errno: Errno,
    message: string,
    readonly command: string,
  ) {
    super(errno, message);
  }

  /** The message without iproute2's "RTNETLINK answers: " / "Error: " framing, for reasons in reports. */
  get reason(): string {
    return this.message.replace(/^(RTNETLINK answers: |Error: )/, "").replace(/\.$/, "");
  }
}

/** The kernel's words for the errors a user meets; the strings are what iproute2 prints. */
export const KernelMessage = {
  fileExists: "RTNETLINK answers: File exists",
  noSuchProcess: "RTNETLINK answers: No such process",
  noSuchFileOrDirectory: "RTNETLINK answers: No such file or directory",
  networkUnreachable: "RTNETLINK answers: Network is unreachable",
  invalidGateway: "Error: Nexthop has invalid gateway.",
  nexthopDeviceNotUp: "Error: Device for nexthop is not up.",
  onlinkDeviceNotUp: "Error: Nexthop device is not up.",
  addressAlreadyAssigned: "Error: ipv4: Address already assigned.",
  addressNotFound: "Error: ipv4: Address not found.",
  notSupported: "RTNETLINK answers: Operation not supported",
  mtuTooSmall: "Error: mtu less than device minimum.",
  onlinkNeedsDevice: "Error: Nexthop device required for onlink.",
  /** iproute2's check_ifname refusing a name (empty, over 15 bytes, "/" or whitespace in it). */
  badIfname: (name: string) => `Error: argument "${name}" is wrong: "name" not a valid ifname`,
  /** The kernel refusing a name iproute2 passed on (":" in it, "." or ".."). */
  invalidArgument: "RTNETLINK answers: Invalid argument",
  cannotFindDevice: (name: string) => `Cannot find device "${name}"`,
  netnsExists: (name: string) => `Cannot create namespace file "/run/netns/${name}": File exists`,
  netnsMissing: (name: string) => `Cannot open network namespace "${name}": No such file or directory`,
  netnsDelMissing: (name: string) =>
    `Cannot remove namespace file "/run/netns/${name}": No such file or directory`,
  noSuchMaster: (name: string) => `Error: argument "${name}" is wrong: Device does not exist`,
  chainBusy: (chain: string) => `CHAIN_DEL failed (Device or resource busy): chain ${chain}`,
  iptablesNoChain: "iptables: No chain/target/match by that name.",
  iptablesChainExists: "iptables: Chain already exists.",
  iptablesBadRule: "iptables: Bad rule (does a matching rule exist in that chain?).",
} as const;
