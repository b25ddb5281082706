import type { Plugin } from '../plugin.js';
import type { EnabledPlugin, ProcessSettings, ServiceSettings } from './settings.js';

/** One plugin enabled in a service (or the process), with its validated options and the plugin. */
export interface PluginUse extends EnabledPlugin {
  plugin: Plugin;
}

/** One service after validation, defaults and duration parsing, with the plugins to apply. */
export interface ServiceConfig extends ServiceSettings {
  /** Service-scope plugins in config order; exactly one is a balancer. */
  plugins: PluginUse[];
}

/** A loaded config: what `loadConfigFile` returns and `Runtime.create` takes. */
export interface SwitchyardConfig extends ProcessSettings {
  services: ServiceConfig[];
  /** Process-scope plugins. */
  plugins: PluginUse[];
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Folder that relative plugin paths resolve against; default the config file's folder. */
  baseDir?: string;
}
