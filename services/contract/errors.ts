import { Type, type Static } from '@sinclair/typebox';

/** Any 4xx/5xx body: a short error and a message in words (other fields, e.g. a code, pass through). */
export const ErrorBodySchema = Type.Object({ error: Type.String(), message: Type.String(), code: Type.Optional(Type.String()) }, { additionalProperties: true });
export type ErrorBody = Static<typeof ErrorBodySchema>;
