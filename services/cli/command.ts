import type { ParseArgsConfig } from 'node:util';
import type { Core } from '../core/core.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;


/**
 * One CLI command. Adding a command is adding one entry to COMMANDS: its name, usage line,
 * one-line summary, options (node:util parseArgs) and handler. Handlers throw UsageError for
 * wrong arguments (usage is shown), Error for anything else; they return the exit code.
 */
export interface Command {
  name: string;
  usage: string;
  summary: string;
  options?: Options;
  run(core: Core, args: string[], values: Values): Promise<number>;
}

export class UsageError extends Error {}