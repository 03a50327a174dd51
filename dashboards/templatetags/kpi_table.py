"""The cells of a KPI table row in one tag call, for tables with hundreds of rows.

The dashboard's rep table has a row per rep and eleven cells per row. As a
template loop, each cell cost several template nodes; this tag writes the same
`<td>` elements from Python.
"""

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from dashboards.scorecards import KpiLine
from dashboards.templatetags.spm_format import kpi_value

register = template.Library()


@register.simple_tag(takes_context=True)
def kpi_cells(context, line: KpiLine) -> SafeString:
    """Render one `<td class="num">` per cell of `line`: the value in its KPI's format, linked to its deals when it has a URL."""
    cells = []
    for kpi, url in line.cells:
        value = kpi_value(context, line.row, kpi.key)
        if url:
            cells.append(format_html('<td class="num"><a href="{}">{}</a></td>', url, value))
        else:
            cells.append(format_html('<td class="num">{}</td>', value))
    return mark_safe("\n".join(cells))
