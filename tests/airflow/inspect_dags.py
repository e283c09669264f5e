"""Loads dags/ through Airflow's own DagBag and prints what the tests assert, as JSON."""

import json
import sys

from airflow.dag_processing.dagbag import DagBag

# Airflow's parsing processes put the DAG folder (bundle) on sys.path, so DAG files can import
# dags/etl_task.py; a bare DagBag does not, so do the same here.
sys.path.insert(0, sys.argv[1])
bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in sorted(bag.dags.items()):
    tasks = []
    for task in dag.tasks:
        info = {
            "task_id": task.task_id,
            # Airflow's operator class: dags/etl_task.py subclasses DockerOperator (JobContainerOperator).
            "operator": next(c.__name__ for c in type(task).__mro__ if c.__module__.startswith("airflow.")),
            "pool": task.pool,
            "retries": task.retries,
            "retry_delay_s": task.retry_delay.total_seconds(),
        }
        if info["operator"] == "DockerOperator":
            info.update(
                image=task.image,
                docker_url=task.docker_url,
                network_mode=task.network_mode,
                mounts=[{"target": m["Target"], "source": m["Source"], "ro": m.get("ReadOnly", False)} for m in task.mounts],
                environment=task.environment,
                private_env_names=sorted(task._private_environment),
                auto_remove=task.auto_remove,
                mount_tmp_dir=task.mount_tmp_dir,
            )
        if info["operator"] == "BashOperator":
            info.update(bash_command=task.bash_command, cwd=task.cwd)
        tasks.append(info)
    dags[dag_id] = {
        "schedule": getattr(dag.timetable, "expression", None),
        "timetable": type(dag.timetable).__name__,
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "tags": sorted(dag.tags),
        "tasks": tasks,
    }
print("DAGBAG_JSON:" + json.dumps({"import_errors": {k: v[-600:] for k, v in bag.import_errors.items()}, "dags": dags}))
