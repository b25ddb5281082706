import type { PortableConfig } from '../config/load-thread.js';
import { isMessage, type ToPrimary, type ToWorker } from './messages.js';

/**
 * A worker's config, asked of the primary (`config?` → `config`): the one its generation was
 * started with, as the primary loaded and validated it. Without plugin objects; the worker
 * loads those (`withPlugins`). Never settles if the primary goes away first: the worker then
 * has nothing left to wait for and exits.
 */
export function configFromPrimary(): Promise<PortableConfig> {
  return new Promise((resolve) => {
    const onMessage = (raw: unknown) => {
      if (!isMessage<ToWorker>(raw) || raw.t !== 'config') return;
      process.off('message', onMessage);
      resolve(raw.config);
    };
    process.on('message', onMessage);
    process.send?.({ t: 'config?' } satisfies ToPrimary);
  });
}
