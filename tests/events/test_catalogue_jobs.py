"""Everything derives from the catalogue: a job per type, an op per action, the edges."""

from carinho_pipelines.kernel.catalogue import CATALOGUE
from carinho_pipelines.events.actions import implementation
from carinho_pipelines.events.jobs import EVENT_JOBS
from carinho_pipelines.kernel.queues import QUEUES


def test_every_event_type_has_a_job_whose_ops_are_its_actions():
    assert set(EVENT_JOBS) == set(CATALOGUE)
    for name, spec in CATALOGUE.items():
        job = EVENT_JOBS[name]
        assert job.name == spec.job_name
        assert {n.name for n in job.graph.nodes} == {a.name for a in spec.actions}
        assert spec.queue in QUEUES
        deps = {
            (inv.name if hasattr(inv, "name") else inv): {d.node for d in inputs.values()}
            for inv, inputs in job.graph.dependencies.items()
        }
        for action in spec.actions:
            assert callable(implementation(action))
            assert deps.get(action.name, set()) == set(action.depends_on)


def test_retry_policy_keeps_the_backoff_well_inside_each_queues_sla():
    from carinho_pipelines.events.retries import MAX_RETRIES, base_delay, wait_seconds

    for name, queue in QUEUES.items():
        worst = sum(wait_seconds(name, n) for n in range(MAX_RETRIES)) * 1.0
        assert worst < queue.sla_seconds / 2, (name, worst)
        assert base_delay(name) > 0
    # Retry-After is honoured, up to a quarter of the SLA
    assert wait_seconds("integrations", 0, retry_after=3) >= 3
    assert wait_seconds("integrations-high", 0, retry_after=60) <= 5 / 4
