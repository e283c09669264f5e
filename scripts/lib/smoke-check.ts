/**
 * The compose smoke's checks and waits (compose-smoke.ts and its Airflow client): a failed check
 * ends the command with its reason; a wait retries a probe until it answers or time runs out.
 */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const say = (msg: string) => process.stderr.write(`[compose-smoke] ${msg}\n`);

/** A check that does not hold (not retried by `until`). */
export class CheckFailed extends Error {}
export function check(ok: boolean, msg: string): void {
  if (!ok) throw new CheckFailed(msg);
}

/** Polls `probe` every 3 s until it returns a value; its errors are retried, a CheckFailed is not. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      if (e instanceof CheckFailed) throw e;
      last = (e as Error).message;
    }
    if (Date.now() > end) throw new CheckFailed(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await sleep(3000);
  }
}
