import { describe, expect, it } from "vitest";
import { quoteInput } from "./errors.js";

describe("quoteInput", () => {
  it("quotes as JSON does, and cuts a long input after max characters, saying its length", () => {
    expect(quoteInput("web")).toBe('"web"');
    expect(quoteInput(42)).toBe("42");
    expect(quoteInput(undefined)).toBe("undefined");
    expect(quoteInput("a".repeat(15_000_000), 10)).toBe('"aaaaaaaaa…" (15,000,000 characters)');
    expect(quoteInput("a".repeat(8), 10)).toBe('"aaaaaaaa"');
    expect(quoteInput({ a: "b".repeat(50) }, 10)).toBe('{"a":"bbbb… (58 characters)');
  });
});
