"""Completion records: signed, verifiable proof of a finished request, and the ledger of them.

The cryptography is pure (no database, no network), and offline verification uses only it:

* :mod:`~dsar.records.canonical` – RFC 8785 canonical JSON.
* :mod:`~dsar.records.merkle` – RFC 9162 Merkle tree hashes, inclusion and consistency proofs.
* :mod:`~dsar.records.algorithms` – Ed25519 and ECDSA P-256 signatures, chosen by the key.
* :mod:`~dsar.records.dsse` – DSSE v1 envelopes and in-toto Statements.
* :mod:`~dsar.records.checkpoint` – C2SP-style signed checkpoints of the ledger.
* :mod:`~dsar.records.commitment` – salted commitments to a subject's identities.
* :mod:`~dsar.records.verify` – offline verification of a record bundle (and an exported ledger).
* :mod:`~dsar.records.keys` – the on-disk keyring of Ed25519 signing keys (files, no database).

The rest reads or writes the state database through a SQLAlchemy session, or the settings:

* :mod:`~dsar.records.record` – building, signing and storing a request's completion record.
* :mod:`~dsar.records.ledger` – the append-only ledger and its checkpoints.
* :mod:`~dsar.records.record_bundle` – the record bundle a verifier needs.
* :mod:`~dsar.records.signing` – which key signs (a keyring file or a KMS key), from the settings.
* :mod:`~dsar.records.reviewer_report`, :mod:`~dsar.records.glance`, :mod:`~dsar.records.html`,
  :mod:`~dsar.records.charts` – what a reviewer reads.

Records never contain personal data: a subject appears only as a salted commitment.
"""
