"""
The one task every generated DAG runs (dags/*_dag.py, from dag_templates/etl_dag.py.tmpl):
a job as its container image (DockerOperator) or as a local process (BashOperator), chosen by
the env variable ETL_RUNNER. Hand-written, shared by the DAG files so that they stay small;
listed in .airflowignore because it defines no DAG.

  docker (default)  DockerOperator runs the image on the engine at DOCKER_URL, with the source
                    folder and the state (warehouse) folder bind-mounted.
  local             BashOperator runs the same job CLI in the project folder, for machines
                    without a container engine.
Warehouse writes go through the Airflow pool ETL_WAREHOUSE_POOL (default `duckdb_warehouse`,
1 slot) because DuckDB allows one writer at a time.

Job containers (docs/security.md): never pulled (a missing image fails the task at once), run
without capabilities, with no-new-privileges, a read-only root (tmpfs /tmp), memory and pids
limits, as the image's non-root user; labelled with their task and state folder, so that the
container a dead worker left behind is removed when the next try starts.
"""

from __future__ import annotations

import os
import shlex
from functools import cached_property
from pathlib import Path

from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk import BaseOperator
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.providers.standard.operators.bash import BashOperator
from docker.errors import ImageNotFound
from docker.types import Mount

# Every setting through the module make-dags generates from jobs/lib/config/spec.ts: its
# defaults are the spec's, and an empty value counts as unset, as everywhere in the project.
from etl_settings import setting

RUNNER = setting("ETL_RUNNER").strip().lower()
POOL = setting("ETL_WAREHOUSE_POOL")
# The project folder (dist/, data_source/, .state/); this file lives in its dags/ folder.
PROJECT_DIR = Path(setting("ETL_PROJECT_DIR") or Path(__file__).resolve().parent.parent)
# The same folder as the container engine's host sees it (differs if Airflow runs in a container).
HOST_PROJECT_DIR = Path(setting("ETL_HOST_PROJECT_DIR") or PROJECT_DIR)
# Settings passed through to the job container as they are (paths are mapped, see below).
PASS_ENV = [
    "WAREHOUSE", "LOG_LEVEL", "DUCKDB_LOCK_RETRIES", "DUCKDB_MEMORY_LIMIT",
    "MAX_RECORD_BYTES", "BATCH_PATH",
    "DBT_TARGET", "DBT_THREADS", "DBT_DOCS", "DBT_LOCK_RETRIES",
]
PASS_ENV_PREFIXES = ("BQ_", "BIGQUERY_", "GCP_", "GOOGLE_CLOUD_")
# Set for every job, whatever the runner: plain aligned lines read best in the Airflow task log.
TASK_ENV = {"LOG_FORMAT": "plain"}
# Labels of the job containers: the task (dag.task) and the host state folder (one deployment).
TASK_LABEL = "store-etl.task"
STATE_LABEL = "store-etl.state"
# The job containers' memory limit (docker's notation: 2g, 512m); DuckDB's own limit
# (DUCKDB_MEMORY_LIMIT: 512MB, 128MB with BATCH_MODE=elt, by default) plus Node must fit in it.
JOB_MEMORY_LIMIT = setting("ETL_JOB_MEMORY_LIMIT")
# Host-config settings every job container gets on top of what DockerOperator passes (it has no
# parameters for them). The jobs write only the mounted state folder and temporary files.
JOB_HARDENING = {
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "read_only": True,
    "tmpfs": {"/tmp": "rw,nosuid,nodev,size=256m"},
    "pids_limit": 256,
}


def host_path(value: str) -> str:
    """A path from the environment, relative ones taken from the project folder on the host."""
    path = Path(value)
    return str(path if path.is_absolute() else HOST_PROJECT_DIR / path)


class JobContainerOperator(DockerOperator):
    """DockerOperator for the job images: hardened, never pulls, cleans up after a dead worker."""

    @cached_property
    def cli(self):
        client = self.hook.api_client
        plain = client.create_host_config

        def hardened(*args, **kwargs):
            return plain(*args, **{**kwargs, **JOB_HARDENING})

        client.create_host_config = hardened
        return client

    def execute(self, context):
        try:
            self.cli.inspect_image(self.image)
        except ImageNotFound:
            # DockerOperator would pull it (from a public registry, with the state folder and the
            # key mounted into whatever it got): a missing image is a deployment error instead.
            raise AirflowFailException(
                f"image {self.image} is not on the container engine: build it "
                f"(docker compose build, or docker/*.Dockerfile); job images are never pulled"
            ) from None
        self.labels = {TASK_LABEL: f"{self.dag_id}.{self.task_id}", STATE_LABEL: self.state_dir}
        self.remove_leftovers()
        return super().execute(context)

    @property
    def state_dir(self) -> str:
        return next(m["Source"] for m in self.mounts if m["Target"] == "/data/state")

    def remove_leftovers(self) -> None:
        """Containers of this task from earlier tries (their worker died before removing them)."""
        filters = {"label": [f"{k}={v}" for k, v in self.labels.items()]}
        for c in self.cli.containers(all=True, filters=filters):
            self.log.warning("removing job container %s left by an earlier try (%s)", c["Id"][:12], c.get("Status", "?"))
            self.cli.remove_container(c["Id"], force=True)


def docker_task(task_id: str, image: str) -> DockerOperator:
    source_dir = host_path(setting("ETL_SOURCE_DIR"))
    state_dir = host_path(setting("ETL_STATE_DIR"))
    mounts = [
        Mount(target="/data/source", source=source_dir, type="bind", read_only=True),
        Mount(target="/data/state", source=state_dir, type="bind"),
    ]
    environment = {**TASK_ENV, "ETL_SOURCE_DIR": "/data/source", "ETL_STATE_DIR": "/data/state"}
    if setting("DUCKDB_PATH"):
        duckdb_path = Path(host_path(setting("DUCKDB_PATH")))
        mounts.append(Mount(target="/data/warehouse", source=str(duckdb_path.parent), type="bind"))
        environment["DUCKDB_PATH"] = f"/data/warehouse/{duckdb_path.name}"
    private_environment = {
        name: value
        for name, value in os.environ.items()
        if name in PASS_ENV or name.startswith(PASS_ENV_PREFIXES)
    }
    if setting("GOOGLE_APPLICATION_CREDENTIALS"):
        credentials = host_path(setting("GOOGLE_APPLICATION_CREDENTIALS"))
        mounts.append(Mount(target="/secrets/gcp.json", source=credentials, type="bind", read_only=True))
        private_environment["GOOGLE_APPLICATION_CREDENTIALS"] = "/secrets/gcp.json"
    return JobContainerOperator(
        task_id=task_id,
        image=image,
        docker_url=setting("DOCKER_URL"),  # None: DOCKER_HOST or the default socket
        network_mode=setting("DOCKER_NETWORK"),
        user=setting("ETL_CONTAINER_USER"),  # None: the image's non-root user
        mounts=mounts,
        mem_limit=JOB_MEMORY_LIMIT,
        environment=environment,
        private_environment=private_environment,
        mount_tmp_dir=False,
        auto_remove="success",
        pool=POOL,
    )


def local_task(task_id: str, command: list[str]) -> BashOperator:
    return BashOperator(
        task_id=task_id,
        # The trailing space keeps Airflow from reading a command ending in ".sh" as a template file.
        bash_command=shlex.join(command) + " ",
        cwd=str(PROJECT_DIR),
        env=TASK_ENV,
        append_env=True,
        pool=POOL,
    )


def etl_task(task_id: str, image: str, local_command: list[str]) -> BaseOperator:
    """The job's task in the runner ETL_RUNNER selects (read when the DAG file is parsed)."""
    if RUNNER == "docker":
        return docker_task(task_id, image)
    if RUNNER == "local":
        return local_task(task_id, local_command)
    raise ValueError(f"ETL_RUNNER must be 'docker' or 'local', got {RUNNER!r}")
