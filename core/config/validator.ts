import AjvModule, { type Ajv as AjvInstance, type ValidateFunction } from 'ajv';
import { parseCidr } from '../cidr.js';
import { durationTooLong, MAX_DURATION_MS, parseDuration } from '../duration.js';

// ajv is CommonJS; under NodeNext its default export arrives one level deep.
type AjvClass = new (options: Record<string, unknown>) => AjvInstance;
const Ajv = ((AjvModule as unknown as { default?: AjvClass }).default ?? AjvModule) as unknown as AjvClass;

let ajv: AjvInstance | undefined;

/**
 * The one ajv instance: all errors, defaults applied, `x-duration` turns "5s" into 5000 and
 * refuses durations a Node.js timer cannot hold (above MAX_DURATION_MS); `x-cidr` checks an IP
 * network (`cidrListSchema`).
 */
function instance(): AjvInstance {
  if (ajv) return ajv;
  ajv = new Ajv({ allErrors: true, useDefaults: true, allowUnionTypes: true, verbose: true, strict: true });
  ajv.addKeyword({
    keyword: 'x-duration',
    schemaType: 'boolean',
    modifying: true,
    errors: true,
    validate: function validateDuration(
      _schema: boolean,
      data: unknown,
      _parent?: unknown,
      ctx?: { parentData: any; parentDataProperty: string | number },
    ) {
      const ms = typeof data === 'string' || typeof data === 'number' ? parseDuration(data) : undefined;
      if (ms === undefined) return true; // not a duration: `type` and `pattern` report it
      if (ms > MAX_DURATION_MS) {
        (validateDuration as { errors?: unknown[] }).errors = [
          { keyword: 'x-duration', message: durationTooLong(ms), params: { limit: MAX_DURATION_MS } },
        ];
        return false;
      }
      if (typeof data === 'string' && ctx) ctx.parentData[ctx.parentDataProperty] = ms;
      return true;
    },
  });
  ajv.addKeyword({
    keyword: 'x-cidr',
    schemaType: 'boolean',
    errors: true,
    validate: function validateCidr(_schema: boolean, data: unknown) {
      if (typeof data !== 'string') return true; // `type` reports it
      const cidr = parseCidr(data);
      if (typeof cidr !== 'string') return true;
      (validateCidr as { errors?: unknown[] }).errors = [{ keyword: 'x-cidr', message: cidr, params: {} }];
      return false;
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
