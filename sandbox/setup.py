"""The sandbox: simulators of Z-API and the internal systems, with fault injection, an
SMTP mailbox and the demo. A distribution of its own so that the product install (the
repository's setup.py, the production image) carries none of its code or tokens.

Its dependencies are pinned once, in the repository's setup.py (the ``sandbox`` extra).

    pip install -e . -e ./sandbox      # what `make install` does
"""

from setuptools import find_packages, setup

setup(
    name="carinho_sandbox",
    version="0.1.0",
    description="Carinho Integrações: the sandbox (simulated Z-API and internal systems)",
    packages=find_packages(include=["carinho_sandbox", "carinho_sandbox.*"]),
    python_requires=">=3.11,<3.13",
    install_requires=["carinho_pipelines[sandbox]"],
    entry_points={
        # `carinho sandbox …`, and the simulators `carinho run` starts beside the hub
        "carinho.commands": ["sandbox = carinho_sandbox.cli:sandbox"],
        "carinho.sandbox": ["hub = carinho_sandbox.hub"],
    },
)
