/**
 * The plugin SDK: everything a third-party plugin needs, and nothing internal.
 *
 *   import { definePlugin } from 'switchyard/plugin-sdk';
 *   export default definePlugin({ name: 'my-plugin', schema: {...}, apply(service, options) {...} });
 */
import type { Plugin, ProcessPlugin, ServicePlugin } from '../core/plugin.js';

export { backendIdentity, formatAddress, parseAddress } from '../core/address.js';
export type { BackendRegistry, RemoveOptions } from '../core/backend-registry.js';
export { RegistryError } from '../core/backend-registry.js';
export type { Capacity } from '../core/capacity.js';
export type { ClusterBridge, RuntimeRole, WorkerInfo } from '../core/cluster/bridge.js';
export { CLUSTER } from '../core/cluster/bridge.js';
export type { PluginUse, ServiceConfig, SwitchyardConfig } from '../core/config/load.js';
export { parseDuration } from '../core/duration.js';
export type { Dialed, ServerFactory, ServiceHooks, UnavailableInfo } from '../core/hooks.js';
export { LISTENER_RESERVE, type ListenerBudget, type ListenerShare } from '../core/listener-budget.js';
export type { JsonSchema, Plugin, PluginKind, ProcessPlugin, ServicePlugin } from '../core/plugin.js';
export { UPSTREAM_TLS } from '../core/plugin.js';
export type { Runtime, RuntimeHooks } from '../core/runtime.js';
export type { Service } from '../core/service.js';
export type {
  Backend,
  BackendSpec,
  BackendState,
  CloseReason,
  HostPort,
  ListenerInfo,
  Rejection,
  ServiceRef,
  Session,
} from '../core/types.js';

/**
 * Identity function that types a plugin: `options` in `apply` gets the type you give, and the
 * object is checked against the plugin shape at compile time. Service scope is the default;
 * pass `scope: 'process'` for a plugin that serves the whole process (it receives the Runtime).
 */
export function definePlugin<Options = Record<string, never>>(
  plugin: ServicePlugin<Options>,
): ServicePlugin<Options>;
export function definePlugin<Options = Record<string, never>>(
  plugin: ProcessPlugin<Options>,
): ProcessPlugin<Options>;
export function definePlugin<Options>(plugin: Plugin<Options>): Plugin<Options> {
  return plugin;
}
export { ADMIN_ROUTES, type AdminRoute } from './admin.js';
