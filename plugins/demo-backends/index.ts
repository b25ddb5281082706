import { createServer, type Server, type Socket } from 'node:net';
import { definePlugin } from '../../plugin-sdk/index.js';

interface Options {
  /** Addresses to serve on, e.g. ["127.0.0.1:9001", "127.0.0.1:9002"]. */
  listen: string[];
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
    },
  },
  apply(service, options) {
    const servers: Server[] = [];
    const sockets = new Set<Socket>();
    service.hooks.start.tapPromise('demo-backends', async () => {
      for (const address of options.listen) {
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
