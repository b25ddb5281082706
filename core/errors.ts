import type { Backend } from './types.js';

/**
 * Every error code the core and the built-in plugins throw, with a one-line summary.
 * docs/errors.md explains each; a test fails when a code is thrown but not documented, or
 * documented (or listed here) but never thrown.
 */
export const ERROR_CODES = Object.freeze({
  SWITCHYARD_E_CONFIG: 'the config is invalid; `issues` lists every problem with file:line:col and path',
  SWITCHYARD_E_PLUGIN_NOT_FOUND: 'a plugin named in the config cannot be found',
  SWITCHYARD_E_PLUGIN_INVALID: 'a plugin module does not load or does not export a valid plugin',
  SWITCHYARD_E_PLUGIN_APPLY: "a plugin's apply() threw",
  SWITCHYARD_E_PLUGIN_TIMEOUT:
    "a plugin's module did not load, or its apply or start did not finish, within plugin_timeout",
  SWITCHYARD_E_WORKER_START_TIMEOUT:
    'cluster workers did not listen within the wait plugin_timeout sets (stuck outside a bounded plugin step)',
  SWITCHYARD_E_LISTENER_BUDGET:
    "plugins' own listeners may hold more connections together than the descriptors kept for them",
  SWITCHYARD_E_BACKEND_INVALID: 'a backend spec or registry call has bad input',
  SWITCHYARD_E_BACKEND_NOT_FOUND: 'no backend of that address in the registry',
  SWITCHYARD_E_BACKEND_EXISTS: 'a backend of that address is in the registry already',
  SWITCHYARD_E_BACKEND_MANAGED:
    'the backend belongs to a discovery source; change it in the source (DNS, etcd), not through the API',
  SWITCHYARD_E_REGISTRY_UNAVAILABLE:
    'the shared registry (etcd) cannot be reached: the change was not made anywhere; retry',
  SWITCHYARD_E_LISTEN: 'a listener cannot bind its address',
  SWITCHYARD_E_ALREADY_PROVIDED: 'a value is provided under a name that is taken',
  SWITCHYARD_E_ALREADY_STARTED: 'a service or runtime was started twice',
} as const);

export type SwitchyardErrorCode = keyof typeof ERROR_CODES;

/**
 * The one error type of Switchyard: a message for people and a stable `code` for programs
 * (`err.code === 'SWITCHYARD_E_BACKEND_EXISTS'`). Codes never change meaning; see docs/errors.md.
 */
export class SwitchyardError extends Error {
  constructor(
    readonly code: SwitchyardErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'SwitchyardError';
  }
}

/** True for a `SwitchyardError`, optionally of one code. */
export function isSwitchyardError(err: unknown, code?: SwitchyardErrorCode): err is SwitchyardError {
  return err instanceof SwitchyardError && (code === undefined || err.code === code);
}

type RegistryErrorCode =
  | 'SWITCHYARD_E_BACKEND_INVALID'
  | 'SWITCHYARD_E_BACKEND_NOT_FOUND'
  | 'SWITCHYARD_E_BACKEND_EXISTS'
  | 'SWITCHYARD_E_BACKEND_MANAGED'
  | 'SWITCHYARD_E_REGISTRY_UNAVAILABLE';

const REGISTRY_STATUS = {
  SWITCHYARD_E_BACKEND_INVALID: 400,
  SWITCHYARD_E_BACKEND_NOT_FOUND: 404,
  SWITCHYARD_E_BACKEND_EXISTS: 409,
  SWITCHYARD_E_BACKEND_MANAGED: 409,
  SWITCHYARD_E_REGISTRY_UNAVAILABLE: 503,
} as const satisfies Record<RegistryErrorCode, number>;

/**
 * Thrown by backend registry calls (and registry writers) on bad input or an unreachable
 * shared store; `status` suits an HTTP answer.
 */
export class RegistryError extends SwitchyardError {
  readonly status: 400 | 404 | 409 | 503;
  declare readonly code: RegistryErrorCode;

  constructor(
    code: RegistryErrorCode,
    message: string,
    /** SWITCHYARD_E_BACKEND_EXISTS: the backend that has this identity already, however it was spelt. */
    readonly existing?: Backend,
  ) {
    super(code, message);
    this.name = 'RegistryError';
    this.status = REGISTRY_STATUS[code];
  }
}

/** Thrown when a plugin cannot be found or is not a plugin; the config loader reports it at its key. */
export class PluginError extends SwitchyardError {
  declare readonly code: 'SWITCHYARD_E_PLUGIN_NOT_FOUND' | 'SWITCHYARD_E_PLUGIN_INVALID';

  constructor(message: string, code: 'SWITCHYARD_E_PLUGIN_NOT_FOUND' | 'SWITCHYARD_E_PLUGIN_INVALID') {
    super(code, message);
    this.name = 'PluginError';
  }
}
