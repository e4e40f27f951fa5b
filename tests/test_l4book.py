"""The L4 book state machine (``schemas.l4book``) against a naive reference: a dict of orders sorted
by price then arrival. Random blocks of new orders, partial fills, size changes and removals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.l4.book import L4Book

USER = "0x" + "ab" * 20

op = st.tuples(st.sampled_from(["new", "new", "new", "update", "modified", "remove"]), st.integers(0, 10_000), st.booleans(), st.integers(0, 9), st.integers(1, 400))
blocks = st.lists(st.lists(op, max_size=8), min_size=1, max_size=25)


def status_line(oid: int, side: str, px: str, sz: str) -> dict[str, Any]:
    order = {"coin": "BTC", "side": side, "limitPx": px, "sz": sz, "oid": oid, "timestamp": oid, "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0",
             "children": [], "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit", "origSz": sz, "tif": "Alo", "cloid": None}
    return {"time": "2025-06-24T02:56:36.172847427", "user": USER, "status": "open", "order": order}


def diff(oid: int, side: str, px: str, change: Any) -> dict[str, Any]:
    return {"user": USER, "oid": oid, "coin": "BTC", "side": side, "px": px, "raw_book_diff": change}


def reference_side(orders: dict[int, list[Any]], side: str) -> list[tuple[int, str, str]]:
    mine = [(oid, o) for oid, o in orders.items() if o[0] == side]
    mine.sort(key=lambda item: ((-Decimal(item[1][1])) if side == "B" else Decimal(item[1][1]), item[1][3]))
    return [(oid, o[1], o[2]) for oid, o in mine]


def reference_l2(orders: dict[int, list[Any]], side: str, n: int) -> list[dict[str, Any]]:
    levels: dict[str, list[Any]] = {}
    for _, px, sz in reference_side(orders, side):
        entry = levels.setdefault(px, [Decimal(0), 0])
        entry[0] += Decimal(sz)
        entry[1] += 1
    out = []
    for px, (sz, count) in list(levels.items())[:n]:
        text = format(sz.normalize(), "f")
        pxt = format(Decimal(px).normalize(), "f")
        out.append({"px": pxt if "." in pxt else pxt + ".0", "sz": text if "." in text else text + ".0", "n": count})
    return out


def reference_buckets(orders: dict[int, list[Any]], side: str, n: int, sig: int, mantissa: int | None) -> list[dict[str, Any]]:
    """Every order walked and bucketed from scratch: what the kept level sums must give."""
    buckets: dict[Decimal, list[Any]] = {}
    for _, px, sz in reference_side(orders, side):
        price = Decimal(px)
        step = Decimal(mantissa or 1) * Decimal(10) ** (price.adjusted() - sig + 1)
        whole, part = divmod(price, step)  # prices are positive: floor, and ceil when something is left
        units = whole if side == "B" or not part else whole + 1
        key = units * step
        if key not in buckets and len(buckets) == n:
            break
        entry = buckets.setdefault(key, [Decimal(0), 0])
        entry[0] += Decimal(sz)
        entry[1] += 1
    text = lambda d: (lambda t: t if "." in t else t + ".0")(format(d.normalize(), "f"))  # noqa: E731
    return [{"px": text(px), "sz": text(sz), "n": count} for px, (sz, count) in buckets.items()]


@settings(max_examples=150, deadline=None)
@given(blocks, st.integers(1, 100), st.sampled_from([(None, None), (2, None), (3, None), (4, None), (5, None), (5, 2), (5, 5)]))
def test_the_book_is_the_reference_at_every_block(drawn, n_levels, rounding):
    book = L4Book("BTC")
    orders: dict[int, list[Any]] = {}  # oid -> [side, px, sz, arrival]
    next_oid, arrival = 1, 0
    for height, ops in enumerate(drawn, start=100):
        statuses, diffs = [], []
        for kind, pick, is_bid, px_step, size in ops:
            live = sorted(orders)
            if kind == "new" or not live:
                side = "B" if is_bid else "A"
                px = f"{(90 if is_bid else 100) + px_step}.5"  # bids below asks: never crossed
                sz = f"{size / 100:.2f}"
                oid, next_oid = next_oid, next_oid + 1
                statuses.append(status_line(oid, side, px, sz))
                diffs.append(diff(oid, side, px, {"new": {"sz": sz}}))
                orders[oid] = [side, px, sz, arrival]
                arrival += 1
                continue
            oid = live[pick % len(live)]
            side, px, sz, _ = orders[oid]
            if kind == "remove":
                diffs.append(diff(oid, side, px, "remove"))
                del orders[oid]
            elif kind == "update":  # a partial fill
                new = f"{max(Decimal(sz) - Decimal(size) / 1000, Decimal('0.01')):.2f}"
                diffs.append(diff(oid, side, px, {"update": {"origSz": sz, "newSz": new}}))
                orders[oid][2] = new
            else:
                new = f"{size / 100:.2f}"
                diffs.append(diff(oid, side, px, {"modified": {"sz": new}}))
                orders[oid][2] = new  # keeps its place
        assert book.apply_block(height, height * 100, statuses, diffs) == []
        for side in ("B", "A"):
            assert [(o["oid"], o["limitPx"], o["sz"]) for o in book.orders(side)] == reference_side(orders, side)
        l2 = book.l2(n_levels)
        assert l2["levels"] == [reference_l2(orders, "B", n_levels), reference_l2(orders, "A", n_levels)]
        for side, levels in zip("BA", l2["levels"]):
            assert book.best(side) == ((levels[0]["px"], levels[0]["sz"], levels[0]["n"]) if levels else None)
        sig, mantissa = rounding
        if sig is not None:
            bucketed = book.l2(n_levels, sig, mantissa)["levels"]
            assert bucketed == [reference_buckets(orders, "B", n_levels, sig, mantissa), reference_buckets(orders, "A", n_levels, sig, mantissa)]
        if height % 7 == 0:  # a snapshot of the book taken into a fresh one keeps the sums
            twin = L4Book("BTC", safe=False)
            twin.reset(book)
            assert twin.l2(n_levels) == l2
    assert book.safe and len(book) == len(orders)


def test_an_unknown_oid_and_a_wrong_orig_size_are_desyncs_until_the_next_snapshot():
    book = L4Book("BTC")
    assert book.apply_block(1, 100, [status_line(7, "B", "100.0", "1.5")], [diff(7, "B", "100.0", {"new": {"sz": "1.5"}})]) == []
    [unknown] = book.apply_block(2, 200, [], [diff(99, "A", "101.0", "remove")])
    assert (unknown.height, unknown.oid, unknown.found) == (2, 99, "no such oid") and not book.safe
    [wrong] = book.apply_block(3, 300, [], [diff(7, "B", "100.0", {"update": {"origSz": "2.0", "newSz": "1.0"}})])
    assert (wrong.height, wrong.oid, wrong.expected, wrong.found) == (3, 7, "origSz 1.5", "origSz 2.0")
    [orphan] = book.apply_block(4, 400, [], [diff(8, "A", "101.0", {"new": {"sz": "1.0"}})])
    assert orphan.expected == "the order's status line in the same block"
    snapshot = L4Book.from_snapshot("BTC", 5, 500, [{**status_line(7, "B", "100.0", "1.5")["order"], "user": USER}], [])
    book.reset(snapshot)
    assert book.safe and book.snapshot()["height"] == 5 and [o["sz"] for o in book.orders("B")] == ["1.5"]


def test_a_crossed_book_after_a_block_is_a_desync():
    book = L4Book("BTC")
    found = book.apply_block(1, 100, [status_line(1, "B", "101.0", "1.0"), status_line(2, "A", "100.0", "1.0")],
                             [diff(1, "B", "101.0", {"new": {"sz": "1.0"}}), diff(2, "A", "100.0", {"new": {"sz": "1.0"}})])
    assert [d.expected for d in found] == ["best bid below best ask"] and not book.safe


def test_significant_figures_round_bids_down_and_asks_up():
    bids = [{**status_line(i, "B", px, "0.5")["order"], "user": USER} for i, px in enumerate(["106217.0", "106215.0", "106193.0"], 1)]
    asks = [{**status_line(i, "A", px, "0.25")["order"], "user": USER} for i, px in enumerate(["106233.0", "106258.0"], 10)]
    book = L4Book.from_snapshot("BTC", 1, 100, bids, asks)
    l2 = book.l2(20, n_sig_figs=4)
    assert l2["levels"] == [[{"px": "106200.0", "sz": "1.0", "n": 2}, {"px": "106100.0", "sz": "0.5", "n": 1}], [{"px": "106300.0", "sz": "0.5", "n": 2}]]
    assert book.l2(20, n_sig_figs=5, mantissa=5)["levels"][0][0] == {"px": "106200.0", "sz": "1.0", "n": 2}  # $50 steps at 5 figures
    assert book.l2(20, n_sig_figs=5)["levels"][1][0] == {"px": "106240.0", "sz": "0.25", "n": 1}  # asks round up


NODE_KEYS = ("coin", "side", "limitPx", "sz", "oid", "timestamp", "triggerCondition", "isTrigger", "triggerPx", "children", "isPositionTpsl", "reduceOnly", "orderType", "origSz", "tif", "cloid")
odd_values = {
    "isTrigger": st.sampled_from([False, True, 0, 1, None]), "isPositionTpsl": st.sampled_from([False, True, 0, None]), "reduceOnly": st.sampled_from([False, True, 1]),
    "triggerPx": st.sampled_from(["0.0", "101.5", 0, None, True, 1]), "children": st.sampled_from([[], [{"oid": 1}], None, "[]"]), "tif": st.sampled_from(["Gtc", "Alo", None, 5]),
    "triggerCondition": st.sampled_from(["N/A", "Price above 101"]), "orderType": st.sampled_from(["Limit", "Stop Limit"]), "origSz": st.sampled_from(["1.5", "0.25", None]),
    "cloid": st.sampled_from([None, "0x" + "12" * 16]), "timestamp": st.integers(0, 2**45),
}


@st.composite
def order_fields(draw: Any) -> dict[str, Any]:
    """A status line's order, as a node writes it or not: odd values, keys missing, a key more."""
    order = {"coin": "BTC", "side": "B", "limitPx": "100.5", "sz": "1.5", "oid": 7}
    for key in NODE_KEYS[5:]:
        if not draw(st.integers(0, 9)) == 0:  # a tenth of the keys missing
            order[key] = draw(odd_values[key])
    if draw(st.booleans()) and draw(st.booleans()):
        order["extra"] = "kept as it came"
    return order


@st.composite
def given_orders(draw: Any) -> dict[str, Any]:
    """A snapshot's order dict: the book server's shape, or one a little off it."""
    order = {"user": draw(st.sampled_from([USER, None])), "coin": draw(st.sampled_from(["BTC", "ETH"])), "side": "A", "limitPx": "100.5", "sz": "1.5", "oid": draw(st.sampled_from([7, "7"])),
             **{k: draw(odd_values[k]) for k in ("timestamp", "triggerCondition", "isTrigger", "triggerPx", "isPositionTpsl", "reduceOnly", "orderType", "tif", "cloid")}}
    if draw(st.booleans()):
        order["children"] = draw(odd_values["children"])
    return order


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(order_fields(), given_orders()), min_size=1, max_size=4), st.sampled_from(["1.5", "0.75"]))
def test_an_order_shows_the_same_once_settled(drawn, size):
    """A resting order made compact (``settle``) shows exactly what it showed as it came: its
    book-server shape, a checkpoint's full shape and each field, with types (``False`` is not ``0``)."""
    import orjson

    from replay.l4.checkpoints import ORDER_FIELDS
    from schemas.l4.book import _Resting

    made = [(_Resting(7, 0, "100.5", "1.5", USER, base, None), _Resting(7, 1, "100.5", "1.5", order["user"], order, order)) for base, order in drawn]  # shapes shared between them
    for resting in [r for pair in made for r in pair]:
        resting.resize(size)
        before = [resting.whole("BTC"), resting.full("BTC", ORDER_FIELDS), [resting.get(k) for k in (*NODE_KEYS[5:], "extra")], resting.given]
        resting.settle()
        resting.settle()
        after = [resting.whole("BTC"), resting.full("BTC", ORDER_FIELDS), [resting.get(k) for k in (*NODE_KEYS[5:], "extra")], resting.given]
        assert orjson.dumps(after) == orjson.dumps(before)
        assert resting.whole("BTC") is not resting.whole("BTC")  # a new dict each time: the caller may keep it


def test_a_value_equal_to_a_shared_one_but_of_another_type_stays_as_it_came():
    """``True == 1`` and ``False == 0``: an order whose field is the number is never shown with the
    flag of a shape made before it, in any field."""
    import orjson

    from schemas.l4.book import _Resting

    node = {"coin": "BTC", "side": "B", "limitPx": "1.0", "sz": "1.0", "oid": 1, "timestamp": 1, "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0",
            "children": [], "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit", "origSz": "1.0", "tif": "Gtc", "cloid": None}
    for key in ("triggerCondition", "isTrigger", "triggerPx", "isPositionTpsl", "reduceOnly", "orderType", "tif"):
        for flag, number in ((True, 1), (False, 0)):
            first, second = _Resting(1, 0, "1.0", "1.0", USER, node | {key: flag}, None), _Resting(2, 0, "1.0", "1.0", USER, node | {key: number}, None)
            first.settle()
            second.settle()
            assert orjson.dumps(second.whole("BTC")) == orjson.dumps(_Resting(2, 0, "1.0", "1.0", USER, node | {key: number}, None).whole("BTC"))
            assert second.whole("BTC")[key] is number


def test_an_order_with_children_never_takes_the_shape_of_one_without():
    """A shape is shared by orders of equal values: children ``[]``, a text, none and some are
    told apart, and an order with some keeps its dict."""
    from replay.l4.checkpoints import ORDER_FIELDS
    from schemas.l4.book import _Resting

    node = {"coin": "BTC", "side": "B", "limitPx": "1.0", "sz": "1.0", "oid": 1, "timestamp": 1, "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0",
            "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit", "origSz": "1.0", "tif": "Gtc", "cloid": None}
    for children in (None, [], "[]", [{"oid": 9}], None, "[]", [], [{"oid": 9}]):
        base = node if children is None else node | {"children": children}
        resting = _Resting(1, 0, "1.0", "1.0", USER, base, None)
        resting.settle()
        assert resting.full("BTC", ORDER_FIELDS)[0]["children"] == children
        assert (type(resting.rest) is dict) == (children == [{"oid": 9}])
