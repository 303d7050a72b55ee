"""Completion records: the pure cryptography behind signed, verifiable proof of a finished request.

Every module here is pure (no database, no network) and small:

* :mod:`~dsar.records.canonical` – RFC 8785 canonical JSON.
* :mod:`~dsar.records.merkle` – RFC 9162 Merkle tree hashes, inclusion and consistency proofs.
* :mod:`~dsar.records.dsse` – DSSE v1 envelopes signed with Ed25519, and in-toto Statements.
* :mod:`~dsar.records.keys` – the on-disk keyring of Ed25519 signing keys.
* :mod:`~dsar.records.checkpoint` – C2SP-style signed checkpoints of the ledger.
* :mod:`~dsar.records.commitment` – salted commitments to a subject's identities.

Records never contain personal data: a subject appears only as a salted commitment.
"""
