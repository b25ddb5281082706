import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '../../plugin-sdk/index.js';
import { createTestKit, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import { type Nginx, startNginx } from './nginx.test-support.js';
import { type RawClient, rawClient, readBytes } from './socket.test-support.js';

/**
 * Interop with a real NGINX 1.22 stream proxy (Debian nginx + libnginx-mod-stream): NGINX in
 * front with `proxy_protocol on` (it sends v1), and behind Switchyard with `listen ...
 * proxy_protocol` (it reads v1 and v2), checked through its `$proxy_protocol_addr` log.
 */

const kit = createTestKit();
afterEach(kit.close);
let nginx: Nginx;
let proxy: TestProxy;
const startProxy = (yaml: string) => kit.proxy(yaml);
const startServer = (onConnection: Parameters<typeof kit.backend>[0]) => kit.backend(onConnection);

/** Connects to `address` from `from` (a 127.x address the proxies in between do not use). */
async function clientFrom(address: string, from: string): Promise<RawClient> {
  const socket = await rawClient(address, from);
  kit.defer(() => socket.destroy());
  if (socket.lastError !== undefined) throw new Error(`connect: ${socket.lastError}`);
  return socket;
}

async function echo(): Promise<TestBackend> {
  const server = await startServer((s) => s.pipe(s));
  return server;
}

describe('NGINX stream and Switchyard', () => {
  it('NGINX in front (proxy_protocol on): Switchyard sees the client NGINX saw', async () => {
    const backend = await echo();
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${backend.address} }]
plugins:
  proxy-protocol: { accept: true, trusted: [127.0.0.1] }
`);
    const sessions: Session[] = [];
    proxy.service.hooks.admit.tap('test', (s) => {
      if (s.remoteAddress === '127.0.0.5') sessions.push(s);
    });
    nginx = kit.track(
      await startNginx(
        (port) => `    listen 127.0.0.1:${port};
    proxy_pass ${proxy!.address};
    proxy_protocol on;`,
        '$remote_addr',
      ),
    );
    const client = await clientFrom(nginx.address, '127.0.0.5');
    client.write('through nginx');
    expect((await readBytes(client, 13)).toString()).toBe('through nginx');
    expect(sessions).toHaveLength(1);
    expect([sessions[0]!.remoteAddress, sessions[0]!.remotePort]).toEqual(['127.0.0.5', client.localPort]);
    expect(`${sessions[0]!.localAddress}:${sessions[0]!.localPort}`).toBe(nginx.address);
  });

  it.each(['v1', 'v2'])(
    'NGINX behind (listen proxy_protocol), send %s: NGINX logs the real client',
    async (version) => {
      const backend = await echo();
      nginx = kit.track(
        await startNginx(
          (port, log) => `    listen 127.0.0.1:${port} proxy_protocol;
    proxy_pass ${backend.address};
    access_log ${log} probe;`,
          'pp=$proxy_protocol_addr:$proxy_protocol_port dst=$proxy_protocol_server_addr:$proxy_protocol_server_port',
        ),
      );
      proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${nginx.address} }]
plugins:
  proxy-protocol: { send: ${version} }
`);
      const client = await clientFrom(proxy.address, '127.0.0.9');
      client.write('ping');
      expect((await readBytes(client, 4)).toString()).toBe('ping');
      const port = client.localPort;
      client.end();
      // NGINX writes the line when the session ends (its start-up probe wrote one with "-").
      await waitFor(() => nginx!.accessLog().includes('pp=127.'), 5000, 'the NGINX access log line');
      expect(nginx.accessLog()).toContain(`pp=127.0.0.9:${port} dst=${proxy.address}`);
    },
  );
});
