"""The model: what a dossier, an envelope and the directory are, and how they are checked.

Identifiers, the closed vocabulary of codes, hardened XML against the XSDs,
keys, signatures and encryption. The model imports nothing of the node, the
broker, the journal, the report or the command line (a check in the test
command keeps it so): vendor adapters and the conformance suite use it alone.
"""
