/**
 * `npm run airflow` (scripts/airflow.sh) stops on ONE Ctrl-C with every child gone (api-server,
 * scheduler, dag-processor, triggerer and their workers), and `npm run airflow:stop` ends a
 * backgrounded one. "Gone" = none of the processes seen while it ran is alive, and no process of
 * their sessions or with this AIRFLOW_HOME in its environment is left.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/env';
import { describeWith, missingAirflow } from './airflow-env';

const PORT = Number(process.env.AIRFLOW_PORT || 8080);
const COMPONENTS = [/api[-_]server/, /scheduler/, /dag-processor/, /triggerer/];

interface Proc {
  pid: number;
  ppid: number;
  sid: number;
  start: string;
  cmd: string;
  env: string[];
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp session ... starttime (22nd)
      let env: string[] = [];
      try {
        env = fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      } catch {
        // not readable: ignore
      }
      out.push({ pid: Number(d), ppid: Number(f[1]), sid: Number(f[3]), start: f[19], cmd: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' '), env });
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

/**
 * The processes of the Airflow started by `script` with AIRFLOW_HOME=home, found without the
 * script's own bookkeeping: the script's descendants, processes whose environment names this
 * AIRFLOW_HOME, their descendants, and every process of their sessions (Airflow's children
 * rename themselves, which wipes their environment, and are orphaned once a parent exits).
 */
function processesOf(home: string, known: Known = { pids: new Map(), sessions: new Set() }, script?: number): Proc[] {
  const all = processes().filter((p) => p.pid !== process.pid);
  const mine = new Set<number>();
  const sessions = new Set(known.sessions);
  for (const p of all) {
    if (p.env.includes(`AIRFLOW_HOME=${home}`) || known.pids.get(p.pid) === p.start || p.pid === script) mine.add(p.pid);
  }
  for (let changed = true; changed; ) {
    changed = false;
    // Sessions our processes created (the script's, Airflow's): never a shared one like the test's.
    for (const p of all) if (mine.has(p.pid) && p.sid === p.pid) sessions.add(p.sid);
    for (const p of all) {
      if (!mine.has(p.pid) && (mine.has(p.ppid) || sessions.has(p.sid))) {
        mine.add(p.pid);
        changed = true;
      }
    }
  }
  return all.filter((p) => mine.has(p.pid));
}

interface Known {
  pids: Map<number, string>; // pid -> start time (a pid can be reused)
  sessions: Set<number>;
}
const knownOf = (procs: Proc[]): Known => ({
  pids: new Map(procs.map((p) => [p.pid, p.start])),
  sessions: new Set(procs.filter((p) => p.sid === p.pid).map((p) => p.sid)),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function healthy(): Promise<boolean> {
  try {
    return (await fetch(`http://localhost:${PORT}/api/v2/monitor/health`, { signal: AbortSignal.timeout(3000) })).ok;
  } catch {
    return false;
  }
}

describeWith([missingAirflow()], 'scripts/airflow.sh stops with every child', () => {
  jest.setTimeout(600_000);
  const started: ChildProcess[] = [];

  function start(home: string): { child: ChildProcess; log: () => string } {
    homes.push(home);
    let log = '';
    const child = spawn('bash', ['scripts/airflow.sh'], {
      cwd: ROOT,
      detached: true, // like a backgrounded job: its own process group
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        LANG: 'C.UTF-8',
        AIRFLOW_HOME: home,
        AIRFLOW_PORT: String(PORT),
        AIRFLOW_ENV_FILE: '/dev/null',
        AIRFLOW_SKIP_SETUP: '1',
        ETL_RUNNER: 'local',
      },
    });
    started.push(child);
    const keep = (b: Buffer) => (log = (log + b.toString()).slice(-20000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return { child, log: () => log };
  }

  /** Waits until the UI answers and all four components run. */
  /** Waits until the UI answers and all four components run; returns its processes (pid -> start time). */
  async function up(home: string, child: ChildProcess, log: () => string): Promise<Known> {
    const end = Date.now() + 300_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`airflow.sh exited ${child.exitCode}:\n${log()}`);
      const procs = processesOf(home, undefined, child.pid);
      const cmds = procs.map((p) => p.cmd).join('\n');
      if ((await healthy()) && COMPONENTS.every((c) => c.test(cmds))) return knownOf(procs);
      if (Date.now() > end) throw new Error(`Airflow did not come up; processes:\n${cmds}\n${log()}`);
      await sleep(2000);
    }
  }

  /** Processes of this Airflow still alive after `timeoutMs`: none of `known`, nothing in their sessions. */
  async function left(home: string, known: Known, timeoutMs: number): Promise<string[]> {
    const end = Date.now() + timeoutMs;
    let procs = processesOf(home, known);
    while (procs.length && Date.now() < end) {
      await sleep(500);
      procs = processesOf(home, known);
    }
    return procs.map((p) => `${p.pid} ${p.cmd}`);
  }

  const homes: string[] = [];
  afterAll(() => {
    // Whatever a failed test left: only this suite's processes (its own AIRFLOW_HOMEs, scripts, sessions).
    for (const home of homes) {
      for (const p of processesOf(home, undefined, started.find((c) => c.exitCode === null)?.pid)) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });

  test('one SIGINT (Ctrl-C) stops the whole Airflow, even with its output closed', async () => {
    expect(await healthy()).toBe(false); // nothing else on the port
    const home = tempDir('airflow-ctrlc');
    const { child, log } = start(home);
    const known = await up(home, child, log);
    expect(known.pids.size).toBeGreaterThanOrEqual(COMPONENTS.length + 2); // + the script and airflow standalone
    expect(known.sessions.size).toBe(2); // the script's (detached here) and Airflow's own
    expect(fs.readFileSync(path.join(home, 'airflow.pid'), 'utf8').trim()).toBe(String(child.pid));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // The terminal may be gone too: the stop must not depend on the script's output.
    child.stdout!.destroy();
    child.stderr!.destroy();
    process.kill(child.pid!, 'SIGINT'); // what one Ctrl-C delivers to the script
    expect(await exited).toBe(130);
    expect(await left(home, known, 5_000)).toEqual([]);
    expect(fs.existsSync(path.join(home, 'airflow.pid'))).toBe(false);
  });

  test('npm run airflow:stop ends a backgrounded one', async () => {
    const home = tempDir('airflow-bg');
    const { child, log } = start(home);
    const known = await up(home, child, log);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const stop = spawnSync('npm', ['run', '-s', 'airflow:stop'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', AIRFLOW_HOME: home, AIRFLOW_ENV_FILE: '/dev/null' },
    });
    expect({ status: stop.status, stderr: stop.status === 0 ? '' : stop.stderr }).toEqual({ status: 0, stderr: '' });
    expect(stop.stderr).toMatch(/airflow:stop: done/);
    expect(await exited).toBe(130);
    expect(log()).toMatch(/\[airflow\] stopping Airflow \(\d+ processes/);
    expect(await left(home, known, 5_000)).toEqual([]);
    // Stopping again is harmless.
    const again = spawnSync('bash', ['scripts/airflow.sh', 'stop'], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', AIRFLOW_HOME: home, AIRFLOW_ENV_FILE: '/dev/null' } });
    expect(again.status).toBe(0);
    expect(again.stderr).toMatch(/not running/);
  });
});
