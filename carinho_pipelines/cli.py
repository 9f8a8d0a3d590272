"""The ``carinho`` command line (stable names: other tooling drives these)."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """Carinho Integrações: the integrations hub."""
