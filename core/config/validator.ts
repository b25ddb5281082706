import AjvModule, { type Ajv as AjvInstance, type ValidateFunction } from 'ajv';
import { parseDuration } from '../duration.js';

// ajv is CommonJS; under NodeNext its default export arrives one level deep.
type AjvClass = new (options: Record<string, unknown>) => AjvInstance;
const Ajv = ((AjvModule as unknown as { default?: AjvClass }).default ?? AjvModule) as unknown as AjvClass;

let ajv: AjvInstance | undefined;

/** The one ajv instance: all errors, defaults applied, `x-duration` turns "5s" into 5000. */
function instance(): AjvInstance {
  if (ajv) return ajv;
  ajv = new Ajv({ allErrors: true, useDefaults: true, allowUnionTypes: true, verbose: true, strict: true });
  ajv.addKeyword({
    keyword: 'x-duration',
    schemaType: 'boolean',
    modifying: true,
    errors: false,
    validate(
      _schema: boolean,
      data: unknown,
      _parent?: unknown,
      ctx?: { parentData: any; parentDataProperty: string | number },
    ) {
      if (typeof data === 'string' && ctx) {
        const ms = parseDuration(data);
        if (ms !== undefined) ctx.parentData[ctx.parentDataProperty] = ms;
      }
      return true;
    },
  });
  return ajv;
}

/** Compiles a composed config schema (once per config load, never per connection). */
export function compileValidator(schema: Record<string, unknown>): ValidateFunction {
  return instance().compile(schema);
}

/** Validates a plugin's own schema early so a broken third-party schema is reported by name. */
export function checkSchema(schema: Record<string, unknown>): string | undefined {
  const a = instance();
  if (a.validateSchema(schema)) return undefined;
  return a.errorsText(a.errors);
}
