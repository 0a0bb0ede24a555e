import { formatHeader, type Header } from "@podnet/core";

export interface HeaderLine {
  text: string;
  changed: boolean;
}

/** Each header of a hop as text, marked when it differs from the same header at the hop before. */
export function headerLines(previous: Header[] | undefined, current: Header[]): HeaderLine[] {
  return current.map((h, i) => {
    const before = previous?.[i];
    const text = formatHeader(h);
    return { text, changed: !before || before.kind !== h.kind || formatHeader(before) !== text };
  });
}
