/**
 * The API contract: response schemas declared once (JSON Schema via TypeBox) with their TypeScript
 * types. Routes attach the schemas (`schema.response`) for serialization and /openapi.json; web/
 * imports the types. Imports nothing of the server, so the browser bundle can include it.
 */
export * from './admin.js';
export * from './errors.js';
export * from './priority.js';
export * from './schema.js';
export * from './viewer.js';
