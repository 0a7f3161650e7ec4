from html.parser import HTMLParser

import polars as pl

from gpufleet.dashboards.html_table import CLASS, html_table


class Cells(HTMLParser):
    """The table's cells as (tag, class, text), and the scroll box's style."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str, str]] = []
        self.box_style = ""
        self._open: tuple[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and a.get("class") == CLASS:
            self.box_style = a.get("style") or ""
        if tag in ("th", "td"):
            self._open = (tag, a.get("class") or "")
            self.cells.append((tag, a.get("class") or "", ""))

    def handle_data(self, data):
        if self._open:
            tag, cls, text = self.cells[-1]
            self.cells[-1] = (tag, cls, text + data)

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._open = None


def parse(markup: str) -> Cells:
    p = Cells()
    p.feed(markup)
    return p


def test_headers_and_values_in_order_numbers_right_aligned():
    shown = pl.DataFrame({"team": ["ml", "search"], "cost": ["1,200", "30"]})
    cells = parse(html_table(shown, {"cost"})).cells
    assert cells == [("th", "", "team"), ("th", "num", "cost"),
                     ("td", "", "ml"), ("td", "num", "1,200"), ("td", "", "search"), ("td", "num", "30")]


def test_labels_from_the_store_are_escaped_not_markup():
    shown = pl.DataFrame({"<b>ns</b>": ['<script>alert("x")</script>', "a & b"]})
    markup = html_table(shown, set())
    assert "<script>" not in markup and "<b>" not in markup
    assert [c[2] for c in parse(markup).cells] == ["<b>ns</b>", '<script>alert("x")</script>', "a & b"]


def test_null_is_an_empty_cell_and_a_long_table_scrolls():
    shown = pl.DataFrame({"node": ["n1", None]})
    assert [c[2] for c in parse(html_table(shown, set())).cells] == ["node", "n1", ""]
    assert parse(html_table(shown, set())).box_style == ""
    assert "max-height:440px" in parse(html_table(shown, set(), max_height=440)).box_style


def test_empty_frame_keeps_its_header():
    cells = parse(html_table(pl.DataFrame(schema={"gpu": pl.String}), set())).cells
    assert cells == [("th", "", "gpu")]


def test_headings_come_from_the_header_function():
    shown = pl.DataFrame({"total_usd": ["1.00"]})
    assert parse(html_table(shown, {"total_usd"}, header=str.upper)).cells[0] == ("th", "num", "TOTAL_USD")
