"""The card that frames one KPI table or chart on the pipeline and activity pages."""

from django import template
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_block_tag(takes_context=True)
def kpi_card(context, content, *, heading_id, kpi, table, column_class, title=None) -> SafeString:
    """Render `content` in a card headed by the KPI's title, export links and definition.

    `title` replaces `kpi.label` where the heading is worded differently. `table` is the export
    table's key, and `column_class` sets the card's grid column.
    """
    card = context.template.engine.get_template("dashboards/_kpi_card.html")
    return card.render(
        context.new(
            {
                "content": content,
                "heading_id": heading_id,
                "kpi": kpi,
                "table": table,
                "column_class": column_class,
                "title": kpi.label if title is None else title,
                # The export links build their URLs from these two.
                "request": context.get("request"),
                "organization": context.get("organization"),
            }
        )
    )
