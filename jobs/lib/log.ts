/**
 * Structured logs with winston: JSON lines when not on a terminal (files, CI, Airflow task logs),
 * a compact readable line on a TTY. LOG_FORMAT=json|pretty forces one; LOG_LEVEL sets the level.
 * Logs go to stderr so that stdout carries only a command's result (summaries, --help).
 */
import winston from 'winston';

const usePretty = (): boolean => {
  const f = process.env.LOG_FORMAT?.toLowerCase();
  if (f === 'json') return false;
  if (f === 'pretty') return true;
  return Boolean(process.stderr.isTTY);
};

const pretty = winston.format.printf(({ level, message, timestamp, ...meta }) => {
  const extra = Object.entries(meta)
    .filter(([k]) => k !== 'service')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${String(timestamp).slice(11, 19)} ${level} ${String(message)}${extra ? ' ' + extra : ''}`;
});

export const logger = winston.createLogger({
  level: process.env.LOG_LEVEL ?? 'info',
  defaultMeta: { service: 'store-etl' },
  format: winston.format.combine(
    winston.format.timestamp(),
    usePretty() ? winston.format.combine(winston.format.colorize(), pretty) : winston.format.json(),
  ),
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
});

export type Logger = winston.Logger;
