"""DSSE envelopes and in-toto statements."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from dsar.errors import InvalidInput
from dsar.records import dsse
from dsar.records.canonical import canonical_json
from dsar.records.errors import EnvelopeError, VerificationError

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYID = dsse.keyid_of(KEY.public_key())
KEYS = {KEYID: KEY.public_key()}
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def _env(payload: bytes = b'{"hello":"world"}', ptype: str = "text/plain") -> dict[str, Any]:
    return dsse.sign_envelope(payload, ptype, KEY, KEYID)


def test_pae_matches_dsse_spec_example() -> None:
    # DSSE protocol.md example: PAE("http://example.com/HelloWorld", "hello world").
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert dsse.pae("", b"") == b"DSSEv1 0  0 "
    assert dsse.pae("t\u00e9", b"\x00") == b"DSSEv1 3 t\xc3\xa9 1 \x00"  # lengths in bytes


def test_keyid_is_sha256_of_raw_public_key() -> None:
    raw = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert hashlib.sha256(raw).hexdigest() == KEYID


def test_envelope_shape_and_round_trip() -> None:
    env = _env()
    assert set(env) == {"payload", "payloadType", "signatures"}
    assert base64.b64decode(env["payload"]) == b'{"hello":"world"}'
    assert env["signatures"][0]["keyid"] == KEYID
    sig = base64.b64decode(env["signatures"][0]["sig"])
    KEY.public_key().verify(sig, dsse.pae("text/plain", b'{"hello":"world"}'))
    assert dsse.verify_envelope(env, KEYS) == b'{"hello":"world"}'
    assert dsse.verify_envelope(json.loads(json.dumps(env)), KEYS, payload_type="text/plain")


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _respell(canonical: str, how: str) -> str:
    """Another spelling of the same bytes (or of nearly the same text) than ``canonical``,
    standard padded base64 ending in ``==``."""
    last = canonical[-3]  # the quantum's second character: its low 4 bits are padding bits
    return {
        "URL-safe alphabet": canonical.replace("+", "-").replace("/", "_"),
        "padding missing": canonical.rstrip("="),
        "padding partial": canonical[:-1],
        "padding extra": canonical + "==",
        "line break": canonical[:4] + "\n" + canonical[4:],
        "leading space": " " + canonical,
        "trailing space": canonical + " ",
        "non-zero padding bits": canonical[:-3] + _ALPHABET[_ALPHABET.index(last) ^ 1] + "==",
        "non-ASCII digit": canonical[:-1] + "\u0661",
    }[how]


@pytest.mark.parametrize(
    "how",
    ["URL-safe alphabet", "padding missing", "padding partial", "padding extra", "line break",
     "leading space", "trailing space", "non-zero padding bits", "non-ASCII digit"],
)
@pytest.mark.parametrize("field", ["payload", "signatures[].sig"])
def test_only_canonical_standard_padded_base64_is_read(how: str, field: str) -> None:
    """Every other spelling is refused, in the payload and in a signature, with a message that
    names the field; the canonical spelling itself is read."""
    payload = b"\xfb\xff\xfe\x00"  # standard base64 "+//+AA==": '+', '/' and padding
    env = dsse.sign_envelope(payload, "x/y", KEY, KEYID)
    assert env["payload"] == "+//+AA=="
    assert dsse.verify_envelope(env, KEYS) == payload
    holder = env if field == "payload" else env["signatures"][0]
    key = "payload" if field == "payload" else "sig"
    canonical = holder[key]
    assert "+" in canonical and canonical.endswith("==")  # so every respelling differs
    holder[key] = _respell(canonical, how)
    assert holder[key] != canonical
    with pytest.raises(EnvelopeError, match="base64") as err:
        dsse.verify_envelope(env, KEYS)
    assert f"field {field} " in str(err.value)


def test_wrong_payload_type_is_rejected() -> None:
    with pytest.raises(EnvelopeError, match="expected"):
        dsse.verify_envelope(_env(), KEYS, payload_type=dsse.INTOTO_PAYLOAD_TYPE)
    env = _env()
    env["payloadType"] = "text/plai"
    with pytest.raises(EnvelopeError):
        dsse.verify_envelope(env, KEYS)


def test_other_key_and_unknown_key_fail() -> None:
    forged = dsse.sign_envelope(b"x", "t", OTHER, KEYID)  # claims our keyid
    with pytest.raises(EnvelopeError, match="does not verify"):
        dsse.verify_envelope(forged, KEYS)
    unknown = dsse.sign_envelope(b"x", "t", OTHER, dsse.keyid_of(OTHER.public_key()))
    with pytest.raises(EnvelopeError, match="unknown key") as err:
        dsse.verify_envelope(unknown, KEYS)
    assert "dsar keys export" in (err.value.fix or "")
    assert isinstance(err.value, VerificationError)


def test_signature_without_keyid_tries_every_key_and_extra_signatures_are_ignored() -> None:
    env = _env()
    del env["signatures"][0]["keyid"]
    assert dsse.verify_envelope(env, KEYS)
    env = _env()
    stranger = dsse.sign_envelope(b"x", "t", OTHER, "someone")["signatures"][0]
    env["signatures"].insert(0, stranger)
    assert dsse.verify_envelope(env, KEYS)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("payload"),
        lambda e: e.pop("signatures"),
        lambda e: e.update(signatures=[]),
        lambda e: e.update(signatures=["sig"]),
        lambda e: e.update(extra=1),
        lambda e: e["signatures"][0].update(extra=1),
        lambda e: e.update(payload=5),
        lambda e: e.update(payload="a b"),
        lambda e: e.update(payload="QQ="),
        lambda e: e.update(payload="QR=="),  # non-zero padding bits: same bytes as "QQ=="
        lambda e: e["signatures"][0].update(sig=None),
        lambda e: e["signatures"][0].update(keyid=7),
        lambda e: e.update(payloadType=""),
    ],
)
def test_malformed_envelopes_raise(mutate: Any) -> None:
    env = _env()
    mutate(env)
    with pytest.raises(EnvelopeError):
        dsse.verify_envelope(env, KEYS)


def test_not_a_mapping_raises() -> None:
    with pytest.raises(EnvelopeError):
        dsse.verify_envelope([], KEYS)  # type: ignore[arg-type]


@given(payload=st.binary(min_size=1, max_size=200), data=st.data())
@settings(max_examples=200)
def test_any_changed_payload_byte_fails(payload: bytes, data: st.DataObject) -> None:
    env = dsse.sign_envelope(payload, "t", KEY, KEYID)
    i = data.draw(st.integers(0, len(payload) - 1))
    delta = data.draw(st.integers(1, 255))
    changed = payload[:i] + bytes([payload[i] ^ delta]) + payload[i + 1 :]
    env["payload"] = base64.b64encode(changed).decode()
    with pytest.raises(EnvelopeError):
        dsse.verify_envelope(env, KEYS)


@given(data=st.data())
@settings(max_examples=300)
def test_any_changed_signature_byte_fails(data: st.DataObject) -> None:
    env = _env()
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[data.draw(st.integers(0, len(sig) - 1))] ^= data.draw(st.integers(1, 255))
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(EnvelopeError):
        dsse.verify_envelope(env, KEYS)


@given(data=st.data())
@settings(max_examples=500)
def test_any_changed_byte_of_the_serialized_envelope_fails(data: st.DataObject) -> None:
    serialized = canonical_json(_env(b"\x00payload \xff"))
    i = data.draw(st.integers(0, len(serialized) - 1), label="position")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != serialized[i]), label="byte")
    tampered = serialized[:i] + bytes([new]) + serialized[i + 1 :]
    try:
        env = json.loads(tampered)
    except ValueError:
        return  # no longer JSON at all
    with pytest.raises(EnvelopeError):
        dsse.verify_envelope(env, KEYS)


def test_make_statement() -> None:
    digest = hashlib.sha256(b"bundle").hexdigest()
    st_ = dsse.make_statement("request/42", digest, "https://dsar.dev/completion/v1", {"a": 1})
    assert st_ == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "request/42", "digest": {"sha256": digest}}],
        "predicateType": "https://dsar.dev/completion/v1",
        "predicate": {"a": 1},
    }
    env = dsse.sign_statement(st_, KEY, KEYID)
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(env["payload"]) == canonical_json(st_)
    assert dsse.verify_statement(env, KEYS) == st_


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=20)


@given(predicate=st.dictionaries(st.text(max_size=6), _JSON, max_size=6),
       name=st.text(min_size=1, max_size=12), ptype=st.text(min_size=1, max_size=12))
@settings(max_examples=200, deadline=None)
def test_signing_with_the_predicates_bytes_gives_the_same_payload(
        predicate: dict[str, Any], name: str, ptype: str) -> None:
    """A statement serialized around its predicate's canonical bytes is byte for byte the
    statement's own canonical JSON, so the signature is the same."""
    statement = dsse.make_statement(name, "0" * 64, ptype, predicate)
    plain = dsse.sign_statement(statement, KEY, KEYID)
    reused = dsse.sign_statement(statement, KEY, KEYID,
                                 predicate_json=canonical_json(predicate))
    assert reused == plain


@pytest.mark.parametrize(
    ("name", "digest", "ptype"),
    [("", "0" * 64, "p"), ("n", "0" * 63, "p"), ("n", "A" * 64, "p"), ("n", "0" * 64, "")],
)
def test_make_statement_rejects_bad_input(name: str, digest: str, ptype: str) -> None:
    with pytest.raises(InvalidInput):
        dsse.make_statement(name, digest, ptype, {})


def test_verify_statement_rejects_non_statements() -> None:
    env = dsse.sign_envelope(b'{"_type":"other"}', dsse.INTOTO_PAYLOAD_TYPE, KEY, KEYID)
    with pytest.raises(EnvelopeError, match="Statement"):
        dsse.verify_statement(env, KEYS)
    env = dsse.sign_envelope(b"not json", dsse.INTOTO_PAYLOAD_TYPE, KEY, KEYID)
    with pytest.raises(EnvelopeError, match="not JSON"):
        dsse.verify_statement(env, KEYS)
