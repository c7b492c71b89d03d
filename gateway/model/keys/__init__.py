"""Signing and encryption keys of a CPAS node and of the federation.

Each CPAS holds one Ed25519 signing key and one or more HPKE (RFC 9180)
encryption keys: several during a rotation, when the new key is already in
the directory and messages sealed for the old one are still in flight. The
federation holds one Ed25519 key that signs the directory; every node trusts
its public half (the *trust anchor*).

Encryption uses one of two HPKE suites, named by their KEM:

- ``x25519``: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
- ``mlkem768-x25519``: the post-quantum hybrid ML-KEM-768 + X25519 KEM with the
  same KDF and AEAD. Its raw public key is the 1184-byte ML-KEM-768 public key
  followed by the 32-byte X25519 public key (1216 bytes).

Files in a node's key folder (private files are created with mode 0600 and
refused when group or others may read them):

``signing.key``
    The Ed25519 private key, PEM PKCS#8.
``encryption-<key id>.key``
    One encryption private key, PEM PKCS#8. For ``x25519`` one PEM block; for
    ``mlkem768-x25519`` two PEM blocks in this order: the ML-KEM-768 private
    key (seed form), then the X25519 private key.
``public.json``
    The public halves, to hand to the federation for the directory.

With a passphrase, every PEM block is an encrypted PKCS#8 block
(``BEGIN ENCRYPTED PRIVATE KEY``, the best encryption ``cryptography`` offers).

The federation's public key (trust anchor) is a PEM ``PUBLIC KEY`` file
(SubjectPublicKeyInfo), readable by OpenSSL:
``openssl pkey -pubin -in federation.pub -text``.
"""

from __future__ import annotations

from gateway.model.keys.files import (
    add_encryption_key,
    load_node_keys,
    load_signing_key,
    load_trust_anchor,
    read_public_keys,
    write_node_keys,
    write_public_key,
    write_signing_key,
)
from gateway.model.keys.material import (
    ENCRYPTION_PREFIX,
    KEM_HYBRID,
    KEM_X25519,
    KEMS,
    KEY_SUFFIX,
    PUBLIC_FILE,
    SIGNING_ALGORITHM,
    SIGNING_FILE,
    EncryptionKeyPair,
    NodeKeys,
    PrivateEncryptionKey,
    PublicEncryptionKey,
    generate_encryption_key,
    generate_signing_key,
    hpke_suite,
    key_id,
    public_encryption_key,
    public_signing_key,
    signing_public_raw,
)

__all__ = [
    "ENCRYPTION_PREFIX",
    "KEMS",
    "KEM_HYBRID",
    "KEM_X25519",
    "KEY_SUFFIX",
    "PUBLIC_FILE",
    "SIGNING_ALGORITHM",
    "SIGNING_FILE",
    "EncryptionKeyPair",
    "NodeKeys",
    "PrivateEncryptionKey",
    "PublicEncryptionKey",
    "add_encryption_key",
    "generate_encryption_key",
    "generate_signing_key",
    "hpke_suite",
    "key_id",
    "load_node_keys",
    "load_signing_key",
    "load_trust_anchor",
    "public_encryption_key",
    "public_signing_key",
    "read_public_keys",
    "signing_public_raw",
    "write_node_keys",
    "write_public_key",
    "write_signing_key",
]
