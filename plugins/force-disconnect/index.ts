import { ADMIN_ROUTES, definePlugin } from '../../plugin-sdk/index.js';
import { forceDisconnectRoutes } from './routes.js';
import { createSwitch, type ForceDisconnect } from './switch.js';

export type { ForceDisconnect, ForceDisconnectState } from './switch.js';

/**
 * The original Go proxy's kill switch: close every session of every service at once and refuse
 * new connections until switched off. Served by admin-api when it is enabled (through
 * `ADMIN_ROUTES`), and available to other code as `runtime.use('force-disconnect')`.
 */
export default definePlugin({
  name: 'force-disconnect',
  scope: 'process',
  description: 'Close every session at once and refuse new connections until switched off.',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  apply(runtime) {
    const fd = createSwitch(runtime);
    runtime.provide<ForceDisconnect>('force-disconnect', fd);
    for (const route of forceDisconnectRoutes(fd)) runtime.contribute(ADMIN_ROUTES, route);
  },
});
