from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings

from schemas import ProtocolError, parse_client_frame, parse_server_frame, parse_subscription
from schemas.protocol import (
    GREETING,
    DataFrame,
    Greeting,
    Malformed,
    Ping,
    Pong,
    ServerError,
    Subscribe,
    SubscriptionResponse,
    Unsubscribe,
    data_frame,
    error_frame,
    ping_frame,
    pong_frame,
    route_data_frame,
    subscribe_frame,
    subscription_response_frame,
    unsubscribe_frame,
)
from schemas.subscriptions import frame_identifier

from .conftest import load_real_frames
from .strategies import any_frames


def test_client_frames_parse_back_to_their_request():
    sub = parse_subscription({"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 2})
    request = parse_client_frame(subscribe_frame(sub))
    assert isinstance(request, Subscribe) and request.subscription == sub
    assert isinstance(parse_client_frame(unsubscribe_frame(sub)), Unsubscribe)
    assert isinstance(parse_client_frame(ping_frame()), Ping)
    assert orjson.loads(subscribe_frame(sub)) == {
        "method": "subscribe",
        "subscription": {"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 2},
    }


def test_subscribe_echo_is_normalised_like_the_real_server():
    real = next(e["message"] for e in load_real_frames() if e["channel"] == "subscriptionResponse")
    request = parse_client_frame(b'{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}')
    assert isinstance(request, Subscribe)
    assert orjson.loads(subscription_response_frame("subscribe", request.echo)) == real


@pytest.mark.parametrize(
    "text, sentence",
    [
        ("not json", "Error parsing JSON into valid websocket request"),
        ('{"method":"dance"}', "Error parsing JSON into valid websocket request"),
        ('{"method":"subscribe","subscription":{"type":"nope"}}', 'Invalid subscription {"type":"nope"}'),
    ],
)
def test_bad_requests_get_the_servers_sentence(text, sentence):
    with pytest.raises(ProtocolError, match=sentence.replace("{", r"\{").replace("}", r"\}")):
        parse_client_frame(text)


def test_server_frames_are_classified():
    assert isinstance(parse_server_frame(GREETING), Greeting)
    assert isinstance(parse_server_frame(pong_frame()), Pong)
    assert parse_server_frame(error_frame("Already subscribed")) == ServerError("Already subscribed")
    response = parse_server_frame(subscription_response_frame("subscribe", {"type": "allMids"}))
    assert response == SubscriptionResponse("subscribe", {"type": "allMids"})
    frame = parse_server_frame(data_frame("trades", [{"coin": "BTC"}]))
    assert isinstance(frame, DataFrame) and frame.message == {"channel": "trades", "data": [{"coin": "BTC"}]}


@pytest.mark.parametrize("text", ["{oops", "[1,2]", '{"channel":5}', '{"channel":"trades"}', '{"channel":"subscriptionResponse","data":1}'])
def test_garbage_from_the_server_is_malformed_with_its_exact_text(text):
    frame = parse_server_frame(text)
    assert isinstance(frame, Malformed) and frame.text == text and frame.reason


def test_every_real_frame_parses_as_what_it_is():
    for entry in load_real_frames():
        frame = parse_server_frame(orjson.dumps(entry["message"]))
        assert not isinstance(frame, Malformed), entry["source"]


@settings(max_examples=300, deadline=None)
@given(frame=any_frames)
def test_routing_by_the_first_bytes_agrees_with_parsing_or_declines(frame):
    """The recorder files hot-channel frames by their first bytes: never differently from a full parse."""
    payload = orjson.dumps(frame) if not isinstance(frame, bytes) else frame
    route = route_data_frame(payload)
    if route is not None:
        parsed = parse_server_frame(payload)
        assert isinstance(parsed, DataFrame)
        assert route == (parsed.channel, frame_identifier(parsed.message))


def test_routing_takes_the_hot_channels_of_real_frames_and_declines_the_rest():
    routed = {}
    for record in load_real_frames():
        frame = record["message"]
        route = route_data_frame(orjson.dumps(frame))
        routed[frame["channel"]] = routed.get(frame["channel"], True) and route is not None
        if route is not None:
            assert route == (frame["channel"], frame_identifier(frame))
    assert routed["l2Book"] and routed["trades"] and routed["allMids"] and not routed["subscriptionResponse"]
    # what routing cannot read plainly is left to the parser
    for payload in (b'{"channel":"trades","data":[]}', b'{"data":{"coin":"BTC"},"channel":"bbo"}', b'{"channel":"bbo","data":{"coin":"B\\u0054C"}}',
                    b'{"channel":"pong"}', b'{"channel":"subscriptionResponse","data":{}}', b'{"channel":"trades","data":[{"coin":'):
        assert route_data_frame(payload) is None, payload
    # a body that is not JSON is still routed: the archiver, which parses it, keeps it as malformed
    assert route_data_frame(b'{"channel":"bbo","data":{"coin":"BTC",,}') == ("bbo", "bbo:btc")
