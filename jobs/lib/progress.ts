/**
 * Progress for long work: a bar on an interactive terminal (cli-progress), otherwise a log line
 * at every quarter so that Airflow and CI logs show the job is alive without flooding them.
 */
import cliProgress from 'cli-progress';
import { logFormat, logger } from './log';

export interface Progress {
  update(done: number, rows: number): void;
  stop(): void;
}

export function createProgress(label: string, total: number): Progress {
  if (process.stderr.isTTY && logFormat === 'plain' && total > 0) {
    const bar = new cliProgress.SingleBar(
      { format: `${label.padEnd(28)} {bar} {percentage}% | {rows} rows | {eta_formatted}`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rows: 0 });
    return {
      update: (done, rows) => bar.update(done, { rows }),
      stop: () => bar.stop(),
    };
  }
  let nextQuarter = 1;
  return {
    update(done, rows) {
      let percent = 0;
      while (total > 0 && nextQuarter <= 4 && done >= (total * nextQuarter) / 4) percent = 25 * nextQuarter++;
      if (percent > 0) logger.info('progress', { task: label, percent, rows });
    },
    stop() {},
  };
}
