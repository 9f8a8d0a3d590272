"""The test suite.

The syncs' fixtures (the sandbox's seeded services, the backfill tests) are days of
2026; ``operacao_financeiro``'s partitions start at ``CARINHO_GO_LIVE_DATE``, read when
the code location is imported, so the suite sets it before anything imports it (and
every daemon or webserver a test starts inherits it).
"""

import os

os.environ.setdefault("CARINHO_GO_LIVE_DATE", "2026-01-01")
