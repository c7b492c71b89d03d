"""The conformance suite federations run on a vendor's adapter (``cpas_conformance``).

Run it on an installed adapter::

    cpas-conformance --adapter acme --report ./report --option db={workdir}/acme.db

or inside a vendor's own pytest run::

    pytest --cpas-adapter acme --pyargs cpas_conformance.suite

Modules:

- :mod:`~cpas_conformance.requirements`: the requirements and their stable ids;
- :mod:`~cpas_conformance.checks`: one check per requirement, cases as data;
- :mod:`~cpas_conformance.corpus`: the sample corpus shipped with the suite;
- :mod:`~cpas_conformance.context`: the adapter under test, fresh stores, timings;
- :mod:`~cpas_conformance.people`: the corpus as the run's people, drawn from its seed;
- :mod:`~cpas_conformance.watch`: side channels, seen through an audit hook;
- :mod:`~cpas_conformance.integrity`: the fingerprint of the gateway's own checks;
- :mod:`~cpas_conformance.speed`: timings per case against published thresholds;
- :mod:`~cpas_conformance.runner`: running cases and the verdict;
- :mod:`~cpas_conformance.report`: ``report.json``, the HTML page and JUnit XML;
- :mod:`~cpas_conformance.signing`: a federation's signature on the published reports;
- :mod:`~cpas_conformance.cli`: the ``cpas-conformance`` command;
- :mod:`~cpas_conformance.pytest_plugin` and :mod:`~cpas_conformance.suite`: pytest.

``docs/conformance.md`` is the vendor's guide. This module stays free of
imports: pytest loads the plugin, and with it this package, in every run.
"""

from __future__ import annotations

SUITE_VERSION = "2.0.0"
"""Version of the suite: a report is only comparable with reports of the same version."""
