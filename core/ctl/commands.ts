import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type AdminTarget, CtlError, callAdmin, EXIT } from './admin-client.js';
import { type Cell, formatTable, humanBytes } from './table.js';

/**
 * `switchyard ctl`: the admin API from a shell, as haproxyctl or socat on HAProxy's stats socket.
 * Every command is one admin API call; `--json` prints the API's answer as it came.
 */

const DEFAULT_ADMIN = 'http://127.0.0.1:9090';

interface GlobalOptions {
  admin: string;
  json?: boolean;
  timeout: number;
}

interface ServiceOption {
  service?: string;
}

type Row = Record<string, unknown>;

export function ctlCommand(): Command {
  const ctl = new Command('ctl')
    .description('talk to a running proxy through its admin API')
    .addOption(
      new Option('--admin <url>', 'admin API base URL')
        .env('SWITCHYARD_ADMIN_URL')
        .default(DEFAULT_ADMIN)
        .argParser(parseUrl),
    )
    .option('--json', 'print the API answer as JSON instead of a table')
    .addOption(
      new Option('--timeout <ms>', 'give up after this many milliseconds')
        .default(5000)
        .argParser(positiveInt),
    )
    .addHelpText(
      'after',
      `\nThe token for mutating calls comes from SWITCHYARD_ADMIN_TOKEN.\nExit codes: 0 ok, 1 the API refused, 2 usage, 3 unreachable, 4 token missing or refused.`,
    );

  ctl
    .command('backends')
    .description('list the backends of a service')
    .option('-s, --service <name>', 'service (default: the first)')
    .action(async (opts: ServiceOption, cmd: Command) => {
      const answer = (await call(cmd, 'GET', withService('/backends', opts))) as { backends: Row[] };
      print(cmd, answer, () => backendsTable(answer.backends));
    });

  ctl
    .command('add <address>')
    .description('add a backend (host:port)')
    .option('-s, --service <name>', 'service (default: the first)')
    .addOption(new Option('-w, --weight <n>', 'relative share, 1..256').argParser(positiveInt))
    .action(async (address: string, opts: ServiceOption & { weight?: number }, cmd: Command) => {
      const body: Row = { address };
      if (opts.weight !== undefined) body.weight = opts.weight;
      const answer = (await call(cmd, 'POST', withService('/backends', opts), body)) as Row;
      print(cmd, answer, () => `added ${String(answer.address)} (weight ${String(answer.weight)})`);
    });

  ctl
    .command('remove <address>')
    .description('remove a backend: it drains (no new sessions), then leaves')
    .option('-s, --service <name>', 'service (default: the first)')
    .addOption(
      new Option('--drain-timeout <duration>', 'close its sessions after this long (e.g. 30s)').argParser(
        nonEmpty,
      ),
    )
    .action(async (address: string, opts: ServiceOption & { drainTimeout?: string }, cmd: Command) => {
      const extra: Record<string, string> =
        opts.drainTimeout === undefined ? {} : { drain_timeout: opts.drainTimeout };
      const answer = (await call(cmd, 'DELETE', withService(backendPath(address), opts, extra))) as Row;
      print(
        cmd,
        answer,
        () => `removed ${String(answer.address)} (${String(answer.active)} sessions draining)`,
      );
    });

  ctl
    .command('drain <address>')
    .description('stop sending new sessions to a backend (--undo to take it back)')
    .option('-s, --service <name>', 'service (default: the first)')
    .option('--undo', 'take the backend back into rotation')
    .action(async (address: string, opts: ServiceOption & { undo?: boolean }, cmd: Command) => {
      const answer = (await call(cmd, 'PATCH', withService(backendPath(address), opts), {
        drain: opts.undo !== true,
      })) as Row;
      print(cmd, answer, () => `${String(answer.address)}: ${String(answer.state)}`);
    });

  ctl
    .command('weight <address> <weight>')
    .description('change the weight of a backend (1..256)')
    .option('-s, --service <name>', 'service (default: the first)')
    .action(async (address: string, weight: string, opts: ServiceOption, cmd: Command) => {
      const answer = (await call(cmd, 'PATCH', withService(backendPath(address), opts), {
        weight: positiveInt(weight),
      })) as Row;
      print(cmd, answer, () => `${String(answer.address)}: weight ${String(answer.weight)}`);
    });

  ctl
    .command('sessions')
    .description('list live sessions, oldest first')
    .option('-s, --service <name>', 'service (default: the first)')
    .addOption(new Option('--limit <n>', 'at most this many').default(100).argParser(positiveInt))
    .action(async (opts: ServiceOption & { limit: number }, cmd: Command) => {
      const answer = (await call(
        cmd,
        'GET',
        withService('/sessions', opts, { limit: String(opts.limit) }),
      )) as { count: number; sessions: Row[] };
      print(cmd, answer, () => {
        const shown = answer.sessions.length;
        const more = answer.count > shown ? `\n(${shown} of ${answer.count} shown; --limit for more)` : '';
        return sessionsTable(answer.sessions) + more;
      });
    });

  ctl
    .command('force-disconnect [state]')
    .description('on: close every session and refuse new ones; off: accept again; no argument: show')
    .action(async (state: string | undefined, _opts: unknown, cmd: Command) => {
      if (state !== undefined && state !== 'on' && state !== 'off')
        throw new CtlError(`force-disconnect takes "on" or "off", not "${state}"`, EXIT.usage);
      const answer = (
        state === undefined
          ? await call(cmd, 'GET', '/force_disconnect')
          : await call(cmd, 'POST', '/force_disconnect', { enabled: state === 'on' })
      ) as Row;
      print(cmd, answer, () => formatObject(answer));
    });

  ctl
    .command('workers')
    .description('the processes that proxy, with their sessions and memory')
    .action(async (_opts: unknown, cmd: Command) => {
      const answer = (await call(cmd, 'GET', '/workers')) as { mode: string; workers: Row[] };
      print(cmd, answer, () => workersTable(answer.workers));
    });

  return ctl;
}

/**
 * Runs `switchyard ctl ...` and exits with one of `EXIT`. Commander's own usage errors exit 2,
 * not its default 1, so scripts can tell a typo from a refusal.
 */
export async function runCtl(argv: string[]): Promise<never> {
  const ctl = ctlCommand();
  const program = new Command('switchyard').addCommand(ctl);
  for (const cmd of [program, ctl, ...ctl.commands]) cmd.exitOverride();
  try {
    await program.parseAsync(argv);
    process.exit(EXIT.ok);
  } catch (err) {
    if (err instanceof CtlError) {
      process.stderr.write(`switchyard ctl: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    if (err instanceof CommanderError) {
      // Help and version are not errors; commander printed them already.
      const benign = ['commander.helpDisplayed', 'commander.help', 'commander.version'];
      process.exit(benign.includes(err.code) ? EXIT.ok : EXIT.usage);
    }
    process.stderr.write(`switchyard ctl: ${(err as Error).message}\n`);
    process.exit(EXIT.apiError);
  }
}

function target(cmd: Command): AdminTarget {
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  return {
    base: opts.admin,
    token: process.env.SWITCHYARD_ADMIN_TOKEN || undefined,
    timeoutMs: opts.timeout,
  };
}

function call(cmd: Command, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown) {
  return callAdmin(target(cmd), method, path, body);
}

function print(cmd: Command, answer: unknown, table: () => string): void {
  const json = cmd.optsWithGlobals<GlobalOptions>().json === true;
  process.stdout.write(`${json ? JSON.stringify(answer, null, 2) : table()}\n`);
}

function backendPath(address: string): string {
  return `/backends/${encodeURIComponent(address)}`;
}

function withService(path: string, opts: ServiceOption, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams(extra);
  if (opts.service !== undefined) query.set('service', opts.service);
  const text = query.toString();
  return text === '' ? path : `${path}?${text}`;
}

function statusText(status: unknown): string {
  if (status === null || typeof status !== 'object') return '';
  return Object.entries(status as Record<string, unknown>)
    .map(([source, value]) => `${source}=${String(value)}`)
    .join(' ');
}

function backendsTable(backends: Row[]): string {
  const withOrigin = backends.some((b) => b.origin !== undefined);
  const headers = ['ADDRESS', 'WEIGHT', 'STATE', 'ACTIVE', 'TOTAL', 'FAILED', 'IN', 'OUT'];
  if (withOrigin) headers.push('ORIGIN');
  headers.push('STATUS');
  const rows = backends.map((b) => {
    const row: Cell[] = [
      b.address as string,
      b.weight as number,
      b.state as string,
      b.active as number,
      b.total as number,
      b.connectFailures as number,
      humanBytes(Number(b.bytesIn ?? 0)),
      humanBytes(Number(b.bytesOut ?? 0)),
    ];
    if (withOrigin) row.push(b.origin as string);
    row.push(statusText(b.status));
    return row;
  });
  return formatTable(headers, rows);
}

function sessionsTable(sessions: Row[]): string {
  const withWorker = sessions.some((s) => s.worker !== undefined);
  const headers = ['ID', ...(withWorker ? ['WORKER'] : []), 'CLIENT', 'BACKEND', 'STARTED', 'IN', 'OUT'];
  const rows = sessions.map((s) => [
    s.id as number,
    ...(withWorker ? [s.worker as number] : []),
    s.client as string,
    s.backend as string | null,
    s.startedAt as string,
    humanBytes(Number(s.bytesIn ?? 0)),
    humanBytes(Number(s.bytesOut ?? 0)),
  ]);
  return formatTable(headers, rows);
}

function workersTable(workers: Row[]): string {
  const rows = workers.map((w) => [
    w.id as number,
    w.pid as number,
    w.generation as number,
    w.sessions as number,
    (w.sessionLimit as number | null) ?? '-',
    humanBytes(Number(w.rss ?? 0)),
    w.retiring === true ? 'yes' : 'no',
  ]);
  return formatTable(['WORKER', 'PID', 'GENERATION', 'SESSIONS', 'LIMIT', 'RSS', 'RETIRING'], rows);
}

function formatObject(answer: Row): string {
  return Object.entries(answer)
    .map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join('\n');
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return n;
}

function nonEmpty(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('must not be empty');
  return value;
}

function parseUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
    return value;
  } catch {
    throw new InvalidArgumentError(`"${value}" is not an http(s) URL, e.g. ${DEFAULT_ADMIN}`);
  }
}
