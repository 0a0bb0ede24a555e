/**
 * Go's encoding/json, as far as host-local's config needs it: a value decoded into a typed Go
 * struct, with Go's rules and Go's words. host-local unmarshals its config with json.Unmarshal, so
 * `"dataDir": 5` is "json: cannot unmarshal number into Go struct field IPAMConfig.ipam.dataDir of
 * type string" there; podnet-ipam must refuse it the same way instead of ignoring the key.
 *
 * The rules reproduced (Go 1.19, decode.go): keys match field names exactly, else case-insensitively;
 * unknown keys are ignored; null leaves a field unset; a JSON kind that does not fit the field is
 * remembered (the first one wins) and decoding goes on; an error from a type's own unmarshaller
 * (net.IP, types.IPNet, types.Route) stops decoding at once and wins over remembered ones, and if it
 * is itself a type error it is reported at the field being decoded (addErrorContext).
 */

/** The field a decoding error is reported at: Go's errorContext (struct type name, JSON field path). */
interface Context {
  struct?: string;
  path: string[];
}

/** Go's *json.UnmarshalTypeError. */
export class GoTypeError extends Error {
  constructor(
    readonly value: string,
    readonly goType: string,
    context: Context,
  ) {
    super(
      context.struct !== undefined || context.path.length
        ? `json: cannot unmarshal ${value} into Go struct field ${context.struct ?? ""}.${context.path.join(".")} of type ${goType}`
        : `json: cannot unmarshal ${value} into Go value of type ${goType}`,
    );
  }

  at(context: Context): GoTypeError {
    return new GoTypeError(this.value, this.goType, context);
  }
}

export type GoType =
  | { kind: "string" }
  | { kind: "bool" }
  /** Go's int (64-bit): a JSON number without a fraction. */
  | { kind: "int" }
  /** A TextUnmarshaler (net.IP): only a JSON string fits; `parse` throws the type's own error. */
  | { kind: "text"; goType: string; parse(text: string): unknown }
  /** A json.Unmarshaler (types.IPNet, types.Route): decodes the raw value itself. */
  | { kind: "unmarshaler"; decode(value: unknown): unknown }
  | { kind: "slice"; goType: string; of: GoType }
  | { kind: "struct"; name: string; goType: string; fields: Record<string, GoType> };

/** The JSON kind as Go names it in type errors. */
export function jsonKind(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (typeof value === "boolean") return "bool";
  return typeof value === "object" ? "object" : typeof value; // "string" | "number" | "object"
}

const goTypeName = (type: GoType): string =>
  type.kind === "string" || type.kind === "bool" || type.kind === "int"
    ? type.kind
    : type.kind === "unmarshaler"
      ? ""
      : type.goType;

/** Go's field lookup: the exact JSON name first, else the first that matches ignoring case. */
function fieldFor(fields: Record<string, GoType>, key: string): [string, GoType] | undefined {
  if (Object.hasOwn(fields, key)) return [key, fields[key]!];
  const lower = key.toLowerCase();
  const name = Object.keys(fields).find((f) => f.toLowerCase() === lower);
  return name === undefined ? undefined : [name, fields[name]!];
}

class Decoder {
  saved: GoTypeError | undefined;

  private mismatch(value: unknown, type: GoType, context: Context, kind = jsonKind(value)): undefined {
    this.saved ??= new GoTypeError(kind, goTypeName(type), context);
    return undefined;
  }

  decode(value: unknown, type: GoType, context: Context): unknown {
    if (value === null) return undefined;
    switch (type.kind) {
      case "string":
        return typeof value === "string" ? value : this.mismatch(value, type, context);
      case "bool":
        return typeof value === "boolean" ? value : this.mismatch(value, type, context);
      case "int":
        if (typeof value !== "number") return this.mismatch(value, type, context);
        // Go names the number that does not fit: "number 1.5".
        return Number.isSafeInteger(value) ? value : this.mismatch(value, type, context, `number ${value}`);
      case "text":
        return typeof value === "string" ? type.parse(value) : this.mismatch(value, type, context);
      case "unmarshaler":
        try {
          return type.decode(value);
        } catch (error) {
          throw error instanceof GoTypeError ? error.at(context) : error;
        }
      case "slice":
        if (!Array.isArray(value)) return this.mismatch(value, type, context);
        return value.map((item) => this.decode(item, type.of, context));
      case "struct": {
        if (jsonKind(value) !== "object") return this.mismatch(value, type, context);
        const out: Record<string, unknown> = {};
        for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
          const field = fieldFor(type.fields, key);
          if (!field) continue;
          const [name, fieldType] = field;
          const decoded = this.decode(item, fieldType, { struct: type.name, path: [...context.path, name] });
          if (decoded !== undefined) out[name] = decoded;
        }
        return out;
      }
    }
  }
}

/** json.Unmarshal(value, &T): the decoded value (JSON names as keys, nulls left out) or Go's error. */
export function goUnmarshal(value: unknown, type: GoType): unknown {
  const decoder = new Decoder();
  const out = decoder.decode(value, type, { path: [] });
  if (decoder.saved) throw decoder.saved;
  return out;
}
