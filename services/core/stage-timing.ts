/**
 * Debug aid for ingest latency: with FT_INGEST_TIMING=1 the wall-clock time of each ingest stage is
 * summed per stage and the averages are printed to stderr when the process gets SIGTERM (see
 * docs/benchmarks/ingest-main.md, "Where the latency went"). Off by default: then `stage` returns
 * its promise untouched. Stage names only, never data.
 */
const on = process.env.FT_INGEST_TIMING === '1';
const totals = new Map<string, { ms: number; n: number }>();
export function stage<T>(name: string, p: Promise<T>): Promise<T> {
  if (!on) return p;
  const t = performance.now();
  return p.finally(() => {
    const e = totals.get(name) ?? { ms: 0, n: 0 };
    e.ms += performance.now() - t; e.n++;
    totals.set(name, e);
  });
}
if (on) {
  const dump = () => {
    const lines = [...totals].map(([k, v]) => `${k.padEnd(14)} n=${String(v.n).padStart(5)} avg=${(v.ms / v.n).toFixed(2)} ms`);
    process.stderr.write(`ingest stages:\n${lines.join('\n')}\n`);
    totals.clear();
  };
  process.on('SIGTERM', dump);
}
