/**
 * Polls `check` every 10 ms until it returns true; throws `timed out waiting for <what>` after
 * `timeoutMs`. For state that changes without an event to await (counters, registry entries).
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
