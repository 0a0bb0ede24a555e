/** Base class of every error podnet throws on purpose; `code` is stable and machine-readable. */
export class PodnetError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * An input quoted for an error message (JSON's quoting), cut after `max` characters with its length
 * said: a message names what it refuses, and a 15 MB `name:` made a 15 MB message.
 */
/**
 * A name as typed, for a message: unquoted, unless it holds control characters (an escape sequence
 * would act on the terminal that prints the message), then quoted with them escaped.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(text) ? JSON.stringify(text) : text;
}

export function quoteInput(input: unknown, max = 100): string {
  // JSON would print NaN and ±Infinity (YAML's .nan, .inf) as null: not what the user wrote.
  const text =
    typeof input === "number" && !Number.isFinite(input)
      ? String(input)
      : (JSON.stringify(input) ?? String(input));
  if (text.length <= max) return text;
  const length = typeof input === "string" ? input.length : text.length;
  return `${text.slice(0, max)}…${typeof input === "string" ? '"' : ""} (${length.toLocaleString("en-US")} characters)`;
}

/** Text that should have been an address, prefix or MAC and is not. The message starts with the input. */
export class AddressParseError extends PodnetError {
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super("EADDRPARSE", `${input}: ${reason}`);
  }
}

/** Bytes that do not decode as the header expected at `offset`. The only error a decoder throws. */
export class DecodeError extends PodnetError {
  constructor(
    readonly layer: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super("EDECODE", `${layer} at byte ${offset}: ${reason}`);
  }
}

/** A header that cannot be put on the wire as given (a field out of its range). */
export class EncodeError extends PodnetError {
  constructor(
    readonly layer: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super("EENCODE", `${layer}.${field}: ${reason}`);
  }
}
