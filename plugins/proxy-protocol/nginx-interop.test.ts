import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '../../plugin-sdk/index.js';
import { startProxy, type TestProxy } from '../../test/helpers/proxy.js';
import { readBytes, startServer, type TestServer, waitFor } from '../../test/helpers/servers.js';
import { type Nginx, startNginx } from './nginx.test-support.js';

/**
 * Interop with a real NGINX 1.22 stream proxy (Debian nginx + libnginx-mod-stream): NGINX in
 * front with `proxy_protocol on` (it sends v1), and behind Switchyard with `listen ...
 * proxy_protocol` (it reads v1 and v2), checked through its `$proxy_protocol_addr` log.
 */

let nginx: Nginx | undefined;
let proxy: TestProxy | undefined;
let servers: TestServer[] = [];
const clients: Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.stop();
  proxy = undefined;
  await nginx?.stop();
  nginx = undefined;
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function clientFrom(address: string, from: string): Promise<Socket> {
  const colon = address.lastIndexOf(':');
  const socket = connect({
    host: address.slice(0, colon),
    port: Number(address.slice(colon + 1)),
    localAddress: from,
  });
  clients.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

async function echo(): Promise<TestServer> {
  const server = await startServer((s) => s.pipe(s));
  servers.push(server);
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
    nginx = await startNginx(
      (port) => `    listen 127.0.0.1:${port};
    proxy_pass ${proxy!.address};
    proxy_protocol on;`,
      '$remote_addr',
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
      nginx = await startNginx(
        (port, log) => `    listen 127.0.0.1:${port} proxy_protocol;
    proxy_pass ${backend.address};
    access_log ${log} probe;`,
        'pp=$proxy_protocol_addr:$proxy_protocol_port dst=$proxy_protocol_server_addr:$proxy_protocol_server_port',
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
