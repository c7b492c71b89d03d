"""DSE-INF-001: the adapter describes itself."""

from __future__ import annotations

from gateway.adapters import AdapterInfo

from .. import requirements as reqs
from ..context import Context
from ..outcomes import Failed
from .registry import Case, Evidence, check, one_case


@check(reqs.INF_001, one_case("info", "AdapterInfo of a fresh adapter"))
def adapter_describes_itself(ctx: Context, case: Case) -> Evidence:
    """``info`` is a complete :class:`AdapterInfo` supporting schema version 1."""
    with ctx.fresh_adapter() as adapter:
        info = getattr(adapter, "info", None)
        missing_methods = [
            name
            for name in ("export_dossier", "import_dossier", "close")
            if not callable(getattr(adapter, name, None))
        ]
    if not isinstance(info, AdapterInfo):
        raise Failed(f"info is {type(info).__name__}, not gateway.adapters.AdapterInfo")
    problems = []
    if ctx.target.name is not None and info.name != ctx.target.name:
        problems.append(f"info.name is {info.name!r} but it is registered as {ctx.target.name!r}")
    for name in ("name", "vendor", "product", "version"):
        value = getattr(info, name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"info.{name} is empty")
    if "1" not in tuple(info.schema_versions or ()):
        problems.append(f'info.schema_versions {info.schema_versions!r} lacks "1"')
    capabilities = info.capabilities
    if not isinstance(capabilities, (set, frozenset)) or not capabilities:
        problems.append("info.capabilities is empty or not a set")
    elif not capabilities <= reqs.DECLARED_CAPABILITIES:
        unknown = sorted(str(item) for item in capabilities - reqs.DECLARED_CAPABILITIES)
        problems.append(f"info.capabilities holds unknown values {unknown}")
    if missing_methods:
        problems.append(f"the adapter lacks {', '.join(missing_methods)}")
    evidence = {
        "name": info.name,
        "vendor": info.vendor,
        "product": info.product,
        "version": info.version,
        "schemaVersions": list(info.schema_versions),
        "capabilities": sorted(str(item) for item in (capabilities or ())),
        "protocols": sorted(ctx.profile.capabilities - reqs.DECLARED_CAPABILITIES),
    }
    if problems:
        raise Failed("; ".join(problems), evidence)
    return evidence
