/** The YAML editor: paste, upload or edit a scenario; its mistakes shown under their lines. */
import { formatPath, type ScenarioIssue } from "@podnet/cluster";
import { useRef } from "react";

/**
 * One message per mistake: after a YAML syntax error the parser reports the lines it could no longer
 * make sense of too, which are consequences, not further mistakes.
 */
export function firstPerMistake(issues: ScenarioIssue[]): ScenarioIssue[] {
  const syntax = issues.filter((i) => i.path.length === 0 && i.message.startsWith("YAML"));
  return syntax.length ? [syntax[0]!] : issues;
}

export function ScenarioEditor({
  text,
  file,
  issues,
  onChange,
  onApply,
}: {
  text: string;
  file: string;
  issues: ScenarioIssue[];
  onChange: (t: string) => void;
  onApply: () => void;
}) {
  const lines = text.split("\n");
  const area = useRef<HTMLTextAreaElement>(null);
  const byLine = new Map<number, { message: string; column: number }[]>();
  for (const i of issues) {
    const path = formatPath(i.path);
    const line = i.line ?? 1;
    const column = i.column ?? 1;
    // As the CLI prints it: file:line:column: path: message.
    byLine.set(line, [
      ...(byLine.get(line) ?? []),
      {
        message: `${file}:${line}:${column}: ${path}${path ? ": " : ""}${i.message}${
          i.first?.line !== undefined ? ` (the first at line ${i.first.line})` : ""
        }`,
        column,
      },
    ]);
  }
  /** Puts the cursor in the editor where the mistake is, the rest of its line selected, scrolled into view. */
  const jump = (line: number, column: number) => {
    const ta = area.current;
    if (!ta) return;
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    const from = start + Math.min(column - 1, lines[line - 1]?.length ?? 0);
    ta.focus();
    ta.setSelectionRange(from, start + (lines[line - 1]?.length ?? 0));
    // A line's height as rendered (the editor's lines do not wrap: it is as wide as the page).
    ta.scrollTop = Math.max(0, (line - 3) * (ta.scrollHeight / lines.length));
  };
  return (
    <section className="editor" aria-label="scenario editor">
      <label htmlFor="yaml">Scenario YAML</label>
      <textarea
        ref={area}
        id="yaml"
        value={text}
        spellCheck={false}
        onChange={(e) => onChange(e.target.value)}
        rows={14}
      />
      <label className="upload">
        or upload a file:{" "}
        <input
          type="file"
          name="scenario-file"
          accept=".yaml,.yml,.json,application/json,text/yaml"
          onChange={async (e) => e.target.files?.[0] && onChange(await e.target.files[0].text())}
        />
      </label>
      <button type="button" onClick={onApply}>
        Validate and build
      </button>
      {issues.length > 0 && (
        <ol className="annotated" aria-label="validation errors">
          {lines.map((line, i) =>
            byLine.has(i + 1) ? (
              <li key={i} value={i + 1}>
                <button
                  type="button"
                  className="to-line"
                  title="show this line in the editor"
                  onClick={() => jump(i + 1, byLine.get(i + 1)![0]!.column)}
                >
                  <code>{line}</code>
                </button>
                {byLine.get(i + 1)!.map(({ message }) => (
                  <div key={message} className="inline-error" role="alert">
                    {message}
                  </div>
                ))}
              </li>
            ) : null,
          )}
        </ol>
      )}
    </section>
  );
}
