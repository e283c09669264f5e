/** The local Kafka broker (scripts/kafka/*.sh): start it when needed, tell whether Java/jars exist. */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { kafkaBrokerSettings } from '../config';
import { logger } from '../log';

/** The repository root (the folder with package.json above this file, from src or dist). */
export function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'scripts', 'kafka'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

export const kafkaStateDir = (): string => kafkaBrokerSettings().stateDir;

export function javaAvailable(): boolean {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const jarsAvailable = (): boolean => {
  const libs = path.join(kafkaStateDir(), 'libs');
  return fs.existsSync(libs) && fs.readdirSync(libs).some((f) => /^kafka_2\.13-.*\.jar$/.test(f));
};

/** True when something accepts TCP connections at host:port. */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function runScript(name: string, settings: Record<string, string> = {}): Promise<string> {
  const script = path.join(repoRoot(), 'scripts', 'kafka', name);
  // The broker's folder as this process resolved it (relative paths against its working directory).
  const env = { ...process.env, KAFKA_STATE_DIR: kafkaStateDir(), ...settings };
  return new Promise((resolve, reject) => {
    execFile('bash', [script], { cwd: repoRoot(), env, timeout: 600000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${name} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

/**
 * Makes sure a broker answers at the first bootstrap server: when it does not and it is the
 * local one, runs setup.sh (jars) and start.sh. Returns true when this call started it.
 */
export async function ensureBroker(bootstrap: string): Promise<boolean> {
  const [host, portText] = bootstrap.split(',')[0].trim().split(':');
  const port = Number(portText ?? 9092);
  if (await portOpen(host, port)) return false;
  if (!['localhost', '127.0.0.1', '::1'].includes(host)) {
    throw new Error(`Kafka at ${bootstrap} does not answer (and is not the local broker this repo can start)`);
  }
  startedOn = { KAFKA_PORT: String(port) };
  logger.info('kafka: starting the local broker', { port });
  const out = await runScript('start.sh', startedOn);
  logger.info(out.split('\n').pop() ?? 'kafka started');
  return true;
}

/** The port of the bootstrap server ensureBroker started the broker for: a restart uses it again. */
let startedOn: Record<string, string> = {};

export const startBroker = (): Promise<string> => runScript('start.sh', startedOn);
/** Stops the local broker of this checkout, or the one whose KAFKA_STATE_DIR is `stateDir` (e.g. a run with its own ETL_STATE_DIR). */
export const stopBroker = (stateDir?: string): Promise<string> => runScript('stop.sh', stateDir ? { KAFKA_STATE_DIR: stateDir } : {});
