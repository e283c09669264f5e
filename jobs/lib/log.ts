/**
 * Structured logs with winston: JSON lines (LOG_FORMAT=json, the default, for log shippers) or
 * plain aligned lines (LOG_FORMAT=plain, for the Airflow task log); LOG_LEVEL sets the level.
 * Logs go to stderr so that stdout carries only a command's result (summaries, --help).
 */
import winston from 'winston';
import { logSettings } from './config';
import { maskCardRuns, printable } from './pii';

const usePretty = (): boolean => logSettings().format === 'plain';

const pretty = winston.format.printf(({ level, message, timestamp, ...meta }) => {
  const extra = Object.entries(meta)
    .filter(([k]) => k !== 'service')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? printable(v) : JSON.stringify(v)}`)
    .join(' ');
  return `${String(timestamp).slice(11, 19)} ${level} ${printable(String(message))}${extra ? ' ' + extra : ''}`;
});

/**
 * Last line of defence for PII in logs: card-like digit runs in the message and string fields
 * are masked (values of PII columns never reach a log call in the first place).
 */
const maskCards = winston.format((info) => {
  for (const k of Object.keys(info)) {
    const v = (info as Record<string, unknown>)[k];
    if (typeof v === 'string') (info as Record<string, unknown>)[k] = maskCardRuns(v);
  }
  return info;
});

/**
 * Winston runs every format before its transports drop what is below the level: a message of a
 * disabled level (the bulk path's debug steps, info under LOG_LEVEL=warn) stops here instead.
 */
const enabledOnly = winston.format((info) => (logger.isLevelEnabled(info.level) ? info : false));

export const logger = winston.createLogger({
  level: logSettings().level,
  defaultMeta: { service: 'store-etl' },
  format: winston.format.combine(
    enabledOnly(),
    maskCards(),
    winston.format.timestamp(),
    usePretty() ? winston.format.combine(winston.format.colorize(), pretty) : winston.format.json(),
  ),
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
});

export type Logger = winston.Logger;
