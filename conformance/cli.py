"""``cpas-conformance``: run the suite on an installed adapter, and check signed reports.

::

    cpas-conformance --adapter NAME --report DIR [--option KEY=VALUE ...]
                     [--seed N] [--sign-with FEDERATION.key [--passphrase-env VAR]]
                     [--keep-workdir]
    cpas-conformance verify REPORT --trust FEDERATION.pub [--signature FILE]
    cpas-conformance requirements

Exit status of a run: 0 when the adapter conforms (every mandatory requirement
passed or does not apply), 1 when it does not, 2 when no verdict can be given
(an unknown adapter, a bad option, an unreadable key, a broken installation),
3 when the adapter cannot start at all (a missing option, an unreachable
store), each of the last two as one line on stderr,
``cpas-conformance: error: [code] message``, never a traceback.
``verify`` exits 0 when every published file is what the federation signed,
1 otherwise. The error line and the statuses 0, 1, 2 and 130 mean the same
as in ``cpas-gateway`` (:mod:`gateway.cli.style`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from gateway.cli.keys import add_passphrase_env, passphrase_from_env
from gateway.cli.style import (
    EXIT_INTERRUPTED,
    EXIT_NO,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    print_error,
)
from gateway.model import keys
from gateway.model.codes import Fault
from gateway.model.errors import GatewayError

from . import SUITE_VERSION
from .checks import Case, Check, all_cases
from .context import Context, installed_adapter, parse_options
from .outcomes import CaseResult, Outcome
from .report import write_reports
from .requirements import REQUIREMENTS
from .runner import SuiteResult, run_suite
from .signing import sign_report, verify_report

PROG: Final = "cpas-conformance"
LOG_FILE: Final = "run.log"
EXIT_CONFORMANT: Final = EXIT_OK
EXIT_NOT_CONFORMANT: Final = EXIT_NO
EXIT_CANNOT_START: Final = 3

_STYLE = {
    Outcome.PASSED: "green",
    Outcome.WARNING: "bold yellow",
    Outcome.FAILED: "bold red",
    Outcome.SKIPPED: "yellow",
}


# ---------------------------------------------------------------- parsers


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Run the conformance suite on an installed adapter and write report.json, "
            "report.html and junit.xml into DIR. Exit 0 when it conforms, 1 when it does not. "
            f"Also: '{PROG} verify REPORT --trust KEY' and '{PROG} requirements'."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {SUITE_VERSION}")
    parser.add_argument("--adapter", required=True, metavar="NAME", help="installed adapter")
    parser.add_argument("--report", required=True, type=Path, metavar="DIR", help="report folder")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="adapter option; {workdir} is each case's own empty folder, {workid} a unique name",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="replay a run: the people, numbers and folder names it drew (reports give N)",
    )
    parser.add_argument(
        "--sign-with", type=Path, metavar="KEY", help="federation key that signs the reports"
    )
    add_passphrase_env(parser)
    parser.add_argument(
        "--keep-workdir", action="store_true", help="keep each case's store, to look at it"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more in run.log")
    return parser


def _verify_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} verify",
        description="Check that a report, its page and its JUnit file are, byte for byte, "
        "what the federation signed.",
    )
    parser.add_argument("report", type=Path, metavar="REPORT", help="report.json, or its folder")
    parser.add_argument(
        "--trust", required=True, type=Path, metavar="KEY", help="federation public key (PEM)"
    )
    parser.add_argument(
        "--signature", type=Path, metavar="FILE", help="signature (default: REPORT.sig)"
    )
    return parser


# --------------------------------------------------------------- commands


def main(argv: Sequence[str] | None = None, *, plugins: Iterable[object] = ()) -> int:
    """Run the command line; return the exit status.

    :param plugins: extra adapter plugins, as for :func:`gateway.adapters.load_adapters`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    err = Console(stderr=True, highlight=False)
    try:
        if args[:1] == ["verify"]:
            return _verify(_verify_parser().parse_args(args[1:]))
        if args[:1] == ["requirements"]:
            return _list_requirements()
        return _run(_run_parser().parse_args(args), err, plugins)
    except UsageError as exc:
        print_error(PROG, exc)
        return EXIT_USAGE
    except GatewayError as exc:
        # The installation itself is broken (a schema or the corpus missing):
        # no verdict can be given about the adapter.
        print_error(PROG, f"[{exc.code}] the suite cannot run: {exc.message}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, err: Console, plugins: Iterable[object]) -> int:
    try:
        options = parse_options(args.option)
    except ValueError as exc:
        raise UsageError(f"--option {exc}") from None
    key = None
    if args.sign_with is not None:
        try:
            key = keys.load_signing_key(args.sign_with, passphrase_from_env(args.passphrase_env))
        except GatewayError as exc:
            raise UsageError(exc.message, code=exc.code) from None
    try:
        target = installed_adapter(args.adapter, options, plugins=plugins)
    except GatewayError as exc:
        raise UsageError(exc.message, code=exc.code) from None
    report_dir: Path = args.report
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {report_dir}: {exc.strerror or exc}") from None

    # A plain temporary folder: nothing in the adapter's paths names the suite.
    workdir = Path(tempfile.mkdtemp())
    try:
        with _log_to(report_dir / LOG_FILE, args.verbose):
            context = Context(target, workdir, keep_workdirs=args.keep_workdir, seed=args.seed)
            start_error = context.profile.start_error
            result = None if start_error else _run_with_progress(context, err)
    finally:
        if args.keep_workdir:
            err.print(f"The stores of every case are kept in {workdir}", markup=False)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    if result is None:
        # One line, not a failed row per case: nothing could be judged.
        reason = start_error.removeprefix("the adapter could not start: ")
        print_error(
            PROG,
            f"[{Fault.ADAPTER_START}] the adapter {args.adapter} could not start, so nothing "
            f"was judged: {reason} (details in {report_dir / LOG_FILE})",
        )
        return EXIT_CANNOT_START
    signer = keys.key_id(keys.signing_public_raw(key)) if key is not None else None
    try:
        files = write_reports(result, report_dir, signer_key_id=signer)
        if key is not None:
            sign_report(files.json, key)
    except OSError as exc:
        reason = exc.strerror or exc
        raise UsageError(f"cannot write the reports in {report_dir}: {reason}") from None
    _print_summary(result, err)
    verdict = "CONFORMANT" if result.conformant else "NOT CONFORMANT"
    print(
        f"{verdict}: {args.adapter} ({result.verdict_detail()}); "
        f"reports in {report_dir} (report.json, report.html, junit.xml"
        f"{', report.json.sig' if key is not None else ''}); seed {context.seed}"
    )
    return EXIT_CONFORMANT if result.conformant else EXIT_NOT_CONFORMANT


def _run_with_progress(context: Context, err: Console) -> SuiteResult:
    total = sum(1 for _ in all_cases())
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("starting", total=total)

        def advance(check: Check, case: Case, result: CaseResult | None) -> None:
            if result is None:
                progress.update(task, description=f"{check.requirement.id} {case.id}"[:48])
            else:
                progress.advance(task)

        return run_suite(context, advance)


@contextlib.contextmanager
def _log_to(path: Path, verbose: int) -> Iterator[None]:
    """Send every log record of the run (the adapter's too) to ``path``, not the terminal."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level, others = root.level, root.handlers[:]
    # Only the file: a handler set up before (by a host program, or another
    # command run in the same process) must not print the run on the terminal.
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        root.handlers = others
        root.setLevel(level)
        handler.close()


def _print_summary(result: SuiteResult, err: Console) -> None:
    table = Table(title=f"{PROG} {SUITE_VERSION}", title_justify="left")
    table.add_column("Requirement", no_wrap=True)
    table.add_column("Outcome", no_wrap=True)
    table.add_column("Summary", overflow="fold")
    for item in result.requirements:
        name = item.requirement.id + ("" if item.requirement.mandatory else " (optional)")
        outcome = item.outcome
        label = outcome.value if item.skip_kind is None else item.skip_kind.value
        table.add_row(name, f"[{_STYLE[outcome]}]{label}[/]", item.summary.replace("[", r"\["))
    err.print(table)
    for warning in result.warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)


def _verify(args: argparse.Namespace) -> int:
    report: Path = args.report
    if report.is_dir():
        report = report / "report.json"
    try:
        signed = verify_report(report, args.trust, args.signature)
    except GatewayError as exc:
        print_error(PROG, exc)
        return EXIT_NO
    print(f"OK  {report}: signed by federation key {signed.key_id}")
    return 0


def _list_requirements() -> int:
    table = Table(show_lines=False)
    table.add_column("Id", no_wrap=True)
    table.add_column("Mandatory", no_wrap=True)
    table.add_column("Applies to", no_wrap=True)
    table.add_column("Requirement")
    for requirement in REQUIREMENTS:
        table.add_row(
            requirement.id,
            "yes" if requirement.mandatory else "optional",
            requirement.applies_to,
            requirement.title,
        )
    Console(highlight=False).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
