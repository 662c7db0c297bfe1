import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where each resilience test leaves its figures (JSON) for docs/resilience.md. */
export const FIGURES_DIR = process.env.RESILIENCE_FIGURES_DIR ?? path.join(os.tmpdir(), 'ft-resilience-figures');

export function writeFigures(name: string, figures: unknown) {
  fs.mkdirSync(FIGURES_DIR, { recursive: true });
  fs.writeFileSync(path.join(FIGURES_DIR, `${name}.json`), `${JSON.stringify({ at: new Date().toISOString(), ...figures as object }, null, 2)}\n`);
}
