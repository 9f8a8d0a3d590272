"""The run launcher's task message, as the worker receives it from a real Redis."""

import json

from dagster import DagsterInstance
from dagster_celery.config import TASK_EXECUTE_JOB_NAME

from carinho_pipelines.events.jobs import EVENT_JOBS
from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.queues import HIGH, LOW, QUEUES
from carinho_pipelines.platform.launcher import FallbackCeleryRunLauncher


def _sent(launcher, instance, run_tags, queue):
    """Send a run's task through the launcher; the message's headers as stored in Redis."""
    run = instance.create_run_for_job(EVENT_JOBS["lead.created"], tags={**run_tags, tags.CELERY_QUEUE: queue})
    signature = launcher.celery.signature(TASK_EXECUTE_JOB_NAME, kwargs={"execute_job_args_packed": {}})
    launcher._launch_celery_task_run(run, signature, queue)
    return run


def test_an_event_run_carries_its_queues_hard_time_limit_and_a_sync_none(redis_broker):
    url, client = redis_broker
    with DagsterInstance.ephemeral() as instance:
        launcher = FallbackCeleryRunLauncher(broker=url, backend=url, default_queue="integrations")
        launcher.register_instance(instance)
        event_run = _sent(launcher, instance, {tags.EVENT_ID: "7", tags.QUEUE: HIGH}, HIGH)
        sync_run = _sent(launcher, instance, {tags.EVENT_ID: "8", tags.SYNC: "operacao_financeiro", tags.QUEUE: LOW}, LOW)
        limits = {}
        for key in client.keys("*"):
            if client.type(key) == b"list":
                for raw in client.lrange(key, 0, -1):
                    message = json.loads(raw)
                    limits[message["headers"]["id"]] = message["headers"]["timelimit"]
        assert limits[instance.get_run_by_id(event_run.run_id).tags["dagster-celery/task_id"]] == [
            QUEUES[HIGH].event_run_time_limit_seconds, None]
        assert limits[instance.get_run_by_id(sync_run.run_id).tags["dagster-celery/task_id"]] == [None, None]
