/**
 * The project's settings as typed sections, for the rest of the code. Every variable is declared
 * once in ./config/spec.ts (type, default, doc) and parsed by ./config/settings.ts with one rule
 * (an empty value is an unset one); nothing else reads process.env. Paths are resolved against
 * the working directory (the repo root for npm scripts).
 */
import { type Env, processEnv, settingsOf } from './config/settings';
import { type EltHoldPhase, settingOf } from './config/spec';

export type { Env } from './config/settings';
export type { EltHoldPhase } from './config/spec';

/**
 * WAREHOUSE's values (the same union as warehouse/types.ts' WarehouseKind). Declared here so the
 * config module imports nothing of the project: scripts and the dbt image compile it alone.
 */
type WarehouseKind = 'duckdb' | 'bigquery';

export interface EtlConfig {
  readonly sourceDir: string;
  readonly stateDir: string;
  readonly duckdbPath: string;
  readonly warehouse: WarehouseKind;
  /** How often a job retries a DuckDB file locked by another writer before giving up. */
  readonly duckdbLockRetries: number;
  /** Memory of a job's scratch DuckDB; past it DuckDB spills to disk, so peak RSS stays bounded. */
  readonly duckdbMemoryLimit: string;
  /**
   * Longest source record (line) in bytes: a longer one is quarantined as `record_too_long`
   * with a short excerpt, and never held in memory whole.
   */
  readonly maxRecordBytes: number;
  /**
   * How batch jobs stage a source file: `bulk` (DuckDB reads and checks it with SQL compiled
   * from the catalog; flagged rows, and files it cannot take, go through the exact path) or
   * `exact` (csv-parse + ajv for every row).
   */
  readonly batchPath: BatchPath;
  /**
   * Opt-in ceiling on the share (0-1) of any source's rows a job may quarantine and still load;
   * null (unset, the default): no ceiling.
   */
  readonly maxQuarantineShare: number | null;
  /**
   * Where a batch job checks and transforms: `etl` in its scratch DuckDB (then uploads the
   * table), `elt` in BigQuery (it uploads the staged sources). Default elt on BigQuery.
   */
  readonly batchMode: BatchMode;
}

export type BatchMode = 'etl' | 'elt';

export type BatchPath = 'bulk' | 'exact';

/** The longest source record (line) by default (MAX_RECORD_BYTES's default: 1 MiB). */
export const DEFAULT_MAX_RECORD_BYTES = Number(settingOf('MAX_RECORD_BYTES').default);

/** The batch jobs' settings; `overrides.stateDir` also moves the files derived from it. */
export function loadConfig(env: Env = processEnv(), overrides: Partial<EtlConfig> = {}): EtlConfig {
  const s = settingsOf(overrides.stateDir ? { ...env, ETL_STATE_DIR: overrides.stateDir } : env);
  return {
    sourceDir: s.path('ETL_SOURCE_DIR'),
    stateDir: s.path('ETL_STATE_DIR'),
    duckdbPath: s.path('DUCKDB_PATH'),
    warehouse: s.choice<WarehouseKind>('WAREHOUSE'),
    duckdbLockRetries: s.int('DUCKDB_LOCK_RETRIES'),
    duckdbMemoryLimit: s.text('DUCKDB_MEMORY_LIMIT'),
    maxRecordBytes: s.int('MAX_RECORD_BYTES'),
    batchPath: s.choice<BatchPath>('BATCH_PATH'),
    maxQuarantineShare: s.optionalShare('MAX_QUARANTINE_SHARE'),
    batchMode: s.choice<BatchMode>('BATCH_MODE'),
    ...overrides,
  };
}

/** The stream layer's settings (the fields of StreamConfig, jobs/lib/stream/config.ts). */
export function streamSettings(env: Env = processEnv()) {
  const s = settingsOf(env);
  const topicPrefix = s.text('TOPIC_NAME');
  if (!/^[A-Za-z0-9._-]+$/.test(topicPrefix)) throw new Error(`TOPIC_NAME '${topicPrefix}' is not a valid topic prefix`);
  return {
    brokers: s.list('BOOTSTRAP_SERVER'),
    topicPrefix,
    group: s.text('TOPIC_GROUP'),
    partitions: s.int('STREAM_PARTITIONS'),
    sessionTimeoutMs: s.int('STREAM_SESSION_TIMEOUT_MS'),
    maxBatchBytes: s.int('STREAM_MAX_BATCH_BYTES'),
    commitMaxEvents: s.int('STREAM_COMMIT_MAX_EVENTS'),
    availabilityStepRows: s.int('STREAM_AVAILABILITY_STEP_ROWS'),
    brokerWaitMs: s.int('STREAM_BROKER_WAIT_MS'),
    ...streamFileSettings(env),
    duckdbThreads: s.int('STREAM_DUCKDB_THREADS'),
    snapshotIntervalMs: s.int('STREAM_SNAPSHOT_INTERVAL_MS'),
    security: kafkaSecuritySettings(env),
  };
}

export type KafkaSecurityProtocol = 'plaintext' | 'ssl' | 'sasl_plaintext' | 'sasl_ssl';
export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** How the Kafka clients reach a secured cluster: TLS files (paths) and the SASL login, when the protocol uses them. */
export interface KafkaSecurity {
  readonly protocol: KafkaSecurityProtocol;
  /** TLS (ssl, sasl_ssl): PEM files; no CA file = the system's CAs. */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  readonly sasl?: { readonly mechanism: SaslMechanism; readonly username: string; readonly password: string };
}

/** STREAM_SECURITY_PROTOCOL and what it needs; a sasl_* protocol without its user or password is an error here, not at connect. */
export function kafkaSecuritySettings(env: Env = processEnv()): KafkaSecurity {
  const s = settingsOf(env);
  const protocol = s.choice<KafkaSecurityProtocol>('STREAM_SECURITY_PROTOCOL');
  const tls = protocol.endsWith('ssl')
    ? { caFile: s.optionalPath('STREAM_SSL_CA_FILE'), certFile: s.optionalPath('STREAM_SSL_CERT_FILE'), keyFile: s.optionalPath('STREAM_SSL_KEY_FILE') }
    : undefined;
  if (tls && !tls.certFile !== !tls.keyFile) throw new Error('STREAM_SSL_CERT_FILE and STREAM_SSL_KEY_FILE go together: set both or neither');
  if (!protocol.startsWith('sasl_')) return { protocol, tls };
  const username = s.optionalText('STREAM_SASL_USERNAME');
  const password = s.optionalText('STREAM_SASL_PASSWORD');
  if (!username || !password) throw new Error(`STREAM_SECURITY_PROTOCOL=${protocol} needs STREAM_SASL_USERNAME and STREAM_SASL_PASSWORD`);
  return { protocol, tls, sasl: { mechanism: s.choice<SaslMechanism>('STREAM_SASL_MECHANISM'), username, password } };
}

/** The kafkajs client's log level (KAFKAJS_LOG_LEVEL). */
export const kafkajsLogLevel = (env: Env = processEnv()) => settingsOf(env).choice<'error' | 'warn' | 'info' | 'debug'>('KAFKAJS_LOG_LEVEL');

/** The DuckDB files of the stream layer: its own, the batch one it mirrors from, the snapshot for dbt. */
export function streamFileSettings(env: Env = processEnv()): { duckdbPath: string; batchDuckdbPath: string; snapshotPath: string } {
  const s = settingsOf(env);
  return { duckdbPath: s.path('STREAM_DUCKDB_PATH'), batchDuckdbPath: s.path('DUCKDB_PATH'), snapshotPath: s.path('STREAM_SNAPSHOT_PATH') };
}

/** The local Kafka broker of scripts/kafka/. */
export function kafkaBrokerSettings(env: Env = processEnv()): { stateDir: string; port: number } {
  const s = settingsOf(env);
  return { stateDir: s.path('KAFKA_STATE_DIR'), port: s.int('KAFKA_PORT') };
}

/** BigQuery (WAREHOUSE=bigquery); `projectId` undefined when unset (the adapter says it is required). */
export function bigquerySettings(env: Env = processEnv(), cwd = process.cwd()) {
  const s = settingsOf(env, cwd);
  return {
    projectId: s.optionalText('GCP_PROJECT_ID'),
    dataset: s.optionalText('BIGQUERY_DATASET'),
    location: s.text('BIGQUERY_LOCATION'),
    keyFilename: s.optionalPath('GOOGLE_APPLICATION_CREDENTIALS'),
    maxRetries: s.int('BIGQUERY_MAX_RETRIES'),
  };
}

export type LogFormat = 'json' | 'plain';

/**
 * The logger's settings. Logging starts when a module is loaded, before any command line is read,
 * so a bad value is not thrown (that would print a stack trace instead of the one-line error):
 * the logger falls back (info, json) and says so in `problem`. LOG_FORMAT unset: `plain` on a
 * terminal, `json` otherwise.
 */
export function logSettings(env: Env = processEnv(), isTty = false): { level: string; format: LogFormat; problem: string | null } {
  const s = settingsOf(env);
  const problems: string[] = [];
  const read = <T>(fn: () => T, fallback: T, what: string): T => {
    try {
      return fn();
    } catch (e) {
      problems.push(`${(e as Error).message}: logging ${what}`);
      return fallback;
    }
  };
  const level = read(() => s.choice('LOG_LEVEL'), 'info', 'at info');
  const format = read<LogFormat>(() => (s.raw('LOG_FORMAT') === undefined ? (isTty ? 'plain' : 'json') : s.choice<LogFormat>('LOG_FORMAT')), 'json', 'json');
  return { level, format, problem: problems.length ? problems.join('; ') : null };
}

/** dbt's profile settings (scripts/dbt-profiles.ts); relative paths taken against `cwd`. */
export function dbtSettings(env: Env = processEnv(), cwd = process.cwd()) {
  const s = settingsOf(env, cwd);
  return {
    target: s.choice<'duckdb' | 'bigquery'>('DBT_TARGET'),
    threads: s.int('DBT_THREADS'),
    profilesDir: s.path('DBT_PROFILES_DIR'),
    duckdbPath: s.path('DUCKDB_PATH'),
    streamSnapshotPath: s.path('STREAM_SNAPSHOT_PATH'),
  };
}

/** The Airflow API of a running stack (the compose smoke test talks to it). */
export function airflowApiSettings(env: Env = processEnv()): { port: number; adminUser: string; adminPassword: string | undefined } {
  const s = settingsOf(env);
  return { port: s.int('AIRFLOW_PORT'), adminUser: s.text('AIRFLOW_ADMIN_USER'), adminPassword: s.optionalText('AIRFLOW_ADMIN_PASSWORD') };
}

/** Where `npm run secrets` looks for the Docker API socket when the dotenv file does not say. */
export const dockerSocketSetting = (env: Env = processEnv()): string => settingsOf(env).path('DOCKER_SOCKET');

/** Hooks of the atomicity tests, inert unless set (ETL_TEST_* in the spec). */
export function testHooks(env: Env = processEnv()): {
  failBeforeCommit: boolean;
  pauseBeforeCommitMs: number;
  streamPauseBeforeCommitMs: number;
  streamHoldFile: string | undefined;
  holdFile: string | undefined;
  holdAtPhase: EltHoldPhase | undefined;
} {
  const s = settingsOf(env);
  return {
    failBeforeCommit: s.flag('ETL_TEST_FAIL_BEFORE_COMMIT'),
    pauseBeforeCommitMs: s.int('ETL_TEST_PAUSE_BEFORE_COMMIT_MS'),
    streamPauseBeforeCommitMs: s.int('ETL_TEST_STREAM_PAUSE_BEFORE_COMMIT_MS'),
    streamHoldFile: s.optionalPath('ETL_TEST_STREAM_HOLD_FILE'),
    holdFile: s.optionalPath('ETL_TEST_HOLD_FILE'),
    holdAtPhase: s.raw('ETL_TEST_HOLD_AT_PHASE') as EltHoldPhase | undefined,
  };
}
