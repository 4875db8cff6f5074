"""simulator.mock.tokens: issued tokens verify; forged, tampered, expired,
malformed and wrong-role ones are refused with the right error and status;
token ids, secrets and resume tokens come from the CSPRNG even when seeded."""

from __future__ import annotations

import base64
import json
import random

import jwt
import pytest

from simulator.errors import TokenError, TokenExpired, TokenForged, TokenMalformed, TokenWrongRole
from simulator.mock.conversation import Role, participant_arn
from simulator.mock.engine import Engine, EngineConfig, Identity
from simulator.mock.tokens import Claims, TokenIssuer, looks_like_jwt, new_secret
from simulator.protocol import EventType, FrameType, decode

pytestmark = pytest.mark.timeout(60)

NOW = 1_800_000_000.0
UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def _issuer(secret: str = "s" * 43, merchant: str = "DEMO", ttl: float = 3600) -> TokenIssuer:
    return TokenIssuer(secret, merchant, ttl)


def _agent_token(issuer: TokenIssuer, now: float = NOW) -> str:
    return issuer.issue(Role.AGENT, UUID, "Alice", now, user_id=7, queues=("support", "sales"))


def test_an_issued_agent_token_verifies_to_its_claims() -> None:
    issuer = _issuer()
    claims = issuer.verify(_agent_token(issuer), NOW + 10, role=Role.AGENT)
    assert isinstance(claims, Claims)
    assert claims.role is Role.AGENT
    assert claims.name == "Alice"
    assert claims.participant_uuid == UUID
    assert claims.participant_arn == participant_arn("DEMO", Role.AGENT, UUID)
    assert claims.merchant_id == "DEMO"
    assert claims.user_id == 7
    assert claims.queues == ("support", "sales")
    assert claims.issued_at == int(NOW)
    assert claims.expires_at == int(NOW) + 3600
    assert len(claims.token_id) >= 16


def test_a_customer_token_carries_email_and_language() -> None:
    issuer = _issuer()
    token = issuer.issue(Role.CUSTOMER, UUID, "Ann", NOW, email="ann@example.com", language_iso_code="fr")
    claims = issuer.verify(token, NOW, role=Role.CUSTOMER)
    assert (claims.role, claims.email, claims.language_iso_code, claims.user_id) == (
        Role.CUSTOMER,
        "ann@example.com",
        "fr",
        None,
    )
    assert claims.participant_arn.endswith(f"/participant/{UUID}")


def test_token_ids_are_unique() -> None:
    issuer = _issuer()
    ids = {issuer.verify(_agent_token(issuer), NOW).token_id for _ in range(50)}
    assert len(ids) == 50


def test_expired_token_is_refused_with_401() -> None:
    issuer = _issuer(ttl=60)
    token = _agent_token(issuer)
    issuer.verify(token, NOW + 59)
    with pytest.raises(TokenExpired) as info:
        issuer.verify(token, NOW + 60)
    assert info.value.status == 401
    assert "expired" in str(info.value)


def test_another_secret_is_forged() -> None:
    token = _agent_token(_issuer(secret="another secret of this length, 32+"))
    with pytest.raises(TokenForged) as info:
        _issuer().verify(token, NOW)
    assert info.value.status == 401


def _tamper(token: str, **changes: object) -> str:
    """The token with its payload changed and its signature kept."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


@pytest.mark.parametrize(
    "changes", [{"name": "Mallory"}, {"role": "customer"}, {"exp": 4_000_000_000}, {"merchant_id": "OTHER"}]
)
def test_a_tampered_payload_is_forged(changes: dict[str, object]) -> None:
    issuer = _issuer()
    with pytest.raises(TokenForged):
        issuer.verify(_tamper(_agent_token(issuer), **changes), NOW)


def test_alg_none_and_other_algorithms_are_forged() -> None:
    issuer = _issuer()
    claims = jwt.decode(_agent_token(issuer), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    for variant in (unsigned, unsigned + "x"):  # no signature, or a made-up one
        with pytest.raises((TokenForged, TokenMalformed)):
            issuer.verify(variant, NOW)
    hs512 = jwt.encode(claims, "s" * 64, algorithm="HS512")
    with pytest.raises(TokenForged):
        issuer.verify(hs512, NOW)


@pytest.mark.parametrize("text", ["", "abc", "a.b", "a.b.c.d", "a..c", "a b.c.d", "0123456789abcdef" * 2])
def test_not_a_jwt_is_malformed(text: str) -> None:
    with pytest.raises(TokenMalformed) as info:
        _issuer().verify(text, NOW)
    assert info.value.status == 401


def test_garbage_in_jwt_shape_is_malformed() -> None:
    with pytest.raises(TokenMalformed):
        _issuer().verify("aaaa.bbbb.cccc", NOW)


def test_a_signed_token_without_required_claims_is_malformed() -> None:
    secret = "s" * 43
    token = jwt.encode({"iss": "webchat-sim", "role": "agent"}, secret, algorithm="HS256")
    with pytest.raises(TokenMalformed, match="missing"):
        _issuer(secret).verify(token, NOW)


def test_a_signed_token_with_wrong_claim_types_is_malformed() -> None:
    issuer = _issuer()
    claims = jwt.decode(_agent_token(issuer), options={"verify_signature": False})
    token = jwt.encode({**claims, "exp": "tomorrow"}, "s" * 43, algorithm="HS256")
    with pytest.raises(TokenMalformed):
        issuer.verify(token, NOW)


def test_wrong_role_is_refused_with_403() -> None:
    issuer = _issuer()
    customer = issuer.issue(Role.CUSTOMER, UUID, "Ann", NOW)
    with pytest.raises(TokenWrongRole) as info:
        issuer.verify(customer, NOW, role=Role.AGENT)
    assert info.value.status == 403
    with pytest.raises(TokenWrongRole):
        issuer.verify(_agent_token(issuer), NOW, role=Role.CUSTOMER)


def test_a_genuine_token_of_an_unknown_role_or_other_merchant_is_403() -> None:
    secret = "s" * 43
    issuer = _issuer(secret)
    claims = jwt.decode(_agent_token(issuer), options={"verify_signature": False})
    admin = jwt.encode({**claims, "role": "admin"}, secret, algorithm="HS256")
    with pytest.raises(TokenWrongRole):
        issuer.verify(admin, NOW)
    other = _issuer(secret, merchant="OTHER")
    with pytest.raises(TokenWrongRole, match="merchant"):
        other.verify(_agent_token(issuer), NOW)


def test_errors_are_one_line_and_carry_no_token_values() -> None:
    issuer = _issuer()
    token = _agent_token(issuer)
    for bad in (token + "x", _tamper(token, name="Mallory"), "nonsense"):
        with pytest.raises(TokenError) as info:
            issuer.verify(bad, NOW)
        assert "\n" not in str(info.value)
        assert "Alice" not in str(info.value) and "Mallory" not in str(info.value)


def test_the_jwt_shape_test_tells_jwts_from_resume_tokens() -> None:
    issuer = _issuer()
    assert looks_like_jwt(_agent_token(issuer))
    engine = Engine(EngineConfig(), rng=random.Random(1))
    assert not looks_like_jwt(_resume_token(engine))
    assert not looks_like_jwt("0123456789abcdef0123456789abcdef")


def test_secrets_are_fresh_and_long() -> None:
    assert new_secret() != new_secret()
    assert len(new_secret()) >= 43


def test_bad_issuer_arguments() -> None:
    with pytest.raises(ValueError, match="secret"):
        TokenIssuer("", "DEMO", 60)
    with pytest.raises(ValueError, match="ttl"):
        TokenIssuer("x" * 32, "DEMO", 0)


# ---------------------------------------------------------------------------
# Resume tokens come from the CSPRNG, whatever the seed


def _resume_token(engine: Engine, conn: int = 1) -> str:
    engine.connect(conn, Identity(role=Role.CUSTOMER), NOW)
    start = decode(
        '{"type": "event", "event_type": "webchat start conversation",'
        ' "event_engage_customer": {"conversation_participant_name": "Ann", "question": "hello?"}}'
    )
    for delivery in engine.receive(conn, start, NOW):
        frame = delivery.frame
        if frame.type is FrameType.EVENT and frame.event_type is EventType.NEW_CONVERSATION:
            assert frame.model_extra is not None
            token = frame.model_extra["resume_token"]
            assert isinstance(token, str)
            return token
    raise AssertionError("no new conversation")


def _uuids(engine: Engine) -> list[str]:
    return sorted(engine._conversations)


def test_same_seed_same_uuids_but_different_resume_tokens() -> None:
    one, two = Engine(EngineConfig(), rng=random.Random(42)), Engine(EngineConfig(), rng=random.Random(42))
    token_one, token_two = _resume_token(one), _resume_token(two)
    assert _uuids(one) == _uuids(two)  # seeded uuids stay reproducible
    assert token_one != token_two
    assert len(token_one) >= 32


def test_knowing_the_whole_rng_state_does_not_predict_resume_tokens() -> None:
    """An observer who rebuilt the engine's MT19937 state from the uuids it saw
    (here: given the seed, which is more) predicts the next uuid, not the
    next customer's resume token."""
    engine = Engine(EngineConfig(), rng=random.Random(7))
    _resume_token(engine, 1)
    mirror = random.Random(7)
    shadow = Engine(EngineConfig(), rng=mirror)
    _resume_token(shadow, 1)  # the observer replays every draw the engine made so far
    state = mirror.getstate()
    victim = _resume_token(engine, 2)
    for guess_rng in (random.Random(0), random.Random(0)):
        guess_rng.setstate(state)
        guesses = {f"{guess_rng.getrandbits(128):032x}" for _ in range(16)}
        assert victim not in guesses


def test_an_injected_token_source_is_used() -> None:
    counter = iter(range(100))
    engine = Engine(EngineConfig(), rng=random.Random(1), token_source=lambda: f"t{next(counter)}")
    assert _resume_token(engine) == "t0"
