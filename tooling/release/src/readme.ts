// The examples of a package's README, as the rehearsal runs them against the published package.
// Fenced blocks tagged ts, js or sh run in order in one folder where the package is installed; other
// fences (plain text, output, JSON) are shown, not run. An HTML comment on the line before a fence
// tells how to run it, invisibly to readers:
//   <!-- readme-test: env NAME=value ... -->   extra environment (e.g. CNI_COMMAND=VERSION)
//   <!-- readme-test: root -->                 needs root (creates network namespaces)
//   <!-- readme-test: skip <why> -->           not run (e.g. a server that runs until Ctrl-C)

export type BlockLanguage = "ts" | "js" | "sh";

export interface ReadmeBlock {
  language: BlockLanguage;
  code: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
  env: Record<string, string>;
  root: boolean;
  skip?: string;
}

const RUNNABLE: Record<string, BlockLanguage> = {
  ts: "ts",
  typescript: "ts",
  js: "js",
  sh: "sh",
  bash: "sh",
};
const DIRECTIVE = /^<!--\s*readme-test:\s*(\w+)(.*?)-->$/;

export function readmeBlocks(markdown: string, file = "README.md"): ReadmeBlock[] {
  const lines = markdown.split("\n");
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    let end = i + 1;
    while (end < lines.length && lines[end]!.trim() !== fence) end++;
    if (end === lines.length) throw new Error(`${file}:${i + 1}: code block is not closed`);
    const language = RUNNABLE[open[2]!.toLowerCase()];
    if (language) {
      const block: ReadmeBlock = {
        language,
        code: lines.slice(i + 1, end).join("\n") + "\n",
        line: i + 1,
        env: {},
        root: false,
      };
      let previous = i - 1;
      while (previous >= 0 && lines[previous]!.trim() === "") previous--;
      const directive = previous >= 0 ? DIRECTIVE.exec(lines[previous]!.trim()) : null;
      if (directive) applyDirective(block, directive[1]!, directive[2]!.trim(), `${file}:${previous + 1}`);
      blocks.push(block);
    }
    i = end;
  }
  return blocks;
}

function applyDirective(block: ReadmeBlock, verb: string, rest: string, where: string) {
  switch (verb) {
    case "env":
      for (const pair of rest.split(/\s+/).filter(Boolean)) {
        const eq = pair.indexOf("=");
        if (eq <= 0) throw new Error(`${where}: readme-test env wants NAME=value, got "${pair}"`);
        block.env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      return;
    case "root":
      block.root = true;
      return;
    case "skip":
      if (!rest) throw new Error(`${where}: readme-test skip needs a reason`);
      block.skip = rest;
      return;
    default:
      throw new Error(`${where}: unknown readme-test directive "${verb}" (env, root, skip)`);
  }
}
