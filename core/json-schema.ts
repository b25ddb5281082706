/** A JSON Schema object (draft 2020-12 subset that ajv understands). */
export type JsonSchema = Record<string, unknown>;
