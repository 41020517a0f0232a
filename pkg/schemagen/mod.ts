/**
 * JSON Schema generation for Compozy's YAML files.
 *
 * @module
 */

export { generateSchemas, SCHEMA_SOURCES, type SchemaFileName, serializeSchema } from "./generate.ts";
export { dispatchUnions, type JsonSchema } from "./union_dispatch.ts";
