import AjvModule, { type Ajv as AjvInstance, type ErrorObject } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

// ajv is CommonJS; under NodeNext its default export arrives one level deep.
type AjvClass = new (options: Record<string, unknown>) => AjvInstance;
const Ajv = ((AjvModule as unknown as { default?: AjvClass }).default ?? AjvModule) as unknown as AjvClass;

/*
 * fastify's own ajv removes unknown fields and coerces types ("1" → 1, "true" → true). An admin
 * API should reject both, so bodies are checked strictly. Query strings and path parameters are
 * text by nature and are coerced, but only to scalars (a repeated parameter is an error).
 */
const common = {
  allErrors: true,
  useDefaults: true,
  removeAdditional: false,
  strict: false,
  addUsedSchema: false,
  // Gives errors their schema, so a pattern can be explained by its description.
  verbose: true,
};
const bodyAjv = new Ajv({ ...common, coerceTypes: false });
const textAjv = new Ajv({ ...common, coerceTypes: true });

export const validatorCompiler: FastifySchemaCompiler<any> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object);

/** Compiles a schema with the strict (body) rules, for files the plugin reads itself. */
export function compileStrict<T>(
  schema: object,
): ((data: unknown) => data is T) & { errors?: ErrorObject[] | null } {
  return bodyAjv.compile<T>(schema);
}

const PART_NAMES: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

/** One readable sentence from ajv errors, e.g. `body: unknown field "foo"; body.weight must be integer`. */
export function describeValidation(
  part: string | undefined,
  errors: readonly Partial<ErrorObject>[],
): string {
  const where = PART_NAMES[part ?? 'body'] ?? part ?? 'body';
  const messages = errors.map((e) => {
    const path = (e.instancePath ?? '')
      .split('/')
      .filter(Boolean)
      .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
      .join('');
    const params = (e.params ?? {}) as Record<string, unknown>;
    const at = `${where}${path}`;
    switch (e.keyword) {
      case 'additionalProperties':
        return `${at}: unknown field "${String(params.additionalProperty)}"`;
      case 'required':
        return `${at}: missing required field "${String(params.missingProperty)}"`;
      case 'type':
        return `${at} must be ${String(params.type)}`;
      case 'pattern': {
        const description = (e.parentSchema as { description?: string } | undefined)?.description;
        return description ? `${at} must be ${description}` : `${at} ${e.message}`;
      }
      case 'minProperties':
        return `${at} must have at least ${String(params.limit)} field(s)`;
      default:
        return `${at} ${e.message ?? 'is invalid'}`;
    }
  });
  return [...new Set(messages)].join('; ');
}
