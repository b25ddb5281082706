/**
 * The plugin SDK: everything a third-party plugin needs, and nothing internal.
 *
 *   import { definePlugin } from 'switchyard/plugin-sdk';
 *   export default definePlugin({ name: 'my-plugin', schema: {...}, apply(service, options) {...} });
 */
import type { Plugin, ProcessPlugin, ServicePlugin } from '../core/plugin.js';

export { backendIdentity, formatAddress, parseAddress, parseListenAddress } from '../core/address.js';
export {
  BACKEND_FIELDS,
  type BackendFieldsSchemaOptions,
  backendFieldsSchema,
} from '../core/backend-fields.js';
export {
  ORIGIN_API,
  ORIGIN_CONFIG,
  type ReconcileResult,
} from '../core/backend-origin.js';
export {
  BACKEND_STATUSES,
  type BackendStatus,
  hasNoSessionStatus,
  hasRestrictedStatus,
  LIMITED_STATUSES,
  NO_SESSION_STATUSES,
  RESTRICTED_STATUSES,
  type StatusEffect,
} from '../core/backend-status.js';
export { UPSTREAM_TLS } from '../core/capabilities.js';
export { type Cidr, CidrList, cidrListSchema, parseCidr } from '../core/cidr.js';
export { CLOSE_REASONS } from '../core/close-reasons.js';
export type { ClusterBridge, RuntimeRole, WorkerInfo } from '../core/cluster/bridge.js';
export { CLUSTER } from '../core/cluster/bridge.js';
export {
  LIST_SESSIONS,
  LIST_WINDOW,
  type ListSessionsReply,
  type ListSessionsRequest,
} from '../core/cluster/session-list.js';
export type { EnabledPlugin, ProcessSettings, ServiceSettings } from '../core/config/settings.js';
export type { PluginUse, ServiceConfig, SwitchyardConfig } from '../core/config/types.js';
export type {
  AddOptions,
  BackendRegistry,
  RemoveOptions,
  Runtime,
  RuntimeHooks,
  Service,
  ServiceState,
  SessionBudget,
} from '../core/contract.js';
export type { PipelineCounters, ServiceCounters } from '../core/counters.js';
export type { DiscoverySource, DiscoverySourceOptions, DiscoveryStatus } from '../core/discovery.js';
export {
  type DurationSchemaOptions,
  durationSchema,
  MAX_DURATION_MS,
  parseDuration,
} from '../core/duration.js';
export { ENDPOINTS, type Endpoint } from '../core/endpoints.js';
export {
  ERROR_CODES,
  isSwitchyardError,
  RegistryError,
  SwitchyardError,
  type SwitchyardErrorCode,
} from '../core/errors.js';
export { describeFileKind } from '../core/file-kind.js';
export type { Dialed, ServerFactory, ServiceHooks, UnavailableInfo } from '../core/hooks.js';
export { formatIp, formatIpv6, isIpv4, parseIp } from '../core/ip.js';
export { LISTENER_RESERVE, type ListenerBudget, type ListenerShare } from '../core/listener-budget.js';
export { LogThrottle } from '../core/log-throttle.js';
export {
  MAX_PEEK_BYTES,
  type PeekFn,
  type PeekHook,
  type PeekTapOptions,
  type PeekVerdict,
} from '../core/peek.js';
export type {
  CheckContext,
  JsonSchema,
  OptionIssue,
  Plugin,
  PluginKind,
  ProcessPlugin,
  ServicePlugin,
} from '../core/plugin.js';
export { STAGE, type StageName } from '../core/stages.js';
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
  SessionTls,
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
export type { BalancerSelect } from './balancer.js';
export {
  type BackendChange,
  REGISTRY_WRITER,
  type RegistryWriter,
  SHARED_SWITCHES,
  type SharedSwitches,
} from './shared-registry.js';
