// Peak descriptor count of one process, sampled every few milliseconds while a phase runs.
import { fdCount } from './proc.js';

export function sampleFds(pid, everyMs = 5) {
  let peak = pid === null ? null : (fdCount(pid) ?? 0);
  const timer =
    pid === null
      ? null
      : setInterval(() => {
          const n = fdCount(pid);
          if (n !== null && n > peak) peak = n;
        }, everyMs);
  return {
    stop() {
      if (timer !== null) clearInterval(timer);
      return peak;
    },
  };
}
