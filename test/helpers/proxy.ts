// Legacy fixtures, kept only for the test files that were written against them before
// switchyard/testing existed (listed in biome.json and test/core/sdk-boundary.test.ts as
// pending migration). New tests use switchyard/testing.
import { pino } from 'pino';
import { Capacity } from '../../core/capacity.js';
import { loadConfigText } from '../../core/config/load.js';
import type { SwitchyardConfig } from '../../core/config/types.js';
import { Runtime } from '../../core/runtime.js';
import type { Service } from '../../core/service.js';

export interface TestProxy {
  runtime: Runtime;
  service: Service;
  config: SwitchyardConfig;
  /** The first listener's bound address, e.g. `127.0.0.1:41234`. */
  address: string;
  stop(drainTimeout?: number): Promise<void>;
}

/**
 * Starts a proxy from YAML text in this process. Write `listen: 127.0.0.1:0` for a free port.
 * Logs are silent unless SWITCHYARD_TEST_LOG is set (e.g. `debug`).
 */
export async function startProxy(
  yaml: string,
  baseDir = process.cwd(),
  options: { sessionLimit?: number } = {},
): Promise<TestProxy> {
  const config = await loadConfigText(yaml, 'test.yaml', { baseDir });
  const log = pino({ level: process.env.SWITCHYARD_TEST_LOG ?? 'silent' });
  const capacity = options.sessionLimit === undefined ? undefined : new Capacity(options.sessionLimit, log);
  const runtime = await Runtime.create(config, log, { capacity });
  await runtime.start();
  const service = runtime.defaultService;
  return {
    runtime,
    service,
    config,
    address: service.addresses()[0]!,
    stop: (drainTimeout = 0) => runtime.stop(drainTimeout),
  };
}
