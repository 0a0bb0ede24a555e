// The checked-in corpus of bad scenarios: each file says why it is wrong and, in `# expect:` lines,
// exactly the messages it must give — file, line, column, path and words.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ScenarioError, loadScenario } from "../src/index.js";

const dir = join(__dirname, "corpus");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .sort();

describe("the corpus of bad scenarios", () => {
  it("has cases", () => expect(files.length).toBeGreaterThanOrEqual(20));

  it.each(files)("%s is refused with the messages it names", (file) => {
    const text = readFileSync(join(dir, file), "utf8");
    const expected = text
      .split("\n")
      .filter((l) => l.startsWith("# expect: "))
      .map((l) => l.slice("# expect: ".length));
    expect(expected.length).toBeGreaterThan(0);
    let error: unknown;
    try {
      loadScenario(text, file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ScenarioError);
    expect((error as ScenarioError).message.split("\n")).toEqual(expected);
    for (const issue of (error as ScenarioError).issues) expect(issue.line).toBeGreaterThan(0);
  });
});
