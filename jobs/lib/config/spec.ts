/**
 * THE list of the project's settings: every environment variable that any part of it reads
 * (jobs, consumers, scripts, dbt, DAGs, docker-compose.yml, Dockerfiles, tests), declared once
 * with its type, default, meaning, users and whether it is a secret.
 *
 * Everything else is derived from this list: the parsing (./settings.ts), .env.example,
 * docs/configuration.md and the environment part of every `--help` (./render.ts, written by
 * `npm run config:docs`), and the values the shell scripts and DAGs ask for
 * (`node dist/scripts/config.js get NAME`). tests/deploy/env.test.ts fails when a file reads a
 * variable missing here, or when a generated file drifts.
 *
 * One rule for every variable: an empty value is the same as an unset one (its default applies).
 * Relative paths are taken against the working directory (the project folder for npm scripts).
 *
 * This file imports nothing of the project: scripts that run before the build compile it alone.
 */
import os from 'node:os';

/** Where a setting belongs: its part of .env.example and docs/configuration.md, and the --help it appears in. */
export type Section =
  | 'general'
  | 'batch'
  | 'bigquery'
  | 'stream'
  | 'kafka'
  | 'dbt'
  | 'compose'
  | 'airflow'
  | 'setup'
  | 'podman'
  | 'smoke'
  | 'internal';

export const SECTION_TITLES: Record<Section, string> = {
  general: 'warehouse and logs',
  batch: 'batch jobs',
  bigquery: 'BigQuery (WAREHOUSE=bigquery)',
  stream: 'Kafka / stream',
  kafka: 'local Kafka broker (scripts/kafka/, npm run kafka:start)',
  dbt: 'dbt',
  compose: 'Airflow (docker compose)',
  airflow: 'Airflow on the host (npm run airflow)',
  setup: 'setup',
  podman: 'containers without Docker (podman)',
  smoke: 'compose smoke test (npm run compose:smoke)',
  internal: 'set inside images / tests only',
};

/**
 * `text` any string; `path` a file or folder (resolved against the working directory);
 * `int` a whole number (>= min); `choice` one of `values` (case-insensitive); `size` a memory
 * size like 512MB; `list` comma-separated; `flag` 1/0 (also true/false).
 */
export type Kind = 'text' | 'path' | 'int' | 'choice' | 'size' | 'list' | 'flag' | 'share';

/** Reads another setting's resolved value while deriving a default. */
export type Lookup = (name: string) => string;

export interface Setting {
  readonly name: string;
  readonly kind: Kind;
  readonly section: Section;
  /** One sentence or two: what it means. Goes into .env.example, the docs table and --help. */
  readonly doc: string;
  /** Which commands/layers read it (the docs' "used by" column). */
  readonly usedBy: string;
  /** The built-in default, as it would be written in the environment; absent: none. */
  readonly default?: string;
  /** A default computed from other settings (e.g. a file under ETL_STATE_DIR) or the machine. */
  readonly derive?: (get: Lookup) => string;
  /** How the default reads in the docs when it is derived, or when there is none. */
  readonly defaultDoc?: string;
  /** choice: the accepted values. */
  readonly values?: readonly string[];
  /** int: the smallest accepted value (default 0). */
  readonly min?: number;
  /** Passwords and keys: never printed by the config command, always empty in .env.example. */
  readonly secret?: boolean;
  /** Active (uncommented) in .env.example, for docker compose's interpolation and `npm run secrets`. */
  readonly active?: boolean;
  /** The value .env.example shows when it is not the default. */
  readonly example?: string;
}

const under = (dir: string, file: string): ((get: Lookup) => string) => (get) => `${get(dir).replace(/\/+$/, '')}/${file}`;

/** Cores but one, at least 1 (the consumer's own JavaScript thread needs a core). */
const coresButOne = (): string => String(Math.max(1, os.cpus().length - 1));

/**
 * Where ETL_TEST_HOLD_AT_PHASE holds an ELT job, each after BigQuery saw part of the phase:
 * upload (the first staging table loaded), checks (the first check job ran), transform (the
 * result table filled), commit (just before the commit script), committed (BigQuery ran it; the
 * staging tables not yet dropped).
 */
export const ELT_HOLD_PHASES = ['upload', 'checks', 'transform', 'commit', 'committed'] as const;
export type EltHoldPhase = (typeof ELT_HOLD_PHASES)[number];

export const SPEC: readonly Setting[] = [
  // ------------------------------------------------------------------ general
  { name: 'WAREHOUSE', kind: 'choice', values: ['duckdb', 'bigquery'], default: 'duckdb', section: 'general', active: true, usedBy: 'jobs, consumers',
    doc: 'Which warehouse the jobs and consumers write to: duckdb (an embedded file, no account needed) or bigquery.' },
  { name: 'ETL_SOURCE_DIR', kind: 'path', default: 'data_source', section: 'general', active: true, usedBy: 'jobs, `npm start`, DAGs',
    doc: 'Folder of the source files.' },
  { name: 'ETL_STATE_DIR', kind: 'path', default: '.state', section: 'general', active: true, usedBy: 'all',
    doc: 'Local state: the DuckDB files, reports, scratch, logs (logs/dbt-build.log), dbt profiles, the local Kafka broker (KAFKA_STATE_DIR) and the host Airflow home (AIRFLOW_HOME).' },
  { name: 'DUCKDB_PATH', kind: 'path', derive: under('ETL_STATE_DIR', 'warehouse.duckdb'), defaultDoc: '$ETL_STATE_DIR/warehouse.duckdb', example: '.state/warehouse.duckdb',
    section: 'general', usedBy: 'jobs, consumers, dbt, DAGs',
    doc: "The batch DuckDB warehouse file (the consumers only read its dim_products, for their stock mirror)." },
  { name: 'DUCKDB_LOCK_RETRIES', kind: 'int', default: '10', section: 'general', active: true, usedBy: 'jobs',
    doc: 'How often a batch job retries the DuckDB file while another process writes it, before failing. The consumers do not retry: a second consumer waits as a standby instead.' },
  { name: 'LOG_LEVEL', kind: 'choice', values: ['error', 'warn', 'info', 'debug'], default: 'info', section: 'general', active: true, usedBy: 'all',
    doc: 'Log level: error, warn, info or debug (debug also prints the stack of a failure).' },
  { name: 'LOG_FORMAT', kind: 'choice', values: ['json', 'plain'], defaultDoc: 'plain on a terminal, json otherwise', example: 'json', section: 'general', usedBy: 'all',
    doc: 'json: one object a line, for log shippers; plain: aligned lines (level, step, duration, counts), what Airflow tasks print.' },

  // ------------------------------------------------------------------ batch
  { name: 'DUCKDB_MEMORY_LIMIT', kind: 'size', derive: (get) => (get('BATCH_MODE') === 'elt' ? '128MB' : '512MB'),
    defaultDoc: '128MB with BATCH_MODE=elt, 512MB otherwise', example: '512MB', section: 'batch', usedBy: 'jobs',
    doc: "A job's scratch DuckDB memory before it spills to disk. ELT runs no checks or joins there (only staging and the Parquet export), so its smaller default keeps the container's peak RSS flat from 1M to 3M orders (docs/benchmarks.md)." },
  { name: 'MAX_RECORD_BYTES', kind: 'int', min: 1024, default: '1048576', section: 'batch', usedBy: 'jobs',
    doc: 'Longest source record (line) in bytes, at least 1024; a longer one is quarantined with its line number and a PII-safe excerpt (docs/batch.md).' },
  { name: 'MAX_QUARANTINE_SHARE', kind: 'share', section: 'batch', defaultDoc: '(none: no ceiling)', example: '0.2', usedBy: 'jobs',
    doc: 'Opt-in ceiling on the quarantined share of a source file\'s data rows (0 to 1): above it the job fails (exit 2) and the previous table is kept (docs/batch.md).' },
  { name: 'BATCH_PATH', kind: 'choice', values: ['bulk', 'exact'], default: 'bulk', section: 'batch', usedBy: 'jobs',
    doc: 'How jobs stage a source file: bulk (DuckDB reads it, rules compiled to SQL, flagged rows re-checked by csv-parse + ajv) or exact (every row through csv-parse + ajv); same results (docs/batch.md).' },

  { name: 'BATCH_MODE', kind: 'choice', values: ['etl', 'elt'], derive: (get) => (get('WAREHOUSE') === 'bigquery' ? 'elt' : 'etl'),
    defaultDoc: 'elt with WAREHOUSE=bigquery, etl otherwise', example: 'etl', section: 'batch', usedBy: 'jobs',
    doc: 'etl: a job transforms in its own scratch DuckDB and uploads the finished table; elt (BigQuery only): it uploads the validated sources as Parquet and the checks and transform run in BigQuery (docs/production.md, "ETL or ELT"). elt with WAREHOUSE=duckdb is refused.' },

  // ------------------------------------------------------------------ bigquery
  { name: 'GCP_PROJECT_ID', kind: 'text', section: 'bigquery', active: true, defaultDoc: '(none)', usedBy: 'BigQuery, dbt',
    doc: 'Google Cloud project that holds the dataset; required with WAREHOUSE=bigquery.' },
  { name: 'BIGQUERY_DATASET', kind: 'text', section: 'bigquery', defaultDoc: "the catalog's, `store`", example: 'store', usedBy: 'BigQuery, dbt',
    doc: 'Dataset of every table.' },
  { name: 'BIGQUERY_LOCATION', kind: 'text', default: 'US', section: 'bigquery', active: true, usedBy: 'BigQuery, dbt',
    doc: 'Location of the dataset and its jobs (US, EU, europe-west1, ...).' },
  { name: 'GOOGLE_APPLICATION_CREDENTIALS', kind: 'path', section: 'bigquery', active: true, defaultDoc: '(none: Application Default Credentials)', usedBy: 'BigQuery, dbt, DAGs, compose',
    doc: 'Service-account key file (JSON), under ./secrets/ (git- and docker-ignored) with a path relative to the project folder so compose and the DAGs can mount it. Empty: Application Default Credentials.' },
  { name: 'BIGQUERY_MAX_RETRIES', kind: 'int', default: '5', section: 'bigquery', active: true, usedBy: 'BigQuery',
    doc: 'Retries of a transient BigQuery error (5xx, rateLimitExceeded, backendError) with backoff.' },

  // ------------------------------------------------------------------ stream
  { name: 'BOOTSTRAP_SERVER', kind: 'list', default: 'localhost:9092', example: 'localhost:29092', section: 'stream', active: true, usedBy: 'stream, `npm start`',
    doc: 'Kafka bootstrap servers (comma-separated) as seen from the host. The example is the compose broker (KAFKA_HOST_PORT); the local broker of `npm run kafka:start` is localhost:<KAFKA_PORT>.' },
  { name: 'TOPIC_NAME', kind: 'text', default: 'store', section: 'stream', active: true, usedBy: 'stream',
    doc: 'Topic prefix: <TOPIC_NAME>_<source>, <TOPIC_NAME>_dead_letter, <TOPIC_NAME>_vendor_availability.' },
  { name: 'TOPIC_GROUP', kind: 'text', default: 'store-etl', section: 'stream', active: true, usedBy: 'stream',
    doc: 'Consumer group of the stream consumers.' },
  { name: 'STREAM_PARTITIONS', kind: 'int', min: 1, default: '3', section: 'stream', active: true, usedBy: 'stream, compose',
    doc: 'Partitions of the topics the stream layer (and the compose broker) creates.' },
  { name: 'STREAM_SESSION_TIMEOUT_MS', kind: 'int', min: 6000, default: '10000', section: 'stream', usedBy: 'stream',
    doc: "Consumer session timeout in ms (at least 6000): a killed consumer's partitions move after it." },
  { name: 'STREAM_MAX_BATCH_BYTES', kind: 'int', min: 1024, default: '262144', section: 'stream', usedBy: 'stream',
    doc: 'Largest fetch per partition in bytes (a fetch takes four partitions\' worth): the bound of one micro-batch. Larger fetches take longer to decode in one go, and a finished commit waits for that (docs/benchmarks.md).' },
  { name: 'STREAM_COMMIT_MAX_EVENTS', kind: 'int', min: 1, default: '100000', section: 'stream', usedBy: 'stream',
    doc: 'Most events in one warehouse commit (a larger fetch is split; halved for the next commits after one longer than a fifth of the session timeout).' },
  { name: 'STREAM_DUCKDB_THREADS', kind: 'int', min: 1, derive: coresButOne, defaultDoc: 'cores - 1 (at least 1)', section: 'stream', usedBy: 'stream',
    doc: "DuckDB's threads in the stream consumer: a commit gains nothing from a second thread, and the consumer's JavaScript thread needs a core (docs/benchmarks.md)." },
  { name: 'STREAM_AVAILABILITY_STEP_ROWS', kind: 'int', min: 1, default: '2000', section: 'stream', usedBy: 'stream',
    doc: 'Most availability rows recomputed in one transaction (a large sold-out burst spans several).' },
  { name: 'STREAM_BROKER_WAIT_MS', kind: 'int', default: '0', section: 'stream', usedBy: 'stream',
    doc: 'How long a consumer started before the broker waits for it, with backoff up to 30 s (0 = for ever).' },
  { name: 'STREAM_DUCKDB_PATH', kind: 'path', derive: under('ETL_STATE_DIR', 'stream.duckdb'), defaultDoc: '$ETL_STATE_DIR/stream.duckdb', example: '.state/stream.duckdb',
    section: 'stream', usedBy: 'stream, dbt',
    doc: "The stream layer's own DuckDB file, held open by one consumer process from start to stop (a second waits as a standby)." },
  { name: 'STREAM_SNAPSHOT_PATH', kind: 'path', derive: under('ETL_STATE_DIR', 'stream-snapshot.duckdb'), defaultDoc: '$ETL_STATE_DIR/stream-snapshot.duckdb',
    example: '.state/stream-snapshot.duckdb', section: 'stream', usedBy: 'stream, dbt',
    doc: 'Read-only copy of the stream file that dbt attaches as `stream`, replaced atomically.' },
  { name: 'STREAM_SNAPSHOT_INTERVAL_MS', kind: 'int', min: 100, default: '10000', section: 'stream', usedBy: 'stream',
    doc: 'How often the consumer republishes the snapshot when something changed, and checks the batch file for a dim_products reload.' },
  { name: 'STREAM_SNAPSHOT_WAIT_S', kind: 'int', default: '60', section: 'stream', usedBy: 'dbt',
    doc: 'How long dbt waits for a fresh snapshot from the running consumer before reading the previous one.' },
  { name: 'KAFKAJS_LOG_LEVEL', kind: 'choice', values: ['error', 'warn', 'info', 'debug'], default: 'warn', section: 'stream', usedBy: 'stream',
    doc: 'kafkajs client log level: error, warn, info or debug.' },
  { name: 'STREAM_SECURITY_PROTOCOL', kind: 'choice', values: ['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'], default: 'plaintext', section: 'stream',
    usedBy: 'stream (producer, consumer, admin)',
    doc: "How the Kafka clients connect, as Kafka names it: plaintext (the local and compose brokers), ssl (TLS), sasl_plaintext, or sasl_ssl (a managed Kafka: TLS and a login; docs/stream.md)." },
  { name: 'STREAM_SSL_CA_FILE', kind: 'path', section: 'stream', defaultDoc: "(none: the system's CAs)", example: 'secrets/kafka-ca.pem', usedBy: 'stream',
    doc: "PEM file of the CA(s) the broker's TLS certificate is checked against (ssl, sasl_ssl)." },
  { name: 'STREAM_SSL_CERT_FILE', kind: 'path', section: 'stream', defaultDoc: '(none)', example: 'secrets/kafka-client.pem', usedBy: 'stream',
    doc: 'PEM client certificate, for a broker that asks for one (mutual TLS); with STREAM_SSL_KEY_FILE.' },
  { name: 'STREAM_SSL_KEY_FILE', kind: 'path', section: 'stream', defaultDoc: '(none)', example: 'secrets/kafka-client.key', usedBy: 'stream',
    doc: 'PEM private key of STREAM_SSL_CERT_FILE.' },
  { name: 'STREAM_SASL_MECHANISM', kind: 'choice', values: ['plain', 'scram-sha-256', 'scram-sha-512'], default: 'scram-sha-512', section: 'stream', usedBy: 'stream, `scripts/kafka/`',
    doc: 'SASL mechanism of the login (sasl_plaintext, sasl_ssl): plain (send it over TLS only), scram-sha-256 or scram-sha-512.' },
  { name: 'STREAM_SASL_USERNAME', kind: 'text', section: 'stream', defaultDoc: '(none)', example: 'store-etl', usedBy: 'stream, `scripts/kafka/`',
    doc: 'SASL user of the Kafka clients; required with sasl_*. The local broker with KAFKA_SASL_SSL=1 creates it as its SCRAM user.' },
  { name: 'STREAM_SASL_PASSWORD', kind: 'text', secret: true, section: 'stream', defaultDoc: '(none)', usedBy: 'stream, `scripts/kafka/`',
    doc: 'Password of STREAM_SASL_USERNAME; required with sasl_*. A wrong one fails at once with one line, never retried.' },
  { name: 'PRODUCER_RATE', kind: 'int', default: '20', section: 'stream', active: true, usedBy: 'compose',
    doc: 'Events per second of the compose `producer` service (docker compose --profile replay run --rm producer).' },
  { name: 'KAFKA_HOST_PORT', kind: 'int', default: '29092', section: 'stream', active: true, usedBy: 'compose',
    doc: 'Host port of the compose Kafka broker (advertised as localhost:<port>); keep BOOTSTRAP_SERVER on the same port.' },

  // ------------------------------------------------------------------ kafka (local broker)
  { name: 'KAFKA_PORT', kind: 'int', default: '9092', section: 'kafka', usedBy: '`scripts/kafka/`',
    doc: 'Client port of the local broker (started by `npm start` when needed).' },
  { name: 'KAFKA_CONTROLLER_PORT', kind: 'int', default: '9093', section: 'kafka', usedBy: '`scripts/kafka/`',
    doc: 'Controller port of the local broker.' },
  { name: 'KAFKA_HEAP_OPTS', kind: 'text', default: '-Xms128m -Xmx512m', section: 'kafka', usedBy: '`scripts/kafka/`',
    doc: 'JVM heap of the local broker.' },
  { name: 'KAFKA_START_TIMEOUT', kind: 'int', default: '90', section: 'kafka', usedBy: '`scripts/kafka/`',
    doc: 'Seconds to wait for the local broker to start.' },
  { name: 'KAFKA_STOP_TIMEOUT', kind: 'int', default: '30', section: 'kafka', usedBy: '`scripts/kafka/`',
    doc: 'Seconds the local broker gets to stop (SIGTERM) before SIGKILL.' },
  { name: 'KAFKA_SASL_SSL', kind: 'flag', default: '0', section: 'kafka', usedBy: '`scripts/kafka/`',
    doc: '1: the local broker also listens for SASL_SSL on KAFKA_SASL_SSL_PORT (SCRAM-SHA-256/512 user STREAM_SASL_USERNAME, TLS from KAFKA_TLS_DIR); its PLAINTEXT port stays, on localhost only.' },
  { name: 'KAFKA_SASL_SSL_PORT', kind: 'int', default: '9094', section: 'kafka', usedBy: '`scripts/kafka/`',
    doc: 'SASL_SSL port of the local broker (KAFKA_SASL_SSL=1).' },
  { name: 'KAFKA_TLS_DIR', kind: 'path', derive: under('KAFKA_STATE_DIR', 'tls'), defaultDoc: '$KAFKA_STATE_DIR/tls', example: '.state/kafka/tls', section: 'kafka',
    usedBy: '`scripts/kafka/`', doc: 'TLS files of the SASL_SSL listener: broker.pem (key and chain) and ca.pem, made by `bash scripts/kafka/make-tls.sh <dir>` (a CA of its own).' },
  { name: 'ZETASQL_STATE_DIR', kind: 'path', derive: under('ETL_STATE_DIR', 'zetasql'), defaultDoc: '$ETL_STATE_DIR/zetasql', example: '.state/zetasql',
    section: 'kafka', usedBy: '`scripts/setup-zetasql.sh`, tests/bigquery',
    doc: 'Jars and classes of the executing BigQuery double used by the tests (tools/zetasql-double).' },
  { name: 'KAFKA_STATE_DIR', kind: 'path', derive: under('ETL_STATE_DIR', 'kafka'), defaultDoc: '$ETL_STATE_DIR/kafka', example: '.state/kafka',
    section: 'kafka', usedBy: '`scripts/kafka/`, `npm start`',
    doc: 'Jars, data, logs and pid file of the local broker.' },

  // ------------------------------------------------------------------ dbt
  { name: 'DBT_TARGET', kind: 'choice', values: ['duckdb', 'bigquery'], default: 'duckdb', section: 'dbt', usedBy: 'dbt',
    doc: 'dbt target: duckdb or bigquery (set it with WAREHOUSE=bigquery; docker compose follows WAREHOUSE unless it is set).' },
  { name: 'DBT_THREADS', kind: 'int', min: 1, default: '2', section: 'dbt', usedBy: 'dbt',
    doc: 'Threads of dbt build.' },
  { name: 'DBT_PROFILES_DIR', kind: 'path', derive: under('ETL_STATE_DIR', 'dbt'), defaultDoc: '$ETL_STATE_DIR/dbt', example: '.state/dbt', section: 'dbt', usedBy: 'dbt',
    doc: 'Where the generated profiles.yml goes.' },
  { name: 'DBT_LOG_PATH', kind: 'path', default: 'dbt_project/logs', section: 'dbt', usedBy: 'dbt',
    doc: "dbt's log folder." },
  { name: 'DBT_TARGET_PATH', kind: 'path', default: 'dbt_project/target', section: 'dbt', usedBy: 'dbt',
    doc: "dbt's target folder (compiled SQL, run results, the docs site)." },
  { name: 'DBT_DOCS', kind: 'flag', default: '1', section: 'dbt', usedBy: 'dbt',
    doc: '0: no `dbt docs generate` after a build.' },
  { name: 'DBT_USE_COLORS', kind: 'text', defaultDoc: 'off when not on a terminal', example: 'false', section: 'dbt', usedBy: 'dbt',
    doc: 'Colored dbt output (true/false).' },
  { name: 'DBT_LOCK_RETRIES', kind: 'int', default: '5', section: 'dbt', usedBy: 'dbt',
    doc: 'Retries of dbt while another process holds the DuckDB warehouse.' },
  { name: 'DBT_PYTHON', kind: 'text', defaultDoc: '`python3.11`, else `python3`', example: 'python3', section: 'dbt', usedBy: '`npm run setup:dbt`',
    doc: 'Python interpreter of the dbt install.' },
  { name: 'DBT_VENV', kind: 'path', default: '.venv-dbt', section: 'dbt', usedBy: '`npm run setup:dbt`, dbt',
    doc: 'Virtualenv of the dbt install.' },
  { name: 'DBT_SEND_ANONYMOUS_USAGE_STATS', kind: 'text', defaultDoc: "dbt's (`false` in the dbt image)", example: 'false', section: 'dbt', usedBy: 'dbt',
    doc: "dbt's own switch: anonymous usage statistics." },
  { name: 'DBT_VERSION_CHECK', kind: 'text', defaultDoc: "dbt's (`false` in the dbt image)", example: 'false', section: 'dbt', usedBy: 'dbt',
    doc: "dbt's own switch: version check." },

  // ------------------------------------------------------------------ compose
  { name: 'AIRFLOW_IMAGE_NAME', kind: 'text', default: 'apache/airflow:3.3.2', section: 'compose', active: true, usedBy: 'compose',
    doc: 'Airflow image of the compose stack (the official image includes the docker provider).' },
  { name: 'AIRFLOW_UID', kind: 'int', default: '50000', section: 'compose', active: true, usedBy: 'compose',
    doc: 'User id the Airflow containers run as (on Linux `id -u`, so logs and files are yours).' },
  { name: 'DOCKER_SOCKET', kind: 'path', default: '/var/run/docker.sock', section: 'compose', usedBy: 'compose, smoke test',
    doc: "The container engine's API socket on the host; mounted only into `socket-proxy`, which serves the scheduler an allow-listed copy of it (docs/security.md). Podman: /run/podman/podman.sock (readable by group DOCKER_GID); the smoke test starts its own at /run/<project>/docker.sock." },
  { name: 'DOCKER_GID', kind: 'text', section: 'compose', active: true, defaultDoc: '(none: `npm run secrets` fills it)', usedBy: 'compose',
    doc: 'Group id of DOCKER_SOCKET (`stat -c %g`), joined by the scheduler so it can start job containers; required by compose.' },
  { name: 'AIRFLOW_BIND', kind: 'text', default: '127.0.0.1', section: 'compose', usedBy: 'compose',
    doc: "Host address Airflow's port is published on; open it (e.g. 0.0.0.0) only behind TLS with a real auth manager (docs/security.md)." },
  { name: 'AIRFLOW_PORT', kind: 'int', default: '8080', section: 'compose', active: true, usedBy: 'compose, `npm run airflow`, tests',
    doc: 'Port of the Airflow UI/API (http://localhost:8080).' },
  { name: 'AIRFLOW_ADMIN_USER', kind: 'text', default: 'admin', section: 'compose', active: true, usedBy: 'Airflow',
    doc: 'Login of the Airflow UI (simple auth manager, role admin).' },
  { name: 'AIRFLOW_ADMIN_PASSWORD', kind: 'text', secret: true, section: 'compose', active: true, defaultDoc: 'generated: by `npm run secrets` (compose); on first start, kept 0600 in `$AIRFLOW_HOME/admin_password` (`npm run airflow`)', usedBy: 'Airflow',
    doc: 'Password of the Airflow UI admin; never passed on a command line.' },
  { name: 'POSTGRES_USER', kind: 'text', default: 'airflow', section: 'compose', active: true, usedBy: 'compose',
    doc: "User of Airflow's metadata database (the compose `postgres` service)." },
  { name: 'POSTGRES_PASSWORD', kind: 'text', secret: true, section: 'compose', active: true, defaultDoc: 'generated', usedBy: 'compose',
    doc: "Password of Airflow's metadata database (`npm run secrets` generates it)." },
  { name: 'POSTGRES_DB', kind: 'text', default: 'airflow', section: 'compose', active: true, usedBy: 'compose',
    doc: "Name of Airflow's metadata database." },
  { name: 'AIRFLOW__CORE__FERNET_KEY', kind: 'text', secret: true, section: 'compose', active: true, defaultDoc: 'generated', usedBy: 'compose',
    doc: 'Encrypts connections and variables in the metadata DB (a Fernet key; `npm run secrets` generates it).' },
  { name: 'AIRFLOW__API__SECRET_KEY', kind: 'text', secret: true, section: 'compose', active: true, defaultDoc: 'generated', usedBy: 'Airflow',
    doc: "Signs the API server's sessions (`npm run secrets` generates it)." },
  { name: 'AIRFLOW__API_AUTH__JWT_SECRET', kind: 'text', secret: true, section: 'compose', active: true, defaultDoc: 'generated', usedBy: 'Airflow',
    doc: 'Signs the tokens api-server, scheduler and task runners exchange; the same in all (`npm run secrets` generates it).' },
  { name: 'ETL_HOST_PROJECT_DIR', kind: 'path', section: 'compose', active: true, defaultDoc: 'the folder above `dags/`', usedBy: 'DAGs (docker runner), compose',
    doc: 'Absolute path of this project folder ON THE DOCKER HOST: the DAGs bind-mount data_source/ and .state/ from it into the job containers. Required by compose; `npm run secrets` fills it.' },
  { name: 'ETL_RUNNER', kind: 'choice', values: ['docker', 'local'], default: 'docker', section: 'compose', usedBy: 'DAGs, `npm run airflow`',
    doc: 'How the DAGs run a job: docker (the job image through the Docker API) or local (`node dist/jobs/<table>.js`). The compose stack always uses docker.' },
  { name: 'DOCKER_URL', kind: 'text', defaultDoc: "`DOCKER_HOST` or Docker's default socket", example: 'unix:///var/run/docker.sock', section: 'compose', usedBy: 'DAGs',
    doc: 'Docker API the DAGs talk to. Podman: unix:///run/podman/podman.sock.' },
  { name: 'DOCKER_NETWORK', kind: 'text', defaultDoc: "the engine's default", example: 'store-etl', section: 'compose', usedBy: 'DAGs',
    doc: 'Docker network of the job containers (host, or a compose network).' },
  { name: 'ETL_COMPOSE_NETWORK', kind: 'text', default: 'store-etl', section: 'compose', usedBy: 'compose',
    doc: "Name of the compose stack's network (change it when several stacks share one engine)." },
  { name: 'ETL_CONTAINER_USER', kind: 'text', section: 'compose', active: true, defaultDoc: "the image's user `node` (uid 1000)", usedBy: 'DAGs, compose',
    doc: 'uid:gid the job and stream containers run as; they write .state, so it must own it (`npm run secrets` fills it with the owner of the state or project folder, never root: 50000:50000 in a root-owned checkout).' },
  { name: 'ETL_JOB_MEMORY_LIMIT', kind: 'text', default: '2g', section: 'compose', usedBy: 'DAGs, compose',
    doc: 'Memory limit of each job container (docker notation).' },
  { name: 'ETL_PROJECT_DIR', kind: 'path', defaultDoc: 'the folder above `dags/`', example: '/opt/airflow', section: 'compose', usedBy: 'DAGs',
    doc: "The project folder as Airflow sees it (the local runner's working directory)." },
  { name: 'ETL_WAREHOUSE_POOL', kind: 'text', default: 'duckdb_warehouse', section: 'compose', active: true, usedBy: 'DAGs, `npm run airflow`',
    doc: 'The 1-slot Airflow pool that serializes warehouse writes (DuckDB has one writer).' },

  // ------------------------------------------------------------------ airflow on the host
  { name: 'AIRFLOW_ENV_FILE', kind: 'path', default: '.env', section: 'airflow', usedBy: '`npm run airflow`',
    doc: 'Dotenv file whose KEY=value lines apply where KEY is not set.' },
  { name: 'AIRFLOW_HOME', kind: 'path', derive: under('ETL_STATE_DIR', 'airflow'), defaultDoc: '$ETL_STATE_DIR/airflow', example: '.state/airflow', section: 'airflow',
    usedBy: '`npm run airflow`, `airflow:stop`', doc: 'Config, SQLite DB, logs, generated secrets and pid file of the host Airflow.' },
  { name: 'AIRFLOW_BIND_HOST', kind: 'text', default: '127.0.0.1', section: 'airflow', usedBy: '`npm run airflow`',
    doc: 'Address the API server listens on.' },
  { name: 'AIRFLOW__API__WORKERS', kind: 'int', default: '1', section: 'airflow', usedBy: '`npm run airflow`',
    doc: "Airflow's own setting, overridable: API server workers." },
  { name: 'AIRFLOW__CORE__PARALLELISM', kind: 'int', default: '4', section: 'airflow', usedBy: '`npm run airflow`',
    doc: "Airflow's own setting, overridable: task parallelism." },
  { name: 'AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL', kind: 'int', default: '30', section: 'airflow', usedBy: '`npm run airflow`',
    doc: "Airflow's own setting, overridable: seconds between DAG folder rescans." },
  { name: 'AIRFLOW__DATABASE__SQL_ALCHEMY_CONN', kind: 'text', defaultDoc: 'SQLite in `AIRFLOW_HOME`', example: 'sqlite:////absolute/path/.state/airflow/airflow.db', section: 'airflow',
    usedBy: '`npm run airflow`', doc: "Airflow's own setting, overridable: the metadata database." },
  { name: 'AIRFLOW_PYTHON', kind: 'text', defaultDoc: '`python3.11`, else `python3`', example: 'python3', section: 'airflow', usedBy: '`npm run setup:airflow`',
    doc: 'Python interpreter of the Airflow install.' },
  { name: 'AIRFLOW_VENV', kind: 'path', default: '.venv-airflow', section: 'airflow', usedBy: '`npm run setup:airflow`, `npm run airflow`',
    doc: 'Virtualenv of the Airflow install.' },
  { name: 'AIRFLOW_SETUP_FORCE', kind: 'flag', default: '0', section: 'airflow', usedBy: '`npm run setup:airflow`',
    doc: '1: reinstall the Airflow virtualenv.' },
  { name: 'AIRFLOW_SKIP_SETUP', kind: 'flag', default: '0', section: 'airflow', usedBy: '`npm run airflow`',
    doc: '1: skip the setup step of `npm run airflow`.' },
  { name: 'AIRFLOW_STOP_TIMEOUT', kind: 'int', default: '15', section: 'airflow', usedBy: '`npm run airflow`, `airflow:stop`',
    doc: "Seconds Airflow's processes get after SIGTERM before SIGKILL." },

  // ------------------------------------------------------------------ setup
  { name: 'SETUP_ONLY', kind: 'text', default: 'airflow dbt kafka zetasql podman chromium', section: 'setup', usedBy: '`npm run setup`',
    doc: 'The parts `npm run setup` installs (space-separated).' },
  { name: 'CI', kind: 'text', defaultDoc: 'unset', example: 'true', section: 'setup', usedBy: '`npm run setup`, tests',
    doc: 'true (set by CI): a failed setup part stops setup at once, and suites whose prerequisites are missing fail instead of skipping.' },

  // ------------------------------------------------------------------ podman
  { name: 'CONTAINERS_CONF', kind: 'path', default: 'docker/podman/containers.conf', section: 'podman', usedBy: '`npm run setup:podman`, tests',
    doc: 'podman settings file.' },
  { name: 'PODMAN_SOCKET', kind: 'path', default: '/run/podman/podman.sock', section: 'podman', usedBy: '`npm run setup:podman`, tests',
    doc: "podman's Docker API socket." },
  { name: 'ETL_BASE_IMAGE', kind: 'text', default: 'docker.io/library/node:20-bookworm-slim', section: 'podman', usedBy: '`npm run setup:podman`',
    doc: 'Name of the locally built base image.' },
  { name: 'DEBIAN_MIRROR', kind: 'text', default: 'http://deb.debian.org/debian', section: 'podman', usedBy: '`npm run setup:podman`',
    doc: 'Mirror for debootstrap.' },

  // ------------------------------------------------------------------ smoke test
  { name: 'COMPOSE_PROJECT_NAME', kind: 'text', defaultDoc: '`store-etl-smoke` in the smoke test', example: 'store-etl-smoke', section: 'smoke', usedBy: 'smoke test',
    doc: "The smoke stack's compose project (its containers, volumes, network); its ports default to 18080 (AIRFLOW_PORT) and 19092 (KAFKA_HOST_PORT) there." },
  { name: 'COMPOSE_SMOKE_KEEP', kind: 'flag', default: '0', section: 'smoke', usedBy: 'smoke test',
    doc: '1 leaves the smoke stack running at the end (then `docker compose down -v` it).' },

  // ------------------------------------------------------------------ internal
  { name: 'ETL_TABLE', kind: 'text', defaultDoc: 'set by `docker/job.Dockerfile`', example: 'fact_orders', section: 'internal', usedBy: 'job image',
    doc: 'The batch table of a job image (from its TABLE build-arg).' },
  { name: 'ETL_TEST_FAIL_BEFORE_COMMIT', kind: 'flag', default: '0', section: 'internal', usedBy: 'tests only',
    doc: 'Test hook of the atomicity tests, leave unset: 1 fails the batch load before COMMIT.' },
  { name: 'ETL_TEST_PAUSE_BEFORE_COMMIT_MS', kind: 'int', default: '0', section: 'internal', usedBy: 'tests only',
    doc: 'Test hook, leave unset: holds the batch load transaction open this many ms so a test can kill the process.' },
  { name: 'ETL_TEST_STREAM_PAUSE_BEFORE_COMMIT_MS', kind: 'int', default: '0', section: 'internal', usedBy: 'tests only',
    doc: 'Test hook, leave unset: holds the stream transaction open this many ms so a test can kill the process.' },
  { name: 'ETL_TEST_STREAM_HOLD_FILE', kind: 'path', defaultDoc: 'unset', section: 'internal', usedBy: 'tests only',
    doc: 'Test hook, leave unset: while this file exists the stream consumer holds before each group commit (and writes `<file>.held` while it waits), so a test can act at that point and release it by deleting the file.' },
  { name: 'ETL_TEST_HOLD_FILE', kind: 'path', defaultDoc: 'unset', section: 'internal', usedBy: 'tests only',
    doc: 'Test hook, leave unset: while this file exists an ELT batch job holds at ETL_TEST_HOLD_AT_PHASE (and writes `<file>.held` with its pid while it waits), so a test can kill it there.' },
  { name: 'ETL_TEST_HOLD_AT_PHASE', kind: 'choice', values: [...ELT_HOLD_PHASES], defaultDoc: 'unset', section: 'internal', usedBy: 'tests only',
    doc: 'Test hook, leave unset: where ETL_TEST_HOLD_FILE holds an ELT batch job: in upload, checks or transform (once BigQuery saw part of it), before the commit script (commit), or after it and before the staging tables are dropped (committed).' },
  { name: 'REFERENCE_DATA_DIR', kind: 'path', default: '../shared/reference-data/alibaba-sample', section: 'internal', usedBy: 'tests',
    doc: "The store's real export for the conformance suite (tests/conformance; skipped when absent)." },
  { name: 'CHROMIUM_PATH', kind: 'path', default: '/usr/bin/chromium', section: 'internal', usedBy: 'tests',
    doc: 'Chromium of the Airflow UI test (tests/airflow/ui.browser.test.ts).' },
];

/** The declaration of `name`; throws for a name the spec does not declare (a typo in the code). */
export function settingOf(name: string): Setting {
  const s = SPEC.find((x) => x.name === name);
  if (!s) throw new Error(`${name} is not declared in jobs/lib/config/spec.ts`);
  return s;
}
