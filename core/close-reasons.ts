/**
 * Why a session ended. Stable strings: logs, metrics and the admin API report them.
 * docs/hooks.md ("Close reasons") explains each; a test keeps both in step.
 */
export const CLOSE_REASONS = Object.freeze([
  'client-closed',
  'backend-closed',
  'client-reset',
  'backend-reset',
  'client-error',
  'backend-error',
  'idle-timeout',
  'connect-failed',
  'no-backend',
  'rejected',
  'shutdown',
  'killed',
  'drained',
  'peek-timeout',
  'internal-error',
] as const);

/** Why a session ended; one of `CLOSE_REASONS`. */
export type CloseReason = (typeof CLOSE_REASONS)[number];
