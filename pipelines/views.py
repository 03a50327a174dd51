"""Deal list (the drill-down target of every KPI number) and deal detail."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

from dashboards.analytics.drilldown import analysis_label, analysis_parse
from dashboards.forms import METRIC_LABELS, DealFilterForm
from dashboards.models import Grain
from dashboards.templatetags.spm_format import period_name
from pipelines.models import DealStatus
from pipelines.scoring.next_steps import (
    NEXT_STEPS_CACHE_SECONDS,
    next_steps_cache_key,
    next_steps_from_cache,
)
from pipelines.scoring.selectors import deal_score_get, deal_scores_attach, win_model_current
from pipelines.scoring.wording import factors_text
from pipelines.selectors import (
    deal_get_visible,
    deal_list_visible,
    deal_stage_history,
    deal_totals_cached,
    owner_choices_visible,
    stage_list,
    team_list_visible,
    territory_get,
)
from spm.tenancy import visible_team_and_member_ids

DEALS_PER_PAGE = 50


class SkipJoinsPaginator(Paginator):
    """Pick a page's rows by id in a subquery, so the joined owner, account and stage are read for 50 rows.

    With a plain OFFSET, PostgreSQL joined every skipped row as well (page 100
    joined 5,000 rows to show 50); the subquery walks the sort index alone.
    Still one query per page.
    """

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        page_ids = self.object_list.values("pk")[bottom : bottom + self.per_page]
        return self._get_page(self.object_list.filter(pk__in=page_ids), number, self)


def deal_list(request, org_slug):
    organization, membership = request.organization, request.membership
    visible = visible_team_and_member_ids(membership)
    visible_member_ids = visible[1]
    form = DealFilterForm(request.GET, organization=organization)
    teams = team_list_visible(membership=membership, visible=visible)
    context = {
        "form": form,
        "teams": teams,
        "team_names": _team_names(membership, teams),
        "stages": stage_list(),
        "owners": owner_choices_visible(visible_member_ids=visible_member_ids),
        "statuses": DealStatus.choices,
        "metric_labels": METRIC_LABELS,
    }

    status = 200
    if form.is_valid():
        filters = form.filters()
        errors = _filter_id_errors(filters, context)
    else:
        errors = form.error_messages_flat()
    if not errors:
        deals = deal_list_visible(organization=organization, visible_member_ids=visible_member_ids, filters=filters)
        totals = deal_totals_cached(
            deals, organization=organization, visible_member_ids=visible_member_ids, filters=filters
        )
        paginator = SkipJoinsPaginator(deals, DEALS_PER_PAGE)
        # The totals already counted the rows, so Paginator need not run COUNT again.
        paginator.count = totals.count
        context.update(
            filters=filters,
            totals=totals,
            page=paginator.get_page(request.GET.get("page")),
            chips=_filter_chips(request, filters, context),
            win_model=win_model_current(),
        )
        # The list shows each score's largest factor only.
        deal_scores_attach(context["page"], currency=organization.currency, max_reasons=1)
    else:
        status = 400
        context.update(errors=errors, chips=[])

    template_name = "pipelines/deal_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template_name += "#deal-results"
    else:
        # Next steps sit above the filtered list and stay when htmx swaps the results.
        win_model = context["win_model"] if "win_model" in context else win_model_current()
        context.update(_next_steps_context(organization, visible_member_ids=visible_member_ids, win_model=win_model))
    response = render(request, template_name, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _next_steps_context(organization, *, visible_member_ids, win_model) -> dict:
    """Return the ranking and its cache key, which the template also caches the rendered section under.

    Rendering the ten ranked deals took about 4 ms per request (measured in-process).
    The key changes with the deals' data version, the model run, the day and the visibility.
    """
    now = timezone.now()
    key = next_steps_cache_key(
        organization=organization,
        visible_member_ids=visible_member_ids,
        now=now,
        model_run_id=win_model.pk if win_model else None,
    )
    return {
        "next_steps": next_steps_from_cache(
            key=key, organization=organization, visible_member_ids=visible_member_ids, now=now
        ),
        "next_steps_cache_key": key,
        "next_steps_cache_seconds": NEXT_STEPS_CACHE_SECONDS,
    }


def deal_detail(request, org_slug, pk):
    deal = deal_get_visible(membership=request.membership, deal_id=pk)
    history = deal_stage_history(deal=deal)
    win_score = deal_score_get(deal_id=deal.pk)
    context = {
        "deal": deal,
        "history": history,
        "win_score": win_score,
        "win_reasons": factors_text(win_score.factors, currency=request.organization.currency) if win_score else [],
        "win_model": win_model_current(),
    }
    return render(request, "pipelines/deal_detail.html", context)


def _team_names(membership, teams) -> dict[int, str]:
    """Return {id: name} of the teams the member may filter by: the visible teams and their own team.

    team_list_visible gives a rep no team, but a rep may narrow their own deals to their own team.
    """
    names = {team.pk: team.name for team in teams}
    if membership.team_id is not None and membership.team_id not in names:
        names[membership.team_id] = membership.team.name
    return names


def _filter_id_errors(filters, context) -> list[str]:
    """Return a message for every id in `filters` that names nothing the member may filter by.

    An unknown id would match no deal and look like an empty result, so it is reported
    as the dashboard reports an unknown team.
    """
    errors = []
    owner_ids = {owner.pk for owner in context["owners"]}
    team_names = context["team_names"]
    for team_id in filters.team_ids:
        if team_id not in team_names:
            errors.append(_("No team with id %(team)s among your teams; pick one from the list.") % {"team": team_id})
    if filters.stage_id is not None and filters.stage_id not in {stage.pk for stage in context["stages"]}:
        errors.append(
            _("No stage with id %(stage)s in this organization; pick one from the list.") % {"stage": filters.stage_id}
        )
    if filters.owner_id is not None and filters.owner_id not in owner_ids:
        errors.append(
            _("No owner with id %(owner)s among the people you may see; pick one from the list.")
            % {"owner": filters.owner_id}
        )
    if filters.grain == Grain.REP and filters.subject_id not in owner_ids:
        errors.append(
            _("No rep with id %(subject)s among the people you may see; remove grain and subject or fix the id.")
            % {"subject": filters.subject_id}
        )
    elif filters.grain == Grain.TEAM and filters.subject_id not in team_names:
        errors.append(
            _("No team with id %(team)s among your teams; pick one from the list.") % {"team": filters.subject_id}
        )
    elif filters.grain == Grain.TERRITORY and territory_get(territory_id=filters.subject_id) is None:
        errors.append(
            _("No territory with id %(subject)s in this organization; remove grain and subject or fix the id.")
            % {"subject": filters.subject_id}
        )
    return errors


def _filter_chips(request, filters, context) -> list[tuple[str, str]]:
    """Return (text, URL without that filter) for every active filter, for the removable chips."""
    chips = []
    if filters.analysis:
        text = f"{analysis_label(analysis_parse(filters.analysis, filters.analysis_key, filters.period))}"
        if filters.period is not None:
            text += f" · {period_name(filters.period)}"
        chips.append((text, _url_without(request, "period", "analysis", "key")))
    elif filters.period is not None:
        text = f"{METRIC_LABELS[filters.metric]}: {period_name(filters.period)}"
        chips.append((text, _url_without(request, "period", "metric")))
    if filters.grain:
        chips.append((_subject_text(filters, context, request.organization), _url_without(request, "grain", "subject")))
    team_names = context["team_names"]
    for team_id in filters.team_ids:
        text = _("Team: %(name)s") % {"name": team_names.get(team_id, f"#{team_id}")}
        chips.append((text, _url_without(request, "team", value=str(team_id))))
    if filters.stage_id is not None:
        stage_names = {stage.pk: stage.name for stage in context["stages"]}
        text = _("Stage: %(name)s") % {"name": stage_names.get(filters.stage_id, f"#{filters.stage_id}")}
        chips.append((text, _url_without(request, "stage")))
    if filters.status:
        text = _("Status: %(name)s") % {"name": DealStatus(filters.status).label}
        chips.append((text, _url_without(request, "status")))
    if filters.owner_id is not None:
        owner_names = {owner.pk: owner.display_name for owner in context["owners"]}
        text = _("Owner: %(name)s") % {"name": owner_names.get(filters.owner_id, f"#{filters.owner_id}")}
        chips.append((text, _url_without(request, "owner")))
    if filters.search:
        chips.append((_("Search: %(text)s") % {"text": filters.search}, _url_without(request, "q")))
    return chips


def _subject_text(filters, context, organization) -> str:
    if filters.grain == Grain.ORGANIZATION:
        return _("Organization: %(name)s") % {"name": organization.name}
    if filters.grain == Grain.REP:
        names = {owner.pk: owner.display_name for owner in context["owners"]}
        return _("Rep: %(name)s") % {"name": names.get(filters.subject_id, f"#{filters.subject_id}")}
    if filters.grain == Grain.TEAM:
        names = context["team_names"]
        return _("Team: %(name)s") % {"name": names.get(filters.subject_id, f"#{filters.subject_id}")}
    territory = territory_get(territory_id=filters.subject_id)
    name = territory.name if territory is not None else f"#{filters.subject_id}"
    return _("Territory: %(name)s") % {"name": name}


def _url_without(request, *names, value=None) -> str:
    """Return the current query string without the named parameters (or only one `value` of one)."""
    query = request.GET.copy()
    query.pop("page", None)
    for name in names:
        if value is None:
            query.pop(name, None)
        else:
            query.setlist(name, [item for item in query.getlist(name) if item != value])
    encoded = query.urlencode()
    return f"{request.path}?{encoded}" if encoded else request.path
