#!/usr/bin/env node
// The programs the test suite starts (real servers, real clients), and the Debian packages that
// ship them. `npm test` runs this first so a missing program stops the run at once with the list
// and the command that installs it, instead of a spawn error deep inside a test. Run as root (or
// with password-less sudo) on Debian, it installs what is missing itself, as `.ci/run` does.
//
//   node scripts/prereqs.js            check; install what is missing when allowed (see below)
//   node scripts/prereqs.js --check    check only: exit 1 with the list when something is missing
//   node scripts/prereqs.js --list     print the Debian package names, one a line
//
// Installing is skipped when SWITCHYARD_NO_INSTALL=1, or when neither root nor `sudo -n` works.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** @typedef {{ program?: string, file?: string, pkg: string, why: string }} Prerequisite */

/** @type {Prerequisite[]} */
const PREREQUISITES = [
  { program: 'openssl', pkg: 'openssl', why: 'TLS certificates and s_client peers' },
  { program: 'nc', pkg: 'netcat-openbsd', why: 'half-close and CLI tests' },
  { program: 'redis-server', pkg: 'redis-server', why: 'health-check send/expect, benchmarks' },
  { program: 'redis-benchmark', pkg: 'redis-tools', why: 'benchmarks' },
  { program: 'ip', pkg: 'iproute2', why: 'ss and network checks' },
  { program: 'python3', pkg: 'python3', why: 'a listener whose accept queue stays full (connect timeout)' },
  { program: 'prlimit', pkg: 'util-linux', why: 'floods under a low open-files limit' },
  { program: 'chromium', pkg: 'chromium', why: 'the dashboard and the admin API in a real browser' },
  { program: 'haproxy', pkg: 'haproxy', why: 'PROXY protocol interop, benchmarks' },
  { program: 'nginx', pkg: 'nginx', why: 'PROXY protocol interop (stream module)' },
  {
    file: '/usr/lib/nginx/modules/ngx_stream_module.so',
    pkg: 'libnginx-mod-stream',
    why: 'nginx stream module',
  },
  { program: 'etcd', pkg: 'etcd-server', why: 'etcd-registry: one registry for several instances' },
  { program: 'etcdctl', pkg: 'etcd-client', why: 'etcd-registry: keys written by an operator' },
  { program: 'dnsmasq', pkg: 'dnsmasq', why: 'dns-discovery against a real DNS server' },
];

/** True when `program` is an executable on PATH (or /usr/sbin, where Debian puts daemons). */
function onPath(program) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

function present(p) {
  if (p.program !== undefined) return onPath(p.program);
  try {
    accessSync(/** @type {string} */ (p.file), constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function missingPrerequisites() {
  return PREREQUISITES.filter((p) => !present(p));
}

/** `''` as root, `'sudo'` with password-less sudo, undefined when installing is not possible. */
function privilege() {
  if (process.getuid?.() === 0) return '';
  const sudo = spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' });
  return sudo.status === 0 ? 'sudo' : undefined;
}

function installCommand(pkgs) {
  return `sudo apt-get update && sudo apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

function main() {
  const mode = process.argv[2] ?? '';
  if (mode === '--list') {
    console.log([...new Set(PREREQUISITES.map((p) => p.pkg))].join('\n'));
    return;
  }
  let missing = missingPrerequisites();
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((p) => p.pkg))];
  const canInstall =
    mode !== '--check' && process.env.SWITCHYARD_NO_INSTALL !== '1' && onPath('apt-get')
      ? privilege()
      : undefined;
  if (canInstall !== undefined) {
    console.error(`tests need Debian packages that are missing: ${pkgs.join(' ')}; installing them`);
    const run = (args) =>
      execFileSync(canInstall === '' ? args[0] : 'sudo', canInstall === '' ? args.slice(1) : args, {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    run(['apt-get', 'update', '-q']);
    run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...pkgs]);
    missing = missingPrerequisites();
    if (missing.length === 0) return;
  }
  console.error('The tests need programs that are not installed:');
  for (const p of missing) console.error(`  ${(p.program ?? p.file ?? '').padEnd(16)} (${p.pkg}): ${p.why}`);
  console.error(`Install them with:\n  ${installCommand([...new Set(missing.map((p) => p.pkg))])}`);
  process.exit(1);
}

main();
