/**
 * Capabilities the core asks for by name rather than by plugin (`provides` in a plugin), so a
 * third-party plugin can stand in for a built-in one.
 */

/** The capability a plugin declares when it dials `tls: true` backends. */
export const UPSTREAM_TLS = 'upstream-tls';

/** The built-in plugin that provides each capability, suggested in error messages. */
export const BUILTIN_PROVIDER: Readonly<Record<string, string>> = Object.freeze({
  [UPSTREAM_TLS]: 'tls-upstream',
});

/** True when one of `uses` declares the capability (`provides`). */
export function someProvides(
  uses: ReadonlyArray<{ plugin: { provides?: string[] } }>,
  capability: string,
): boolean {
  return uses.some((u) => u.plugin.provides?.includes(capability) === true);
}
