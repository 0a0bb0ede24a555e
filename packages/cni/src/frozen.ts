/**
 * Configs shared by every pod of a node. A provider's network config for a node's pods is the same
 * for all of them: the runtime builds it once per node and freezes it, and a plugin decodes (type
 * checks, canonicalises) a frozen config once. At 150,000 pods the per-pod copies and decodes were a
 * measured part of a 5,000-node build (objects every young-generation GC copies, and Go-style
 * decoding per ADD). Only frozen values are memoised: a caller's mutable object is decoded every time.
 */

/** `value`, with it and every object inside it frozen. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** `decode`, remembered per frozen input object (results of decoding a mutable one are not kept). */
export function memoFrozen<K extends object, V>(decode: (input: K) => V): (input: K) => V {
  const known = new WeakMap<K, V>();
  return (input) => {
    if (!Object.isFrozen(input)) return decode(input);
    if (known.has(input)) return known.get(input)!;
    const value = decode(input);
    known.set(input, value);
    return value;
  };
}
