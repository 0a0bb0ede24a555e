import { describe, expect, it } from "vitest";
import { readmeBlocks } from "./readme.js";

describe("readmeBlocks", () => {
  it("takes ts, js and sh blocks in order, with the directive on the line before", () => {
    const md = [
      "# x",
      "```sh",
      "npm install @podnet/x",
      "```",
      "text",
      "<!-- readme-test: env CNI_COMMAND=VERSION A=b=c -->",
      "",
      "```ts",
      "const a = 1;",
      "```",
      "```",
      "output, not run",
      "```",
      "<!-- readme-test: skip serves until Ctrl-C -->",
      "```bash",
      "podnet web",
      "```",
      "<!-- readme-test: root -->",
      "````js",
      "```",
      "````",
    ].join("\n");
    expect(readmeBlocks(md)).toEqual([
      { language: "sh", code: "npm install @podnet/x\n", line: 2, env: {}, root: false },
      {
        language: "ts",
        code: "const a = 1;\n",
        line: 8,
        env: { CNI_COMMAND: "VERSION", A: "b=c" },
        root: false,
      },
      { language: "sh", code: "podnet web\n", line: 15, env: {}, root: false, skip: "serves until Ctrl-C" },
      { language: "js", code: "```\n", line: 19, env: {}, root: true },
    ]);
  });

  it("locates a bad directive and an unclosed block", () => {
    expect(() => readmeBlocks("<!-- readme-test: sometimes -->\n```ts\n```\n", "a.md")).toThrow(
      'a.md:1: unknown readme-test directive "sometimes"',
    );
    expect(() => readmeBlocks("<!-- readme-test: env X -->\n```ts\n```\n", "a.md")).toThrow(
      'a.md:1: readme-test env wants NAME=value, got "X"',
    );
    expect(() => readmeBlocks("<!-- readme-test: skip -->\n```sh\n```\n", "a.md")).toThrow(
      "a.md:1: readme-test skip needs a reason",
    );
    expect(() => readmeBlocks("x\n```ts\nconst a = 1;\n", "a.md")).toThrow(
      "a.md:2: code block is not closed",
    );
  });
});
