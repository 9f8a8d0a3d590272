"""Threshold crossings and recoveries at every level, through a real SMTP server."""

from __future__ import annotations

import datetime as dt

from dagster import build_sensor_context

from carinho_pipelines.kernel import tags
from carinho_pipelines.monitoring import alerts
from carinho_pipelines.monitoring.alert_sensor import check_thresholds, monitoring_alerts_sensor
from carinho_pipelines.store import utcnow

OPERACAO, DEV, GESTAO = "operacao@carinho.com.vc", "dev@carinho.com.vc", "gestao@carinho.com.vc"


def check(mon, now, syncs=()):
    return check_thresholds(mon.store, mon.instance, mon.email, now, sync_names=syncs)


def dlq_mails(mon):
    return [m for m in mon.mails() if "DLQ" in m["subject"]]


def test_dlq_enters_alert_escalates_goes_critical_and_recovers_with_one_mail_each(mon):
    t0 = utcnow()
    runs = [mon.failed_run() for _ in range(11)]
    mon.failed_run(dlq="archived")  # archived items never count (the PHP module's alert never cleared)
    snap, changes = check(mon, t0)
    assert snap.metrics["dlq_open"].value == 11 and snap.metrics["dlq_open"].level == "alert"
    assert [(c.key, c.previous, c.level, c.sent) for c in changes] == [("metric:dlq_open", 0, 1, True)]
    [mail] = dlq_mails(mon)
    assert mail["to"] == [OPERACAO]
    assert "ALERTA nível 1" in mail["subject"] and ": 11" in mail["subject"]
    assert "Ultrapassou o limite de alerta (> 10) em 1 (+10 %)" in mail["text"]
    assert "http://dagster.test:3000/runs?q%5B0%5D=status%3AFAILURE&q%5B1%5D=tag%3Acarinho%2Fdlq%3Dopen" in mail["text"]

    # the level holds: nothing more, however often it is checked
    for minutes in (1, 5, 30):
        assert check(mon, t0 + dt.timedelta(minutes=minutes))[1] == []
    assert len(dlq_mails(mon)) == 1

    # still at alert after an hour: recurrent → level 2, to dev@
    _, changes = check(mon, t0 + dt.timedelta(minutes=61))
    assert [(c.previous, c.level) for c in changes] == [(1, 2)]
    assert dlq_mails(mon)[-1]["to"] == [DEV] and "nível 2" in dlq_mails(mon)[-1]["subject"]

    # over 50: critical → level 3, to gestao@
    runs += [mon.failed_run() for _ in range(40)]
    _, changes = check(mon, t0 + dt.timedelta(minutes=62))
    assert [(c.previous, c.level) for c in changes] == [(2, 3)]
    mail = dlq_mails(mon)[-1]
    assert mail["to"] == [GESTAO] and "CRÍTICO nível 3" in mail["subject"]
    assert "limite crítico (> 50) em 1" in mail["text"]
    assert check(mon, t0 + dt.timedelta(minutes=63))[1] == []

    # people archive the items: recovery, announced once to everyone who was told
    for run_id in runs:
        mon.instance.add_run_tags(run_id, {tags.DLQ: "archived"})
    _, changes = check(mon, t0 + dt.timedelta(minutes=70))
    assert [(c.previous, c.level) for c in changes] == [(3, 0)]
    mail = dlq_mails(mon)[-1]
    assert mail["subject"].startswith("[Carinho] Normalizado: DLQ") and mail["to"] == sorted([OPERACAO, DEV, GESTAO])
    assert check(mon, t0 + dt.timedelta(minutes=71))[1] == []
    assert len(dlq_mails(mon)) == 4


def test_critical_falling_back_to_alert_tells_both_levels(mon, monkeypatch):
    monkeypatch.setenv("CARINHO_ALERT_EMAIL_LEVEL1", "plantao@carinho.com.vc")
    mon.events(501)
    t0 = utcnow()
    _, changes = check(mon, t0)
    assert [(c.key, c.level) for c in changes] == [("metric:events_pending", 3)]
    assert mon.mails()[-1]["to"] == [GESTAO]
    with mon.store.engine.begin() as conn:  # 300 of them get dispatched
        conn.exec_driver_sql("UPDATE events SET run_id = 'r', dispatched_at = now() WHERE id IN "
                             "(SELECT id FROM events ORDER BY id LIMIT 300)")
    _, changes = check(mon, t0 + dt.timedelta(minutes=2))
    assert [(c.previous, c.level) for c in changes] == [(3, 1)]
    mail = mon.mails()[-1]
    assert mail["to"] == sorted(["plantao@carinho.com.vc", GESTAO]) and "Melhorou para nível 1" in mail["subject"]


def test_error_rate_and_queue_sla_from_real_runs(mon):
    # 10 runs on "integrations" received 100 s ago (SLA 30 s), 2 of them fail: 20 % > 15 %
    for i in range(10):
        mon.run_event(mon.event(received_ago=100), fail=i < 2)
    snap, changes = check(mon, utcnow())
    rate = snap.metrics["error_rate"]
    assert rate.value == 20.0 and rate.samples == 10 and rate.level == "critical"
    queue = snap.queues["integrations"]
    assert queue.processing_samples == 8 and queue.samples == 10
    assert 100 <= queue.processing_p50 < 160 and queue.wait_p95 >= 100
    assert queue.level == "critical"  # p95 > 3 × 30 s
    assert snap.queues["integrations-high"].level == "ok" and snap.queues["integrations-high"].processing_p95 is None
    keys = {(c.key, c.level) for c in changes}
    assert keys == {("metric:error_rate", 3), ("queue:integrations", 3)}
    mail = next(m for m in mon.mails() if "Fila integrations" in m["subject"])
    assert mail["to"] == [GESTAO] and "O p95 excede o SLA" in mail["text"]


def test_few_runs_do_not_make_an_error_rate_alert(mon):
    mon.run_event(mon.event(), fail=True)
    snap, changes = check(mon, utcnow())
    assert snap.metrics["error_rate"].value == 100.0 and snap.metrics["error_rate"].level == "ok"
    assert all(c.key != "metric:error_rate" for c in changes)


def test_sync_failure_is_level_1_repeated_failures_level_2_and_success_recovers(mon):
    syncs = ("crm_operacao",)
    t0 = utcnow()
    mon.run_sync("crm_operacao")
    assert check(mon, t0, syncs)[1] == []
    mon.run_sync("crm_operacao", fail=True)
    [change] = check(mon, t0, syncs)[1]
    assert (change.key, change.level, change.recipients) == ("sync:crm_operacao", 1, [OPERACAO])
    mon.run_sync("crm_operacao", fail=True)
    [change] = check(mon, t0, syncs)[1]
    assert (change.level, change.recipients) == (2, [DEV])
    assert "falhou em 2 execuções seguidas" in mon.mails()[-1]["subject"]
    mon.run_sync("crm_operacao")
    [change] = check(mon, t0, syncs)[1]
    assert change.level == 0 and change.recipients == [OPERACAO, DEV]
    assert mon.mails()[-1]["subject"] == "[Carinho] Normalizado: Sync crm_operacao: última execução concluída"


def test_an_alert_not_delivered_is_sent_on_the_next_check(mon, monkeypatch, smtp):
    for _ in range(11):
        mon.failed_run()
    _, port = smtp
    monkeypatch.setenv("SMTP_PORT", str(port + 1 if port < 65535 else port - 1))  # nobody listens there
    [change] = check(mon, utcnow())[1]
    assert not change.sent and change.error.startswith("unavailable")
    assert mon.mails() == [] and alerts.load(mon.store)["metric:dlq_open"].level == 0
    monkeypatch.setenv("SMTP_PORT", str(port))
    [change] = check(mon, utcnow())[1]
    assert change.sent and len(mon.mails()) == 1
    assert check(mon, utcnow())[1] == []


def test_the_sensor_evaluates_with_the_code_locations_resources(mon):
    for _ in range(11):
        mon.failed_run()
    for _ in range(2):
        with build_sensor_context(instance=mon.instance, resources=mon.resources()) as context:
            result = monitoring_alerts_sensor(context)
        assert "status alert" in result.skip_message
    assert [m["to"] for m in mon.mails()] == [[OPERACAO]]
