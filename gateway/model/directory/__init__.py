"""The signed directory of institutions, and the one answer to "may this id receive?".

The federation publishes an XML directory (``schemas/xsd/directory.xsd``)
listing every CPAS with its status and public keys, and institutions of other
kinds so that a refusal can say what they are. Nodes accept it only through
:func:`load_directory`: hardened parser, XSD, the federation's Ed25519
signature checked against the node's trust anchor, then the model's own
checks (check digits, unique ids, successors that exist, key ids that match
their keys, validity periods that do not end before they start).

What is signed: the C14N 2.0 canonical form, with *TrimTextNodes* on and
comments left out (lxml ``tostring(method="c14n2", strip_text=True)``), of the
document without its ``signature`` element. C14N 2.0 is exclusive by nature
(only namespace declarations in use are written), and trimming text nodes makes
the signature independent of indentation, so a directory can be pretty-printed
for review; every character of every name, id, status, date and key is covered.

:meth:`Directory.may_receive` is the only function that decides whether an
institution may receive a dossier: an active CPAS with an encryption key valid
at that moment. Everything else is refused with a stable code and a reason
that names what the institution is instead.

The package: :mod:`~gateway.model.directory.institutions` (kinds, statuses, keys,
the checks on each institution), :mod:`~gateway.model.directory.edition` (the
:class:`Directory` and its XML form), :mod:`~gateway.model.directory.signature`
(signing and loading), :mod:`~gateway.model.directory.building` (an edition from
institutions or from the JSON input of ``directory build``). The sample
directory of demos and tests is :mod:`gateway.testing.sample_directory`.
"""

from gateway.model.directory.building import (
    DEFAULT_KEY_VALIDITY,
    build_directory,
    directory_from_spec,
    read_spec,
)
from gateway.model.directory.edition import SCHEMA_VERSION, Directory
from gateway.model.directory.institutions import (
    ENCRYPTION_ALGORITHMS,
    LABEL,
    SIGNING_ALGORITHMS,
    Institution,
    InstitutionKind,
    InstitutionStatus,
    KeyEntry,
    Label,
    Verdict,
)
from gateway.model.directory.signature import (
    SeenEdition,
    check_not_older,
    load_directory,
    load_directory_file,
    read_unsigned,
    sign_directory,
    signed_form,
)

__all__ = [
    "DEFAULT_KEY_VALIDITY",
    "ENCRYPTION_ALGORITHMS",
    "LABEL",
    "SCHEMA_VERSION",
    "SIGNING_ALGORITHMS",
    "Directory",
    "Institution",
    "InstitutionKind",
    "InstitutionStatus",
    "KeyEntry",
    "Label",
    "SeenEdition",
    "Verdict",
    "build_directory",
    "check_not_older",
    "directory_from_spec",
    "load_directory",
    "load_directory_file",
    "read_spec",
    "read_unsigned",
    "sign_directory",
    "signed_form",
]
