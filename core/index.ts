/** Programmatic API: load a config, build a runtime, start and stop it. */
export { backendIdentity, formatAddress, parseAddress } from './address.js';
export { BackendRegistry } from './backend-registry.js';
export { ConfigError, type ConfigIssue, formatIssue } from './config/errors.js';
export { loadConfigFile, loadConfigText } from './config/load.js';
export type { PluginUse, ServiceConfig, SwitchyardConfig } from './config/types.js';
export {
  ERROR_CODES,
  isSwitchyardError,
  RegistryError,
  SwitchyardError,
  type SwitchyardErrorCode,
} from './errors.js';
export { createServiceHooks, type Dialed, type ServerFactory, type ServiceHooks } from './hooks.js';
export { createLogger } from './logger.js';
export type { Plugin, ProcessPlugin, ServicePlugin } from './plugin.js';
export { Runtime, type RuntimeHooks } from './runtime.js';
export { Service, tcpServerFactory } from './service.js';
export type * from './types.js';
