/**
 * Structured logs with winston, in one of two formats (LOG_FORMAT):
 * - `json` (the default): one JSON object a line, for log shippers;
 * - `plain`: aligned lines for people (a terminal, the Airflow task log panel):
 *   `INFO   transformed                  0.02 s  rowsOut=20 keyProven=true`.
 * Unset, a terminal gets `plain` and anything else `json`; an unknown value logs `json` and says
 * so. LOG_LEVEL sets the level.
 * Logs go to stderr so that stdout carries only a command's result (summaries, --help).
 */
import winston from 'winston';
import { logSettings, type LogFormat } from './config';
import { maskStrings, printable } from './pii';

export type { LogFormat };

/** Fields every line of a job carries (logger.child): printed once, when they change. */
const CONTEXT = ['job', 'runId'] as const;
/** Not printed in plain lines: the same on every line. */
const HIDDEN = new Set<string>(['service', 'timestamp', 'level', 'message', ...CONTEXT]);
const MESSAGE_WIDTH = 26;

const plainValue = (v: unknown): string =>
  typeof v === 'number' && Number.isInteger(v) ? v.toLocaleString('en-US') : typeof v === 'string' ? printable(v) : printable(JSON.stringify(v));

/** A duration field (`ms`) has its own column, in seconds, before the other fields. */
const plainDuration = (ms: unknown): string => (typeof ms === 'number' ? `${(ms / 1000).toFixed(2)} s` : '');

function plainFormat(): winston.Logform.Format {
  let lastContext = '';
  return winston.format.printf((info) => {
    const meta = info as Record<string, unknown>;
    const context = CONTEXT.filter((k) => meta[k] !== undefined).map((k) => `${k}=${printable(String(meta[k]))}`).join(' ');
    const head = context !== '' && context !== lastContext ? `${'----'.padEnd(7)}${context}\n` : '';
    if (context !== '') lastContext = context;
    const fields = Object.entries(meta)
      .filter(([k, v]) => !HIDDEN.has(k) && k !== 'ms' && v !== undefined)
      .map(([k, v]) => `${k}=${plainValue(v)}`)
      .join(' ');
    const duration = plainDuration(meta.ms).padStart(8);
    return `${head}${info.level.toUpperCase().padEnd(7)}${printable(String(info.message)).padEnd(MESSAGE_WIDTH)} ${duration}  ${fields}`.trimEnd();
  });
}

/**
 * Last line of defence for PII in logs: card numbers in the message and in every field, nested
 * ones included, are masked by the free-text rule (pii.ts maskCardRuns), which prints run ids
 * and paths exactly. Values of PII columns never reach a log call in the first place.
 */
const maskCards = winston.format((info) => {
  for (const k of Object.keys(info)) {
    const r = info as Record<string, unknown>;
    r[k] = maskStrings(r[k]);
  }
  return info;
});

/**
 * Winston runs every format before its transports drop what is below the level: a message of a
 * disabled level (the bulk path's debug steps, info under LOG_LEVEL=warn) stops here instead.
 */
const enabledOnly = winston.format((info) => (logger.isLevelEnabled(info.level) ? info : false));

const chosen = logSettings(undefined, Boolean(process.stderr.isTTY));
export const logFormat: LogFormat = chosen.format;

export const logger = winston.createLogger({
  level: chosen.level,
  defaultMeta: { service: 'store-etl' },
  format: winston.format.combine(
    enabledOnly(),
    maskCards(),
    winston.format.timestamp(),
    logFormat === 'plain' ? plainFormat() : winston.format.json(),
  ),
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
});

export type Logger = winston.Logger;

if (chosen.problem) logger.warn(chosen.problem);
