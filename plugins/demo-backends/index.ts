import { createServer, type Server, type Socket } from 'node:net';
import { definePlugin, LISTENER_RESERVE } from '../../plugin-sdk/index.js';

interface Options {
  /** Addresses to serve on, e.g. ["127.0.0.1:9001", "127.0.0.1:9002"]. */
  listen: string[];
  /** Connections each server holds at once; more are closed at accept and counted. */
  max_connections: number;
}

/**
 * Starts small echo servers in the proxy process so the bundled config.yaml works on a fresh
 * machine: each greets with its own address, then echoes what it receives. Demo use only.
 */
export default definePlugin<Options>({
  name: 'demo-backends',
  description: 'Starts greeting echo servers for the quick start (demo only).',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['listen'],
    properties: {
      listen: {
        type: 'array',
        minItems: 1,
        items: { type: 'string' },
        description: 'host:port of each demo server.',
      },
      max_connections: {
        type: 'integer',
        minimum: 1,
        maximum: LISTENER_RESERVE,
        default: 16,
        description: `Connections each server holds at once; more are closed at accept. Plugin listeners share ${LISTENER_RESERVE} descriptors in total.`,
      },
    },
  },
  apply(service, options) {
    // Descriptors come out of the process's reserve, like the admin API's (listener-budget).
    const budget = service.runtime.capacity.listeners;
    const shares = options.listen.map((address) =>
      budget.reserveShare(`demo-backends ${address}`, options.max_connections),
    );
    const servers: Server[] = [];
    const sockets = new Set<Socket>();
    service.hooks.start.tapPromise('demo-backends', async () => {
      for (const [i, address] of options.listen.entries()) {
        const colon = address.lastIndexOf(':');
        const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
        const port = Number(address.slice(colon + 1));
        const server = createServer({ allowHalfOpen: true }, (socket) => {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => socket.destroy());
          socket.write(`hello from demo backend ${address}\n`);
          socket.pipe(socket);
        });
        budget.guard(shares[i]!, server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', (err) => reject(new Error(`demo backend ${address}: ${err.message}`)));
          server.listen(port, host, resolve);
        });
        servers.push(server);
      }
      service.log.info({ listen: options.listen }, 'demo backends started');
    });
    service.hooks.stop.tapPromise('demo-backends', async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    });
  },
});
