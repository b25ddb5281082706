import { afterEach, describe, expect, it } from 'vitest';
import { backendOptionProblem } from '../../core/backend-option-values.js';
import { checkPluginShape } from '../../core/plugin-shape.js';
import { isSwitchyardError } from '../../plugin-sdk/index.js';
import { createTestKit } from '../../testing/index.js';

describe('plugin backend keys checked at run time', () => {
  const kit = createTestKit();
  afterEach(kit.close);

  it('registry.add refuses a bad value of an enabled plugin’s key, naming key, address and plugin', async () => {
    const proxy = await kit.proxy(`
listen: 127.0.0.1:0
plugins: { proxy-protocol: {} }
`);
    let caught: unknown;
    try {
      proxy.service.backends.add({ address: '127.0.0.1:9', proxy_protocol: 'v9' });
    } catch (err) {
      caught = err;
    }
    expect(isSwitchyardError(caught) && caught.code).toBe('SWITCHYARD_E_BACKEND_INVALID');
    expect((caught as Error).message).toBe(
      'backend 127.0.0.1:9: proxy_protocol must be one of "v1", "v2", "none", got "v9" (an option of plugin "proxy-protocol")',
    );
    expect(proxy.service.backends.size).toBe(0);
    expect(
      proxy.service.backends.add({ address: '127.0.0.1:9', proxy_protocol: 'v1' }).spec.proxy_protocol,
    ).toBe('v1');
  });

  it('the keywords a backend option may use are checked; a plugin declaring another one does not load', () => {
    const schema = { type: 'integer', minimum: 1, maximum: 10 };
    expect(backendOptionProblem(schema, 3)).toBeUndefined();
    expect(backendOptionProblem(schema, 2.5)).toBe('must be integer, got 2.5');
    expect(backendOptionProblem(schema, '3')).toBe('must be integer, got "3"');
    expect(backendOptionProblem(schema, 11)).toBe('must be at most 10, got 11');
    const text = { type: 'string', pattern: '^[a-z]+$', maxLength: 3 };
    expect(backendOptionProblem(text, 'abcd')).toBe('must be at most 3 characters long');
    expect(backendOptionProblem(text, 'A')).toBe('must match ^[a-z]+$, got "A"');

    const plugin = (backendOptions: unknown) => ({ name: 'p', apply() {}, backendOptions });
    expect(checkPluginShape(plugin({ tags: { enum: ['a', 'b'] } }))).toBeUndefined();
    expect(checkPluginShape(plugin({ tags: { type: 'array', items: { type: 'string' } } }))).toMatch(
      /^plugin "p" has a backend option "tags" whose schema uses "items"/,
    );
    expect(checkPluginShape(plugin({ tags: { type: 'object' } }))).toMatch(/has type "object"/);
    expect(checkPluginShape(plugin({ tags: { type: 'string', pattern: '(' } }))).toMatch(
      /"pattern" that is not a regular expression/,
    );
  });
});
