/**
 * Fault injection for crash tests: `FT_FAILPOINTS=after-file-commit` makes the process kill itself
 * at that point, so a test can prove what a crash there leaves behind. Inert unless the variable is set.
 */
const active = new Set((process.env.FT_FAILPOINTS ?? '').split(',').filter(Boolean));

export function failpoint(name: string): void {
  if (active.has(name)) process.kill(process.pid, 'SIGKILL');
}
