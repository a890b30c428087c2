"""The dashboard's small pure pieces: rates, limits, number policy, CSV cells, chart, filters."""

from __future__ import annotations

import itertools

import pytest
from werkzeug.datastructures import MultiDict

from config import ConfigError
from dashboard import chart, limits, phone
from dashboard.export import neutralise, to_csv
from dashboard.filters import DisconnectFilter, FilterError, parse_time
from dashboard.settings import parse_rates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5/hour", [(5, 3600)]),
        ("100/hour,500/day", [(100, 3600), (500, 86400)]),
        ("3/10min", [(3, 600)]),
        (" 1 / 30 s ", [(1, 30)]),
        ("2/hours", [(2, 3600)]),
        ((4, 60), [(4, 60)]),
    ],
)
def test_parse_rates(value, expected):
    assert parse_rates("X", value) == expected


@pytest.mark.parametrize("value", ["", "lots", "5", "5/fortnight", "5/0min", "-1/hour"])
def test_parse_rates_names_the_setting(value):
    with pytest.raises(ConfigError, match="X"):
        parse_rates("X", value)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        (None, "unknown"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_client_key(address, key):
    assert limits.client_key(address) == key


class CountingStore:
    """hit_rate_limit with the store's fixed-window semantics, in memory."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, int], int] = {}

    def hit_rate_limit(self, key, window_seconds, limit, now=None):
        start = int(now // window_seconds) * window_seconds
        self.hits[key, start] = self.hits.get((key, start), 0) + 1
        return self.hits[key, start] <= limit


@pytest.mark.parametrize("offset", [0.0, 99.0, 150.0, 199.0, 299.0])
def test_cooldown_never_allows_two_hits_closer_than_its_seconds(monkeypatch, offset):
    store = CountingStore()
    clock = [1_000_000.0 + offset]
    monkeypatch.setattr(limits.time, "time", lambda: clock[0])
    allowed = []
    for _ in range(100):  # one try every 10 s for 1000 s, cooldown 100 s
        if limits.cooldown(store, "k", 100):
            allowed.append(clock[0])
        clock[0] += 10
    gaps = [b - a for a, b in itertools.pairwise(allowed)]
    assert gaps and min(gaps) >= 100
    assert max(gaps) <= 3 * 100 + 10  # never locked out: 3x the cooldown + the retry interval


def test_retry_after_is_within_the_window():
    assert limits.retry_after([(5, 3600)], now=3600 * 10 + 600) == 3000
    assert limits.retry_after([(5, 60), (9, 3600)], now=30) == 3570


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("(202) 555-0123", "+12025550123"),
        ("202 555 0123", "+12025550123"),
        ("+1 (613) 555-0123", "+16135550123"),
        ("tel:+12025550123", "+12025550123"),
        (
            "\uff11\uff12\uff10\uff12\uff15\uff15\uff15\uff10\uff11\uff12\uff13",
            "+12025550123",
        ),  # full-width digits,
    ],
)
def test_national_and_international_forms(typed, e164):
    assert phone.normalise(typed, ["US", "CA"]) == e164


def test_regions_setting():
    assert phone.regions("us, ca,") == ["US", "CA"]
    assert phone.regions(["GB"]) == ["GB"]
    with pytest.raises(phone.NumberRefused, match="not available"):
        phone.normalise("+12025550123", phone.regions(""))


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+12025550123", "'+12025550123"),
        ("-5", "'-5"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        (None, ""),
        (486, "486"),
    ],
)
def test_neutralise(value, cell):
    assert neutralise(value) == cell


def test_csv_has_a_header_and_crlf_lines():
    text = to_csv([{"id": 1, "cause": "busy"}])
    assert text.startswith("id,receivedAtIso,")
    assert text.count("\r\n") == 2


def test_chart_geometry():
    base = 1_700_000_000 // 3600 * 3600
    rollup = [(base, "busy", 3), (base, "timeout", 1), (base + 3600, "busy", 2)]
    graph = chart.build(rollup, base, base + 24 * 3600)
    assert graph.bucket_seconds == 3600
    assert graph.total == 6
    assert [(c, n) for c, _, n in graph.legend] == [("busy", 5), ("timeout", 1)]
    assert len(graph.bars) == 3
    first_stack = [b for b in graph.bars if b.x == graph.bars[0].x]
    assert sum(b.height for b in first_stack) <= graph.baseline
    assert all(b.y >= 0 and b.height > 0 for b in graph.bars)
    wide = chart.build(rollup, base, base + 90 * 86400)
    assert wide.bucket_seconds > 3600
    assert len({b.x for b in wide.bars}) == 1  # both hours fall into one wide bar
    assert chart.colour("some-new-cause") == chart.colour("some-new-cause")


def test_filter_round_trips_through_query_args():
    args = MultiDict(
        [
            ("cause", "busy"),
            ("cause", "timeout"),
            ("since", "2024-05-01"),
            ("number", "(202) 555-0123"),
            ("tag", "t"),
            ("errorId", "e"),
            ("before_id", "10"),
            ("limit", "20"),
        ]
    )
    parsed = DisconnectFilter.from_args(args)
    assert parsed.number == "+12025550123"
    again = DisconnectFilter.from_args(MultiDict(list(_flatten(parsed.query_args()))))
    assert again == parsed


def _flatten(args):
    for key, value in args.items():
        for item in value if isinstance(value, list) else [value]:
            yield key, str(item)


def test_parse_time_forms():
    assert parse_time("since", "1970-01-02") == 86400
    assert parse_time("since", "1970-01-01T01:00:00+01:00") == 0
    assert parse_time("since", "86400.5") == 86400.5
    with pytest.raises(FilterError, match="since"):
        parse_time("since", "tomorrow")


@pytest.mark.parametrize(
    ("iso", "shown"),
    [
        ("PT3S", "3 s"),
        ("PT13.67S", "13.67 s"),
        ("PT1M34.0S", "1 min 34 s"),
        ("PT83.5S", "1 min 23.5 s"),
        ("PT3600S", "1 h 0 min 0 s"),
        ("PT", "PT"),  # not a duration: shown as it came
        ("3 seconds", "3 seconds"),
        (None, None),
    ],
)
def test_recording_durations_read_as_seconds(iso, shown):
    from callbacks.payload import readable_duration

    assert readable_duration(iso) == shown


def _lab(colour: str, sees: tuple[tuple[float, ...], ...] | None = None) -> tuple[float, ...]:
    """CIE L*a*b* of an sRGB colour, as seen with a colour vision deficiency (``sees``: a
    Machado et al. 2009 matrix on linear RGB) or without."""
    rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    rgb = [((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92 for c in rgb]
    if sees is not None:
        rgb = [
            min(1.0, max(0.0, sum(m * c for m, c in zip(row, rgb, strict=True)))) for row in sees
        ]
    r, g, b = rgb
    xyz = (
        (r * 0.4124 + g * 0.3576 + b * 0.1805) / 0.95047,
        r * 0.2126 + g * 0.7152 + b * 0.0722,
        (r * 0.0193 + g * 0.1192 + b * 0.9505) / 1.08883,
    )
    fx, fy, fz = (t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _delta_e(a: str, b: str, sees=None) -> float:
    return sum((p - q) ** 2 for p, q in zip(_lab(a, sees), _lab(b, sees), strict=True)) ** 0.5


DEUTERANOPIA = ((0.367, 0.861, -0.228), (0.280, 0.673, 0.047), (-0.012, 0.043, 0.969))
PROTANOPIA = ((0.152, 1.053, -0.205), (0.115, 0.786, 0.099), (-0.004, -0.048, 1.052))


def test_every_category_has_its_own_colour_in_the_chart():
    import itertools

    from dashboard import chart

    for a, b in itertools.combinations(chart.COLOURS, 2):
        assert _delta_e(chart.COLOURS[a], chart.COLOURS[b]) >= 20, (a, b)
    # Once three shades of purple: apart for red-green colour blindness too.
    for a, b in itertools.combinations(("invalid-bxml", "invalid-reply", "timeout"), 2):
        for sees in (None, DEUTERANOPIA, PROTANOPIA):
            assert _delta_e(chart.colour(a), chart.colour(b), sees) >= 40, (a, b, sees)
