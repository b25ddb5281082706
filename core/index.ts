/** Programmatic API: load a config, build a runtime, start and stop it. */
export { backendIdentity, formatAddress, parseAddress } from './address.js';
export { BackendRegistry, RegistryError } from './backend-registry.js';
export { ConfigError, type ConfigIssue, formatIssue } from './config/errors.js';
export {
  loadConfigFile,
  loadConfigText,
  type PluginUse,
  type ServiceConfig,
  type SwitchyardConfig,
} from './config/load.js';
export { createServiceHooks, type Dialed, type ServerFactory, type ServiceHooks } from './hooks.js';
export { createLogger } from './logger.js';
export type { Plugin, ProcessPlugin, ServicePlugin } from './plugin.js';
export { Runtime, type RuntimeHooks } from './runtime.js';
export { Service, tcpServerFactory } from './service.js';
export type * from './types.js';
