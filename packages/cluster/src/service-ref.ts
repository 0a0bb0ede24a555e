/**
 * Services are namespaced, as in Kubernetes: `web` in `shop` and `web` in `prod` are two Services.
 * A probe, an event or the web app names one as its DNS name begins — `web` while no other namespace
 * has a Service named so, `web.shop` always (a Service's name is a DNS-1035 label: it holds no dot).
 * One index for the scenario check and the runtime, so both read a name the same way.
 */
import { quoteInput as q } from "@podnet/core";
import { serviceKey } from "@podnet/route-manager";

/** A Service's reference split: its name, and the namespace when the reference says one. */
export function parseServiceRef(ref: string): { name: string; namespace?: string } {
  const dot = ref.indexOf(".");
  return dot < 0 ? { name: ref } : { name: ref.slice(0, dot), namespace: ref.slice(dot + 1) };
}

/** Values by namespace and name, with the namespaces that hold each name (kept as values change). */
export class ServiceIndex<T> {
  private readonly byKey = new Map<string, T>();
  private readonly namespaces = new Map<string, string[]>();

  get size(): number {
    return this.byKey.size;
  }

  get(namespace: string, name: string): T | undefined {
    return this.byKey.get(serviceKey({ namespace, name }));
  }

  set(namespace: string, name: string, value: T): void {
    const key = serviceKey({ namespace, name });
    if (!this.byKey.has(key)) this.namespaces.set(name, [...(this.namespaces.get(name) ?? []), namespace]);
    this.byKey.set(key, value);
  }

  delete(namespace: string, name: string): void {
    if (!this.byKey.delete(serviceKey({ namespace, name }))) return;
    const left = this.namespaces.get(name)!.filter((n) => n !== namespace);
    if (left.length) this.namespaces.set(name, left);
    else this.namespaces.delete(name);
  }

  values(): IterableIterator<T> {
    return this.byKey.values();
  }

  /** The map itself, keyed `namespace/name` (kube-proxy's ServicePortName without the port). */
  get map(): ReadonlyMap<string, T> {
    return this.byKey;
  }

  /** The namespaces holding a Service of this name, in the order their Services came. */
  namespacesOf(name: string): readonly string[] {
    return this.namespaces.get(name) ?? [];
  }

  /** `name`, or `name.namespace` when another namespace has a Service of that name. */
  ref(namespace: string, name: string): string {
    return (this.namespaces.get(name)?.length ?? 0) > 1 ? `${name}.${namespace}` : name;
  }

  /**
   * The Service `ref` names, or why none: unknown, or a bare name two namespaces hold (which one is
   * then for the reference to say).
   */
  find(ref: string): { value: T; namespace: string; name: string } | { error: string } {
    const { name, namespace } = parseServiceRef(ref);
    return this.named(name, namespace);
  }

  /** The Service of this name, in this namespace or, when none is said, the only one of the name. */
  named(name: string, namespace?: string): { value: T; namespace: string; name: string } | { error: string } {
    const ref = namespace === undefined ? name : `${name}.${namespace}`;
    const held = this.namespaces.get(name) ?? [];
    if (namespace === "") return { error: `${q(ref)}: no namespace after the "." (svc/<name>.<namespace>)` };
    if (namespace !== undefined) {
      const value = this.get(namespace, name);
      if (value !== undefined) return { value, namespace, name };
      return {
        error: held.length
          ? `unknown service ${q(ref)}: ${name} is in namespace${held.length > 1 ? "s" : ""} ${held.join(", ")}, not ${namespace}`
          : `unknown service ${q(ref)}`,
      };
    }
    if (held.length === 1) return { value: this.get(held[0]!, name)!, namespace: held[0]!, name };
    if (!held.length) return { error: `unknown service ${q(ref)}` };
    return {
      error: `service ${q(name)} is in namespaces ${held.join(", ")}: name one as ${held.map((n) => `${name}.${n}`).join(" or ")}`,
    };
  }
}
