/**
 * The test kit for plugin authors: Switchyard in this process on a free loopback port, the
 * backends a plugin's tests need (echo, named, greeting, refusing, resetting, slow-reading,
 * blackhole, or your own handler), clients that buffer what they receive, and one `close()`
 * that stops all of it. Works with any test runner; the examples use vitest.
 *
 *   import { createTestKit } from 'switchyard/testing';
 *   const kit = createTestKit();
 *   afterEach(kit.close);
 *
 *   it('answers through my plugin', async () => {
 *     const backend = await kit.echo();
 *     const proxy = await kit.proxy({ backends: [backend], plugins: { './my-plugin': {} } });
 *     const client = await kit.connect(proxy);
 *     await client.send('ping');
 *     await client.expect('ping');
 *   });
 *
 * See docs/plugin-sdk.md, "Testing a plugin".
 */
export type {
  AfterGreeting,
  BackendOptions,
  RefusingBackend,
  SlowReadingBackend,
  TestBackend,
} from './backends.js';
export type { Blackhole } from './blackhole.js';
export type { ClientOptions, CloseInfo, TestClient } from './client.js';
export { type Closeable, createTestKit, type TestKit } from './kit.js';
export { exchange, freePort } from './net.js';
export {
  type Addressable,
  type Duration,
  type LogEntry,
  type LogLevel,
  loadConfig,
  type ProxyOptions,
  type TestBackendEntry,
  type TestConfig,
  type TestPlugins,
  type TestProxy,
  type TestServiceConfig,
} from './proxy.js';
export { waitFor } from './wait.js';
