"""Layout checks of the PDF: tables wider than the text box, near-empty pages.

Used by the tests and when changing the template: it lays the static HTML out with WeasyPrint (the
same engine that writes report.pdf) and measures the boxes, so a problem is found without looking.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PageLayout:
    number: int
    fill: float  # share of the text box's height used, 0-1
    table_overflow_pt: float = 0.0  # how far the widest table sticks out on the right (CSS px), 0 when none
    image_overflow_pt: float = 0.0


@dataclass
class LayoutReport:
    pages: list[PageLayout] = field(default_factory=list)

    @property
    def n_pages(self) -> int:
        return len(self.pages)

    def wide_tables(self, tolerance: float = 0.5) -> list[PageLayout]:
        return [p for p in self.pages if p.table_overflow_pt > tolerance or p.image_overflow_pt > tolerance]

    def near_empty(self, threshold: float = 0.2) -> list[PageLayout]:
        """Pages below ``threshold`` fill, except the title page and the last page."""
        return [p for p in self.pages[1:-1] if p.fill < threshold]


def _content(page_box):
    from weasyprint.formatting_structure import boxes

    for child in page_box.children:
        if isinstance(child, boxes.MarginBox):
            continue
        yield child
        yield from child.descendants()


def layout(html: str, base_url: str | None = None) -> LayoutReport:
    """Lay ``html`` out as the PDF would be and measure every page."""
    import weasyprint

    return measure(weasyprint.HTML(string=html, base_url=base_url).render())


def measure(doc) -> LayoutReport:
    """Measure the pages of a rendered WeasyPrint document (``HTML(...).render()``)."""
    from weasyprint.formatting_structure import boxes

    out = LayoutReport()
    for i, page in enumerate(doc.pages, 1):
        pb = page._page_box
        x0, y0 = pb.content_box_x(), pb.content_box_y()
        x1, y1 = x0 + pb.width, y0 + pb.height
        bottom, t_over, i_over = y0, 0.0, 0.0
        for b in _content(pb):
            if isinstance(b, boxes.TableBox):
                t_over = max(t_over, b.position_x + b.margin_width() - x1)
            if isinstance(b, boxes.ReplacedBox):
                i_over = max(i_over, b.position_x + b.margin_width() - x1)
            if isinstance(b, (boxes.LineBox, boxes.ReplacedBox, boxes.TableBox)):
                bottom = max(bottom, b.position_y + b.margin_height())
        out.pages.append(
            PageLayout(i, min(1.0, (bottom - y0) / (y1 - y0)), max(0.0, t_over), max(0.0, i_over))
        )
    return out


__all__ = ["layout", "measure", "LayoutReport", "PageLayout"]
