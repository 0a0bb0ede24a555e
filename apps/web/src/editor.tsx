/** The YAML editor: paste, upload or edit a scenario; its mistakes shown under their lines. */
import { formatPath, type ScenarioIssue } from "@podnet/cluster";

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
  const byLine = new Map<number, string[]>();
  for (const i of issues) {
    const path = formatPath(i.path);
    byLine.set(i.line ?? 1, [
      ...(byLine.get(i.line ?? 1) ?? []),
      `${file}: ${path}${path ? ": " : ""}${i.message}`,
    ]);
  }
  return (
    <section className="editor" aria-label="scenario editor">
      <label htmlFor="yaml">Scenario YAML</label>
      <textarea
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
                <code>{line}</code>
                {byLine.get(i + 1)!.map((m) => (
                  <div key={m} className="inline-error" role="alert">
                    {m}
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
