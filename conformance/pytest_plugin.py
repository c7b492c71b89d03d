"""pytest plugin: the conformance suite inside a vendor's own test run.

Installed with the gateway (entry point ``pytest11``), and inert unless asked:
it adds the ``--cpas-adapter`` and ``--cpas-option`` options and three
fixtures, and collects nothing by itself. Imports stay inside the fixtures, so
a test run that does not use the suite does not even import it.

Run the suite on an installed adapter::

    pytest --cpas-adapter acme --cpas-option db={workdir}/acme.db --pyargs cpas_conformance.suite

Or make it part of your own tests (as SQLAlchemy's dialect suite is) and give
the adapter through a fixture, the way anyio's ``anyio_backend`` is given::

    # tests/test_conformance.py
    from cpas_conformance.suite import *  # noqa: F403

    @pytest.fixture(scope="session")
    def cpas_adapter_factory():
        def build(cpas_id, workdir):
            return AcmeAdapter(cpas_id, {"db": f"sqlite:///{workdir}/acme.db"})
        return build
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .context import AdapterTarget, Context


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the suite's options (they change nothing unless the suite's tests are collected)."""
    group = parser.getgroup("cpas-conformance", "CPAS dossier gateway conformance suite")
    group.addoption(
        "--cpas-adapter",
        metavar="NAME",
        default=None,
        help="installed adapter the conformance suite checks (cpas_conformance.suite)",
    )
    group.addoption(
        "--cpas-option",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="adapter option for the conformance suite; {workdir} is each case's empty folder",
    )
    group.addoption(
        "--cpas-seed",
        metavar="N",
        type=int,
        default=None,
        help="replay a conformance run: the seed its report gives",
    )


@pytest.fixture(scope="session")
def cpas_adapter_factory(request: pytest.FixtureRequest) -> Any:
    """The adapter under test: override this fixture to give your own.

    Return a callable ``build(cpas_id, workdir) -> Adapter`` that builds a fresh
    adapter over an empty store in ``workdir``, or an
    :class:`~cpas_conformance.context.AdapterTarget`. By default, the
    installed adapter named by ``--cpas-adapter``, with ``--cpas-option`` options.
    """
    name = request.config.getoption("cpas_adapter")
    if not name:
        pytest.fail(
            "No adapter to check: pass --cpas-adapter NAME, or override the "
            "cpas_adapter_factory fixture.",
            pytrace=False,
        )
    from gateway.model.errors import GatewayError

    from .context import installed_adapter, parse_options

    try:
        options = parse_options(request.config.getoption("cpas_option"))
        return installed_adapter(name, options)
    except (ValueError, GatewayError) as exc:
        pytest.fail(f"--cpas-adapter/--cpas-option: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def cpas_adapter_target(cpas_adapter_factory: Any) -> AdapterTarget:
    """The adapter under test as an :class:`~cpas_conformance.context.AdapterTarget`."""
    from .context import AdapterTarget

    if isinstance(cpas_adapter_factory, AdapterTarget):
        return cpas_adapter_factory
    if not callable(cpas_adapter_factory):
        pytest.fail("cpas_adapter_factory must return a callable or an AdapterTarget.")
    return AdapterTarget(cpas_adapter_factory)


@pytest.fixture(scope="session")
def cpas_conformance(
    cpas_adapter_target: AdapterTarget,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Context:
    """One run of the suite: fresh adapters in folders of this session's temporary area."""
    from .context import Context

    # A neutral folder name: nothing in the adapter's paths names the suite.
    workdir: Path = tmp_path_factory.mktemp("run")
    return Context(cpas_adapter_target, workdir, seed=request.config.getoption("cpas_seed"))
