"""A small, believable day of data so every sync has work on the first run."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SAO_PAULO = ZoneInfo("America/Sao_Paulo")

#: The lead that already exists in the CRM (a WhatsApp message from it becomes an interaction).
EXISTING_LEAD_PHONE = "5511987650001"
CAMPAIGN_UTM = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "cuidado-idosos"}


def _at(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), SAO_PAULO).isoformat()


def _service(sid: int, client_id: int, day: date, hours: float, rate: float, service_type: str,
             extras: list[dict[str, Any]] | None = None, end_hour: int = 18) -> dict[str, Any]:
    extras = extras or []
    total = round(hours * rate + sum(e["value"] for e in extras), 2)
    return {
        "id": sid, "client_id": client_id, "service_type": service_type, "hours": hours, "hourly_rate": rate,
        "total": total, "extras": extras, "completed_at": _at(day, end_hour), "billed": False,
        "caregiver_id": 300 + sid % 3,
    }


def default_seed(today: date | None = None) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{system: {collection: [record]}}`` for :meth:`Sandbox.seed`; dates relative to ``today``."""
    today = today or datetime.now(SAO_PAULO).date()
    yesterday = today - timedelta(days=1)
    tomorrow = today + timedelta(days=1)
    return {
        "crm": {
            "leads": [{
                "id": 1, "name": "Maria Aparecida Souza", "phone": EXISTING_LEAD_PHONE,
                "email": "maria.souza@example.com.br", "source": "site", "status": "contacted",
                "interaction_count": 2, "last_contact_at": _at(yesterday, 15, 30), "created_at": _at(yesterday, 9),
            }],
            "pending_schedules": [
                {"id": 501, "client_id": 101, "contract_id": 701, "service_type": "cuidador_idoso",
                 "start_date": _at(tomorrow, 8), "end_date": _at(tomorrow, 20),
                 "preferences": {"genero_cuidador": "feminino", "observacoes": "Paciente com Alzheimer leve"}},
                {"id": 502, "client_id": 102, "contract_id": 702, "service_type": "acompanhante_hospitalar",
                 "start_date": _at(tomorrow, 19), "end_date": _at(tomorrow + timedelta(days=1), 7),
                 "preferences": {"turno": "noturno"}},
            ],
            "contracts": [
                {"id": 701, "client_id": 101, "billing_type": "mensal", "value": 4800.00, "payment_method": "boleto"},
                {"id": 702, "client_id": 102, "billing_type": "por_servico", "value": 360.00, "payment_method": "pix"},
            ],
        },
        "operacao": {
            "services": [
                _service(9001, 101, yesterday, 12, 30.0, "cuidador_idoso", end_hour=20),
                _service(9002, 103, yesterday, 6, 35.0, "acompanhante_hospitalar",
                         [{"description": "Deslocamento", "value": 25.0}], end_hour=14),
                _service(9003, 101, today, 8, 30.0, "cuidador_idoso", end_hour=16),
            ],
        },
        "cuidadores": {
            "updates": [
                {"id": 801, "caregiver_id": 301, "changes": {"phone": "5511976540301", "availability": ["seg", "qua", "sex"]},
                 "updated_at": _at(yesterday, 17)},
                {"id": 802, "caregiver_id": 302, "changes": {"status": "inactive"}, "updated_at": _at(today, 7, 45)},
            ],
        },
        "marketing": {
            "campaigns": [{"id": 41, "name": "Cuidado de idosos - Google Ads", **CAMPAIGN_UTM, "status": "active"}],
        },
    }
