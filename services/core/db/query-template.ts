import type { CompiledQuery } from 'kysely';

/** Marks a stand-in value; no DICOM string or id holds a NUL character. */
const STAND_IN = '\u0000value:';

type Slot = { name: string } | { constant: unknown };

/**
 * A statement whose shape never changes, only its values: built and compiled by Kysely once, with
 * stand-ins for the values, then filled per call. Every upload runs the same few statements, and
 * building and compiling them through Kysely (immutable nodes, a visitor per node) cost more main-
 * thread time than SQLite spends running them.
 *
 * The first call compiles; it throws if a value did not end up as a parameter exactly as given (the
 * statement's text would then depend on it, and a compiled copy would be wrong for other values).
 * `undefined` is bound as NULL: with stand-ins every column is always listed.
 */
export class QueryTemplate<V extends object> {
  private compiled: { query: CompiledQuery; slots: Slot[] } | undefined;

  constructor(private readonly build: (values: V) => CompiledQuery) {}

  fill(values: V): CompiledQuery {
    this.compiled ??= this.compile(Object.keys(values));
    const { query, slots } = this.compiled;
    const given = values as Record<string, unknown>;
    return { ...query, parameters: slots.map((slot) => ('name' in slot ? given[slot.name] ?? null : slot.constant)) };
  }

  private compile(names: string[]): { query: CompiledQuery; slots: Slot[] } {
    const query = this.build(Object.fromEntries(names.map((name) => [name, STAND_IN + name])) as V);
    const used = new Set<string>();
    const slots = query.parameters.map((parameter): Slot => {
      if (typeof parameter === 'string' && parameter.startsWith(STAND_IN)) {
        const name = parameter.slice(STAND_IN.length);
        used.add(name);
        return { name };
      }
      if (typeof parameter === 'string' && parameter.includes(STAND_IN)) throw new Error('a value was changed on its way into the statement');
      return { constant: parameter };
    });
    if (query.sql.includes(STAND_IN)) throw new Error('a value was written into the statement text');
    const missing = names.filter((name) => !used.has(name));
    if (missing.length) throw new Error(`not parameters of the statement: ${missing.join(', ')}`);
    return { query, slots };
  }
}
