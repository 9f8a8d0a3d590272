"""The monitoring part of the code location (merged into ``carinho_pipelines.definitions``).

No resources here: the code location provides ``event_store``, ``zapi`` and ``email``.
"""

from dagster import Definitions

from .alert_sensor import monitoring_alerts_sensor
from .checklist import daily_checklist, daily_checklist_email, daily_checklist_job, daily_checklist_schedule
from .retention import retention_job, retention_schedule
from .whatsapp_health import whatsapp_health_sensor, whatsapp_instance

defs = Definitions(
    assets=[whatsapp_instance, daily_checklist, daily_checklist_email],
    jobs=[daily_checklist_job, retention_job],
    schedules=[daily_checklist_schedule, retention_schedule],
    sensors=[whatsapp_health_sensor, monitoring_alerts_sensor],
)
