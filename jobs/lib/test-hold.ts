/**
 * The hold-file test hooks (ETL_TEST_STREAM_HOLD_FILE, ETL_TEST_HOLD_FILE with
 * ETL_TEST_HOLD_AT_PHASE), inert unless set: while the file exists the process waits at a known
 * point and says so in `<file>.held` (its pid), so a test can act there (stop the broker, send
 * SIGKILL) without guessing at timing, and release it by deleting the file.
 */
import fs from 'node:fs';
import { type EltHoldPhase, testHooks } from './config';

/** Waits while `file` exists (no file, or none given: returns at once). */
export async function holdWhileFileExists(file: string | undefined): Promise<void> {
  if (!file || !fs.existsSync(file)) return;
  fs.writeFileSync(`${file}.held`, String(process.pid));
  try {
    while (fs.existsSync(file)) await new Promise((r) => setTimeout(r, 20));
  } finally {
    fs.rmSync(`${file}.held`, { force: true });
  }
}

/** An ELT batch job's hold point: waits there when ETL_TEST_HOLD_AT_PHASE names it. */
export async function holdAtEltPhase(phase: EltHoldPhase): Promise<void> {
  const { holdFile, holdAtPhase } = testHooks();
  if (holdAtPhase === phase) await holdWhileFileExists(holdFile);
}
