import { dirname, resolve } from 'node:path';
import { definePlugin, type Service } from '../../plugin-sdk/index.js';
import { HEALTH_CHECK, type HealthCheckApi } from './api.js';
import { HealthChecker } from './checker.js';
import { type HealthCheckOptions, resolveSettings, schema } from './options.js';

export type {
  BackendHealth,
  HealthCheckApi,
  HealthCheckCounters,
  HealthPhase,
  HealthStatus,
  ProbePrefix,
} from './api.js';
export { HEALTH_CHECK } from './api.js';

/**
 * Active health checks (HAProxy `check`): a TCP connect, TLS handshake or send/expect exchange
 * per backend on a jittered timer; `fall` failures mark a backend down, `rise` successes mark it
 * up. Down backends get no new sessions; see README.md for every option.
 */
const checkers = new WeakMap<Service, HealthChecker>();

export default definePlugin<HealthCheckOptions>({
  name: HEALTH_CHECK,
  description: 'Active TCP / TLS / send-expect health checks with rise and fall thresholds.',
  schema,
  // Probes run once, in the cluster primary; workers follow its verdicts (checker.ts `follow`).
  runsIn: 'any',
  apply(service, options) {
    const settings = resolveSettings(options);
    const log = service.log.child({ plugin: HEALTH_CHECK });
    // Relative `ca`/`cert`/`key` paths in backend specs resolve against the config file's folder.
    const baseDir = dirname(resolve(service.runtime.config.file));
    const mode = service.runtime.role === 'worker' ? 'follow' : 'probe';
    const checker = new HealthChecker(service, settings, log, baseDir, mode);
    checkers.set(service, checker);

    service.hooks.candidates.tap(HEALTH_CHECK, checker.filter);
    service.hooks.backendAdded.tap(HEALTH_CHECK, (b) => checker.add(b));
    service.hooks.backendRemoved.tap(HEALTH_CHECK, (b) => checker.remove(b));
    // Draining changes which backends count for "every backend is down".
    service.hooks.backendChanged.tap(HEALTH_CHECK, () => checker.refreshAllDown());
    if (mode === 'follow') service.hooks.backendStatus.tap(HEALTH_CHECK, checker.follow);
    service.hooks.start.tap(HEALTH_CHECK, () => checker.start());
    service.hooks.stop.tap(HEALTH_CHECK, () => checker.stop());
    service.provide<HealthCheckApi>(HEALTH_CHECK, checker);
  },
  reconfigure(service, options) {
    checkers.get(service)?.reconfigure(resolveSettings(options));
  },
});
