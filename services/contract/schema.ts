import { Kind, Type, TypeRegistry, type TSchema } from '@sinclair/typebox';

/**
 * Small TypeBox helpers for the contract. Every schema here is plain JSON Schema: Fastify serializes
 * responses with it and @fastify/swagger publishes it; `Static<>` gives the TypeScript type that
 * web/ imports. Nothing here may import server code (web bundles these files).
 */

/** `T | null` (anyOf), which fast-json-stringify and OpenAPI both understand. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/**
 * A string with a known set of values: `{ type: 'string', enum }`, typed as the union. The serializer
 * writes it as a string (a value added on the server before the contract knows it is not a 500).
 */
export const StringEnum = <const T extends readonly string[]>(values: T, options: { description?: string } = {}) =>
  Type.Unsafe<T[number]>({ [Kind]: 'StringEnum', type: 'string', enum: [...values], ...options });

// So TypeBox's own checker (Value.Check, used by the contract tests) knows the kind.
if (!TypeRegistry.Has('StringEnum')) {
  TypeRegistry.Set<{ enum: string[] }>('StringEnum', (schema, value) => typeof value === 'string' && schema.enum.includes(value));
}
