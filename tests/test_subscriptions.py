from __future__ import annotations

import pytest
from hyperliquid.websocket_manager import subscription_to_identifier, ws_msg_to_identifier
from hypothesis import given
from hypothesis import strategies as st

from schemas import SubscriptionError, frame_identifier, parse_subscription
from schemas.subscriptions import CANDLE_INTERVALS, frame_subscription

from .conftest import load_real_frames
from .strategies import frames_of

USER = "0xcc0a3b6e3267c84361e91d8230868eea53431e4b"
COINS = st.sampled_from(["BTC", "ETH", "kPEPE", "@107", "@1", "PURR/USDC", "xyz:HOOD"])
USERS = st.sampled_from([USER, USER.upper().replace("0X", "0x"), "0x" + "ab" * 20])

sdk_subscriptions = st.one_of(
    st.just({"type": "allMids"}),
    st.builds(lambda c: {"type": "l2Book", "coin": c}, COINS),
    st.builds(lambda c: {"type": "trades", "coin": c}, COINS),
    st.builds(lambda c: {"type": "bbo", "coin": c}, COINS),
    st.builds(lambda c, i: {"type": "candle", "coin": c, "interval": i}, COINS, st.sampled_from(CANDLE_INTERVALS)),
    st.builds(lambda c: {"type": "activeAssetCtx", "coin": c}, COINS),
    st.builds(lambda c, u: {"type": "activeAssetData", "user": u, "coin": c}, COINS, USERS),
    *(
        st.builds(lambda u, t=t: {"type": t, "user": u}, USERS)
        for t in ("userEvents", "userFills", "orderUpdates", "userFundings", "userNonFundingLedgerUpdates", "webData2")
    ),
)


@given(sdk_subscriptions)
def test_subscription_identifier_matches_the_sdk(raw):
    assert parse_subscription(raw).identifier == subscription_to_identifier(raw)


@given(sdk_subscriptions)
def test_subscription_round_trips_through_its_wire_form(raw):
    sub = parse_subscription(raw)
    assert sub.to_dict() == raw
    assert parse_subscription(sub.to_dict()) == sub


SDK_CHANNELS = ["l2Book", "trades", "bbo", "candle", "user", "userFills", "orderUpdates", "userFundings",
                "userNonFundingLedgerUpdates", "activeAssetCtx", "activeSpotAssetCtx", "activeAssetData", "allMids"]


@pytest.mark.parametrize("channel", SDK_CHANNELS)
@given(data=st.data())
def test_frame_identifier_matches_the_sdk(channel, data):
    frame = data.draw(frames_of(channel))
    try:
        expected = ws_msg_to_identifier(frame)
    except (KeyError, TypeError, AttributeError, IndexError):
        return  # the SDK cannot route this frame at all; nothing to compare
    assert frame_identifier(frame) == expected


def test_frame_identifier_of_real_frames_matches_the_sdk():
    for entry in load_real_frames():
        msg = entry["message"]
        if msg["channel"] in SDK_CHANNELS:
            assert frame_identifier(msg) == ws_msg_to_identifier(msg), entry["source"]


def test_identifiers_of_newer_types_follow_the_sdk_style():
    assert parse_subscription({"type": "userTwapSliceFills", "user": USER}).identifier == f"userTwapSliceFills:{USER}"
    assert parse_subscription({"type": "notification", "user": USER}).identifier == "notification"
    assert frame_identifier({"channel": "activeSpotAssetCtx", "data": {"coin": "@1", "ctx": {}}}) == "activeAssetCtx:@1"
    assert frame_identifier({"channel": "user", "data": {"fills": []}}) == "userEvents"
    assert frame_identifier({"channel": "trades", "data": []}) is None


def test_l2book_aggregations_are_different_streams():
    plain = parse_subscription({"type": "l2Book", "coin": "BTC"})
    five = parse_subscription({"type": "l2Book", "coin": "BTC", "nSigFigs": 5})
    five_two = parse_subscription({"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 2})
    echoed_nulls = parse_subscription({"type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None})
    assert plain.identifier == five.identifier == five_two.identifier == "l2Book:btc"  # as the SDK
    assert len({plain.stream, five.stream, five_two.stream}) == 3
    assert echoed_nulls == plain


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"type": "l2book", "coin": "BTC"}, ["unknown subscription type 'l2book'", "did you mean 'l2Book'"]),
        ({"type": "candle", "coin": "BTC", "interval": "2m"}, ["bad candle interval '2m'", "1m, 3m, 5m"]),
        ({"type": "l2Book", "coin": "BTC", "nSigFigs": 7}, ["nSigFigs 7", "2, 3, 4, 5 or null"]),
        ({"type": "l2Book", "coin": "BTC", "nSigFigs": 4, "mantissa": 2}, ["only allowed with nSigFigs 5"]),
        ({"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 3}, ["mantissa 3", "2, 5 or null"]),
        ({"type": "userFills", "user": "0x123"}, ["bad user '0x123'", "40 hex digits"]),
        ({"type": "trades"}, ["trades subscription needs 'coin'"]),
        ({"type": "trades", "coin": "BTC", "depth": 3}, ["unknown field 'depth'", "it takes coin"]),
        ({"type": "trades", "coin": ""}, ["bad coin ''"]),
        ({"coin": "BTC"}, ["has no 'type'", "allMids"]),
        ("trades", ["a subscription is a JSON object"]),
    ],
)
def test_bad_subscriptions_name_the_field_and_the_way_out(raw, words):
    with pytest.raises(SubscriptionError) as error:
        parse_subscription(raw)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_unknown_types_are_kept_exactly_when_allowed():
    raw = {"type": "twapStates", "user": USER, "dex": "xyz"}
    sub = parse_subscription(raw, allow_unknown=True)
    assert sub.to_dict() == raw and not sub.known
    with pytest.raises(SubscriptionError):
        parse_subscription(raw)


def test_frame_subscription_keeps_what_the_frame_tells():
    sub = frame_subscription({"channel": "candle", "data": {"t": 1, "T": 2, "s": "ETH", "i": "1m"}})
    assert sub is not None and (sub.type, sub.coin, sub.interval) == ("candle", "ETH", "1m")
    spot = parse_subscription({"type": "activeAssetCtx", "coin": "@1"})
    assert spot.channel == "activeSpotAssetCtx"
    assert parse_subscription({"type": "userEvents", "user": USER}).channel == "user"
