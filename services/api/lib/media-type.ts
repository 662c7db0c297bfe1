/** Parses `type/subtype; a=b; c="d"` into its essence and lower-cased parameter names. */
export function parseMediaType(header: string | undefined): { essence: string; params: Record<string, string>; repeated: string[] } | undefined {
  if (!header) return undefined;
  const [head, ...rest] = splitParams(header);
  const essence = head.trim().toLowerCase();
  if (!/^[\w.+-]+\/[\w.+-]+$/.test(essence)) return undefined;
  const params: Record<string, string> = {};
  // A parameter given twice is ambiguous (which boundary?): callers refuse it rather than guess.
  const repeated: string[] = [];
  for (const param of rest) {
    const eq = param.indexOf('=');
    if (eq <= 0) continue;
    let value = param.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    const name = param.slice(0, eq).trim().toLowerCase();
    if (name in params) repeated.push(name);
    params[name] = value;
  }
  return { essence, params, repeated };
}

/** Splits on `;` outside quotes. */
function splitParams(header: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < header.length; i++) {
    const c = header[i];
    if (c === '"' && header[i - 1] !== '\\') quoted = !quoted;
    if (c === ';' && !quoted) {
      out.push(current);
      current = '';
    } else current += c;
  }
  out.push(current);
  return out;
}
