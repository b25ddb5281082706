import { afterEach, describe, expect, it } from 'vitest';
import { BackendRegistry } from '../../core/backend-registry.js';
import { createServiceHooks } from '../../core/hooks.js';
import type { Backend } from '../../core/types.js';
import { createTestKit } from '../../testing/index.js';

function registry() {
  const hooks = createServiceHooks();
  const fired: Array<[string, number]> = [];
  hooks.backendWeight.tap('test', (b) => fired.push([b.address, b.effectiveWeight]));
  const changed: string[] = [];
  hooks.backendChanged.tap('test', (b) => changed.push(b.address));
  const reg = new BackendRegistry(hooks, 0, () => {});
  return { reg, fired, changed };
}

describe('effective weight (registry weight factors)', () => {
  it('is weight times every source factor; backendWeight fires on each change only', () => {
    const { reg, fired } = registry();
    const b = reg.add({ address: '127.0.0.1:9001', weight: 10 });
    expect(b.effectiveWeight).toBe(10);
    reg.setWeightFactor(b, 'slow', 0.5);
    reg.setWeightFactor(b, 'slow', 0.5); // unchanged: no event
    reg.setWeightFactor(b, 'other', 0.2);
    expect(b.effectiveWeight).toBeCloseTo(1);
    expect(reg.weightFactor(b, 'slow')).toBe(0.5);
    reg.setWeightFactor(b, 'other', 1); // withdrawn
    expect(b.effectiveWeight).toBe(5);
    reg.setWeightFactor(b, 'slow', 1);
    expect(b.effectiveWeight).toBe(10); // exactly the weight again
    reg.setWeightFactor(b, 'slow', 1); // nothing to withdraw: no event
    expect(fired.map(([, w]) => Math.round(w * 100) / 100)).toEqual([5, 1, 5, 10]);
  });

  it('keeps factors across weight changes, drops them on removal', () => {
    const { reg, fired, changed } = registry();
    const b = reg.add({ address: '127.0.0.1:9001', weight: 4 });
    reg.setWeightFactor(b, 'slow', 0.25);
    reg.setWeight(b.address, 8);
    expect(b.effectiveWeight).toBe(2);
    expect(changed).toEqual([b.address]);
    expect(fired.at(-1)).toEqual([b.address, 2]);
    reg.remove(b.address);
    expect(b.effectiveWeight).toBe(8);
    expect(reg.weightFactor(b, 'slow')).toBe(1);
    reg.setWeightFactor(b, 'slow', 0.5); // removed: ignored
    expect(b.effectiveWeight).toBe(8);
    const again = reg.add({ address: '127.0.0.1:9001', weight: 3 });
    expect(again.effectiveWeight).toBe(3);
  });

  it('refuses factors outside (0, 1] with a registry error', () => {
    const { reg } = registry();
    const b = reg.add({ address: '127.0.0.1:9001' });
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => reg.setWeightFactor(b, 'x', bad)).toThrow(
        expect.objectContaining({
          code: 'SWITCHYARD_E_BACKEND_INVALID',
          message: expect.stringContaining('(0, 1]'),
        }),
      );
    expect(b.effectiveWeight).toBe(1);
  });
});

describe('clearBackendStatus', () => {
  const kit = createTestKit();
  afterEach(kit.close);

  it("withdraws a source's status and fires backendStatus with ''", async () => {
    const { service } = await kit.proxy({ backends: ['127.0.0.1:9'] });
    const seen: string[] = [];
    service.hooks.backendStatus.tap('test', (_b: Backend, source, status) =>
      seen.push(`${source}=${status}`),
    );
    const b = service.backends.list()[0]!;
    expect(service.clearBackendStatus(b, 'x')).toBe(false);
    service.setBackendStatus(b, 'x', 'slow-start');
    expect(service.clearBackendStatus(b, 'x')).toBe(true);
    expect(b.status).toEqual({});
    expect(seen).toEqual(['x=slow-start', 'x=']);
  });
});
