import { definePlugin } from '../../plugin-sdk/index.js';
import { checkDelay, type KeepAliveOptions, keepAliveSchema } from './options.js';
import { SideTimeouts } from './side-timeouts.js';

/**
 * TCP keep-alive on both sockets of a session, per-side read-inactivity timeouts and
 * half-close (FIN) timeouts. See README.md for what Node can and cannot set.
 */
export default definePlugin<KeepAliveOptions>({
  name: 'keep-alive',
  description: 'TCP keep-alive on client and upstream sockets; per-side idle and half-close timeouts.',
  schema: keepAliveSchema,
  apply(service, options) {
    checkDelay('client', options.client.initial_delay);
    checkDelay('upstream', options.upstream.initial_delay);
    const clientOn = options.client.enabled;
    const upstreamOn = options.upstream.enabled;
    const clientDelay = options.client.initial_delay;
    const upstreamDelay = options.upstream.initial_delay;
    const timeouts = new SideTimeouts(service, options);
    const track = timeouts.enabled;
    if (!clientOn && !upstreamOn && !track) return;

    service.hooks.established.tap('keep-alive', (session) => {
      if (clientOn) session.client.setKeepAlive(true, clientDelay);
      if (upstreamOn) session.upstream!.setKeepAlive(true, upstreamDelay);
      if (track) timeouts.track(session);
    });
    if (track) {
      service.hooks.start.tapPromise('keep-alive', async () => timeouts.start());
      service.hooks.stop.tapPromise('keep-alive', async () => timeouts.stop());
    }
  },
});
