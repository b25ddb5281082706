/**
 * Named tap stages (tapable's `stage`): taps run in ascending stage, then in the order they
 * were tapped. docs/hooks.md ("Tap stages") documents the order; a test keeps both in step.
 *
 *   service.hooks.connect.tap({ name: 'my-plugin', stage: STAGE.OBSERVE }, (session, backend) => {...});
 */
export const STAGE = Object.freeze({
  /**
   * First: taps that only watch and must see every call before any bail tap answers it
   * (circuit-breaker and backend-limits count every `connect` attempt here).
   */
  OBSERVE: -100,
  /**
   * Before the default: a bail tap that answers for the subset of calls it owns, ahead of
   * general answers (tls-upstream dials `tls: true` backends here, so connection-pool at the
   * default stage never hands a plain socket to a TLS backend).
   */
  CLAIM: -50,
  /** A tap without a stage: most plugins. */
  DEFAULT: 0,
  /**
   * Last: taps that must see what every other tap did (tls-listener wraps the `listen` factory
   * after socket-level wrappers; admin-api re-drains a re-added backend after others saw it up).
   */
  LATE: 100,
} as const);

export type StageName = keyof typeof STAGE;
