/**
 * A batch job's scratch folder (its scratch DuckDB spills there) outlives nothing: removed when
 * the job ends, on SIGTERM/SIGINT while it runs, and, for a job that was killed outright, by the
 * next job's sweep (the folder names its owner's pid).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { logger } from './log';

/** Scratch folders of this process's running jobs. */
const liveScratch = new Set<string>();
const SIGNALS = [['SIGTERM', 143], ['SIGINT', 130]] as const;
const onSignal = (sig: NodeJS.Signals) => {
  for (const dir of liveScratch) fs.rmSync(dir, { recursive: true, force: true });
  liveScratch.clear();
  // Exit as the signal would have, unless someone else handles it (a graceful shutdown).
  if (process.listenerCount(sig) <= 1) process.exit(SIGNALS.find(([s]) => s === sig)![1]);
};

/**
 * SIGTERM/SIGINT (Airflow stopping a task, Ctrl-C) end node without `finally`: while a job of
 * this process runs, a handler removes the scratch folders first.
 */
export function trackScratch(dir: string, live: boolean): void {
  const before = liveScratch.size;
  if (live) liveScratch.add(dir);
  else liveScratch.delete(dir);
  if (before === 0 && liveScratch.size > 0) for (const [sig] of SIGNALS) process.on(sig, onSignal);
  if (before > 0 && liveScratch.size === 0) for (const [sig] of SIGNALS) process.off(sig, onSignal);
}

/** Holds the pid of the job owning a scratch folder, so a later job can tell it is stale. */
export const OWNER_FILE = 'owner.pid';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Removes scratch folders left by killed jobs: those whose owner process is gone (a folder
 * without an owner file counts once it is a minute old: its job died before writing it).
 */
export function sweepStaleScratch(tmpRoot: string, log: typeof logger): void {
  let names: string[];
  try {
    names = fs.readdirSync(tmpRoot);
  } catch {
    return;
  }
  for (const name of names) {
    const dir = path.join(tmpRoot, name);
    try {
      let stale: boolean;
      try {
        const pid = Number(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8').trim());
        // Our own pid: a job of this process, which cleans up after itself.
        stale = !(Number.isInteger(pid) && pid > 0 && (pid === process.pid || alive(pid)));
      } catch {
        stale = Date.now() - fs.statSync(dir).mtimeMs > 60_000;
      }
      if (stale) {
        fs.rmSync(dir, { recursive: true, force: true });
        log.info('removed a stale scratch folder', { dir });
      }
    } catch (e) {
      log.warn('could not sweep a scratch folder', { dir, error: (e as Error).message });
    }
  }
}
