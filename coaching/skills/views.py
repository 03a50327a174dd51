"""Skills pages: the rubric (admins), a member's assessments with history and gaps, development plans."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import BaseForm
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from coaching.skills import selectors, services
from coaching.skills.charts import skill_history_charts
from coaching.skills.forms import (
    AssessmentForm,
    CompetencyDeleteForm,
    CompetencyForm,
    GoalDeleteForm,
    GoalForm,
    PlanDeleteForm,
    PlanForm,
    TrainingItemDeleteForm,
    TrainingItemForm,
)
from coaching.skills.models import (
    Competency,
    DevelopmentGoal,
    DevelopmentPlan,
    TrainingItem,
)
from goals.attainment import organization_today
from pipelines.selectors import membership_list_visible
from spm.http import lookup_then_post_only
from spm.models import Role
from spm.security import admin_required, role_required
from spm.tenancy import get_visible_or_404, membership_ids_visible

# Only managers and admins edit development plans.
leader_required = role_required(Role.ADMIN, Role.MANAGER)


def _competency_or_404(competency_id: int) -> Competency:
    competency = Competency.objects.prefetch_related("levels").filter(pk=competency_id).first()
    if competency is None:
        raise Http404("No competency with this id in this organization.")
    return competency


def _competency_lookup(request, competency_id):
    return {"competency": _competency_or_404(competency_id)}


@admin_required
def rubric(request, org_slug):
    form = CompetencyForm(request.POST or None, initial={"order": len(selectors.competency_list()) + 1})
    if request.method == "POST" and form.is_valid():
        fields, levels = form.split()
        try:
            competency = services.competency_save(
                organization=request.organization, actor=request.membership, competency=None, fields=fields, levels=levels
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            # Competency.name is the name in the page's language.
            messages.success(request, gettext("Competency %(name)s added.") % {"name": competency.name})
            return redirect("skills_rubric", org_slug=org_slug)
    context = {"competencies": selectors.competency_list(), "form": form}
    return render(request, "coaching/skills/rubric.html", context, status=400 if form.errors else 200)


@admin_required
@require_POST
def rubric_default(request, org_slug):
    added = services.rubric_load_default(organization=request.organization, actor=request.membership)
    if added:
        messages.success(request, gettext("%(count)s competencies of the default rubric added.") % {"count": added})
    else:
        messages.info(request, gettext("The rubric already contains every default competency."))
    return redirect("skills_rubric", org_slug=org_slug)


@admin_required
def competency_edit(request, org_slug, competency_id):
    competency = _competency_or_404(competency_id)
    form = CompetencyForm(request.POST or None, initial=CompetencyForm.initial_for(competency))
    if request.method == "POST" and form.is_valid():
        fields, levels = form.split()
        try:
            saved = services.competency_save(
                organization=request.organization,
                actor=request.membership,
                competency=competency,
                fields=fields,
                levels=levels,
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, gettext("Competency %(name)s saved.") % {"name": saved.name})
            return redirect("skills_rubric", org_slug=org_slug)
    delete_form = CompetencyDeleteForm(rating_count=competency.ratings.count())
    context = {"competency": competency, "form": form, "delete_form": delete_form}
    return render(request, "coaching/skills/competency.html", context, status=400 if form.errors else 200)


@admin_required
@lookup_then_post_only(_competency_lookup)
def competency_delete(request, org_slug, competency):
    """Delete a competency with every rating given on it once the confirmation box is ticked."""
    form = CompetencyDeleteForm(request.POST, rating_count=competency.ratings.count())
    if not form.is_valid():
        edit_form = CompetencyForm(initial=CompetencyForm.initial_for(competency))
        context = {"competency": competency, "form": edit_form, "delete_form": form}
        return render(request, "coaching/skills/competency.html", context, status=400)
    name = competency.name
    services.competency_delete(organization=request.organization, actor=request.membership, competency=competency)
    messages.success(request, gettext("Competency %(name)s deleted with its ratings.") % {"name": name})
    return redirect("skills_rubric", org_slug=org_slug)


def skills_home(request, org_slug):
    """List the members whose skills the viewer may open; for a rep that is only themselves."""
    membership = request.membership
    members = membership_list_visible(visible_member_ids=membership_ids_visible(membership))
    return render(request, "coaching/skills/home.html", {"members": members})


def member_skills(request, org_slug, member_id):
    member = selectors.member_get_visible(viewer=request.membership, member_id=member_id)
    competencies = selectors.competency_list()
    assessments = selectors.assessment_list(member=member)
    viewer = request.membership
    context = {
        "member": member,
        "competencies": competencies,
        "assessments": list(reversed(assessments)),
        "gaps": selectors.skill_gaps(competencies=competencies, assessments=assessments),
        "charts": skill_history_charts(competencies=competencies, assessments=assessments),
        "can_assess": viewer.pk == member.pk or viewer.role in (Role.ADMIN, Role.MANAGER),
        "is_self": viewer.pk == member.pk,
        "can_plan": viewer.pk != member.pk and viewer.role in (Role.ADMIN, Role.MANAGER),
        "plans": selectors.plan_list_visible(viewer=viewer).filter(member=member),
    }
    return render(request, "coaching/skills/member.html", context)


def assess(request, org_slug, member_id):
    member = selectors.member_get_visible(viewer=request.membership, member_id=member_id)
    try:
        kind = services.assessment_kind_for(assessor=request.membership, member=member)
    except PermissionDenied:
        raise Http404("This member cannot record an assessment of that member.") from None
    competencies = selectors.competency_list()
    today = organization_today(request.organization)
    form = AssessmentForm(request.POST or None, competencies=competencies, today=today, initial={"assessed_on": today})
    if request.method == "POST" and form.is_valid():
        try:
            services.assessment_create(
                organization=request.organization,
                assessor=request.membership,
                member=member,
                assessed_on=form.cleaned_data["assessed_on"],
                levels=form.levels(),
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, gettext("Assessment saved."))
            return redirect("skills_member", org_slug=org_slug, member_id=member.pk)
    context = {"member": member, "form": form, "kind": kind, "competencies": competencies}
    return render(request, "coaching/skills/assess.html", context, status=400 if form.errors else 200)


def plan_list(request, org_slug):
    plans = selectors.plan_list_visible(viewer=request.membership)
    return render(request, "coaching/skills/plan_list.html", {"plans": plans})


@leader_required
def plan_new(request, org_slug, member_id):
    member = selectors.member_get_visible(viewer=request.membership, member_id=member_id)
    if member.pk == request.membership.pk:
        raise Http404("Development plans are set up by the member's manager.")
    plan_form = PlanForm(request.POST or None, prefix="plan")
    # The baseline is measured once per request: by the service that saves the plan or, when
    # the plan form has errors and nothing is saved, by the goal form, so all errors show at once.
    goal_form_member = None if plan_form.is_valid() else member
    goal_form = GoalForm(
        request.POST or None, organization=request.organization, member=goal_form_member, prefix="goal"
    )
    if request.method == "POST" and plan_form.is_valid() and goal_form.is_valid():
        try:
            plan = services.plan_create_with_goal(
                organization=request.organization,
                creator=request.membership,
                member=member,
                title=plan_form.cleaned_data["title"],
                goal=goal_form.cleaned_data,
            )
        except ValidationError as error:
            goal_form.add_error(None, error)
        else:
            messages.success(request, gettext("Development plan created."))
            return redirect("plan_detail", org_slug=org_slug, plan_id=plan.pk)
    context = {"member": member, "plan_form": plan_form, "goal_form": goal_form}
    status = 400 if plan_form.errors or goal_form.errors else 200
    return render(request, "coaching/skills/plan_new.html", context, status=status)


def _plan_context(request, plan, *, goal_form=None, item_form=None) -> dict:
    viewer = request.membership
    today = organization_today(request.organization)
    can_edit = viewer.pk != plan.member_id and viewer.role in (Role.ADMIN, Role.MANAGER)
    return {
        "plan": plan,
        "goals": selectors.goal_progress_list(organization=request.organization, plan=plan),
        "items": list(plan.training_items.select_related("done_by__user")),
        "can_edit": can_edit,
        "goal_form": goal_form or GoalForm(organization=request.organization, prefix="goal"),
        "item_form": item_form or TrainingItemForm(prefix="item", today=today),
        "today": today,
    }


def plan_detail(request, org_slug, plan_id):
    plan = selectors.plan_get_visible(viewer=request.membership, plan_id=plan_id)
    return render(request, "coaching/skills/plan_detail.html", _plan_context(request, plan))


def _plan_lookup(request, plan_id):
    return {"plan": selectors.plan_get_visible(viewer=request.membership, plan_id=plan_id)}


@leader_required
@lookup_then_post_only(_plan_lookup)
def plan_goal_add(request, org_slug, plan):
    if plan.member_id == request.membership.pk:
        raise Http404("Development plans are set up by the member's manager.")
    # Without `member` the form leaves the baseline to plan_goal_add, which measures it once.
    form = GoalForm(request.POST, organization=request.organization, prefix="goal")
    if form.is_valid():
        try:
            services.plan_goal_add(plan=plan, editor=request.membership, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, gettext("Goal added."))
            return redirect("plan_detail", org_slug=org_slug, plan_id=plan.pk)
    return render(request, "coaching/skills/plan_detail.html", _plan_context(request, plan, goal_form=form), status=400)


@leader_required
@lookup_then_post_only(_plan_lookup)
def plan_item_add(request, org_slug, plan):
    if plan.member_id == request.membership.pk:
        raise Http404("Development plans are set up by the member's manager.")
    form = TrainingItemForm(request.POST, prefix="item", today=organization_today(request.organization))
    if not form.is_valid():
        return render(request, "coaching/skills/plan_detail.html", _plan_context(request, plan, item_form=form), status=400)
    services.training_item_add(plan=plan, editor=request.membership, **form.cleaned_data)
    messages.success(request, gettext("Training item added."))
    return redirect("plan_detail", org_slug=org_slug, plan_id=plan.pk)


def _item_lookup(request, item_id):
    item = get_visible_or_404(
        TrainingItem.objects.select_related("plan"), request.membership, owner_field="plan__member", pk=item_id
    )
    return {"item": item}


@lookup_then_post_only(_item_lookup)
def plan_item_done(request, org_slug, item):
    """Tick a training item off, or open it again; allowed for everyone who may see the plan, its member included."""
    services.training_item_set_done(item=item, actor=request.membership, is_done=request.POST.get("done") == "1")
    return redirect("plan_detail", org_slug=org_slug, plan_id=item.plan_id)


# --- editing and deleting plans, goals and training items -------------------------------------------
# The same members as for adding: managers and admins who may see the plan's member, never the member.


def _check_not_own_plan(request, plan: DevelopmentPlan) -> None:
    if plan.member_id == request.membership.pk:
        raise Http404("Development plans are set up by the member's manager.")


def _plan_for_editor(request, plan_id: int) -> DevelopmentPlan:
    plan = selectors.plan_get_visible(viewer=request.membership, plan_id=plan_id)
    _check_not_own_plan(request, plan)
    return plan


def _goal_for_editor(request, goal_id: int) -> DevelopmentGoal:
    goal = get_visible_or_404(
        DevelopmentGoal.objects.select_related("plan__member__user", "stage__pipeline"),
        request.membership,
        owner_field="plan__member",
        pk=goal_id,
    )
    _check_not_own_plan(request, goal.plan)
    return goal


def _item_for_editor(request, item_id: int) -> TrainingItem:
    item = get_visible_or_404(
        TrainingItem.objects.select_related("plan__member__user"), request.membership, owner_field="plan__member", pk=item_id
    )
    _check_not_own_plan(request, item.plan)
    return item


def _plan_editor_lookup(request, plan_id):
    return {"plan": _plan_for_editor(request, plan_id)}


def _goal_editor_lookup(request, goal_id):
    return {"goal": _goal_for_editor(request, goal_id)}


def _item_editor_lookup(request, item_id):
    return {"item": _item_for_editor(request, item_id)}


def _render_edit_page(request, template: str, context: dict):
    """Render an edit page with its edit and delete forms; the status is 400 when either form has errors."""
    forms = [value for value in context.values() if isinstance(value, BaseForm)]
    status = 400 if any(form.errors for form in forms) else 200
    return render(request, f"coaching/skills/{template}", context, status=status)


@leader_required
def plan_edit(request, org_slug, plan_id):
    plan = _plan_for_editor(request, plan_id)
    form = PlanForm(request.POST or None, prefix="plan", initial={"title": plan.title})
    if request.method == "POST" and form.is_valid():
        services.plan_update(plan=plan, editor=request.membership, title=form.cleaned_data["title"])
        messages.success(request, gettext("Development plan saved."))
        return redirect("plan_detail", org_slug=org_slug, plan_id=plan.pk)
    context = {"plan": plan, "plan_form": form, "delete_form": PlanDeleteForm()}
    return _render_edit_page(request, "plan_edit.html", context)


@leader_required
@lookup_then_post_only(_plan_editor_lookup)
def plan_delete(request, org_slug, plan):
    """Delete a plan with its goals and training items once the confirmation box is ticked."""
    form = PlanDeleteForm(request.POST)
    if not form.is_valid():
        context = {"plan": plan, "plan_form": PlanForm(prefix="plan", initial={"title": plan.title}), "delete_form": form}
        return _render_edit_page(request, "plan_edit.html", context)
    title = plan.title
    services.plan_delete(plan=plan, editor=request.membership)
    messages.success(request, gettext("Development plan %(title)s deleted.") % {"title": title})
    return redirect("plan_list", org_slug=org_slug)


@leader_required
def plan_goal_edit(request, org_slug, goal_id):
    goal = _goal_for_editor(request, goal_id)
    # Without `member` the form leaves the baseline to plan_goal_update, which measures it once.
    form = GoalForm(request.POST or None, organization=request.organization, prefix="goal", initial=GoalForm.initial_for(goal))
    if request.method == "POST" and form.is_valid():
        try:
            services.plan_goal_update(goal=goal, editor=request.membership, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, gettext("Goal saved."))
            return redirect("plan_detail", org_slug=org_slug, plan_id=goal.plan_id)
    context = {"plan": goal.plan, "goal": goal, "goal_form": form, "delete_form": GoalDeleteForm()}
    return _render_edit_page(request, "goal_edit.html", context)


@leader_required
@lookup_then_post_only(_goal_editor_lookup)
def plan_goal_delete(request, org_slug, goal):
    form = GoalDeleteForm(request.POST)
    if not form.is_valid():
        goal_form = GoalForm(
            organization=request.organization, member=goal.plan.member, prefix="goal", initial=GoalForm.initial_for(goal)
        )
        context = {"plan": goal.plan, "goal": goal, "goal_form": goal_form, "delete_form": form}
        return _render_edit_page(request, "goal_edit.html", context)
    plan_id = goal.plan_id
    services.plan_goal_delete(goal=goal, editor=request.membership)
    messages.success(request, gettext("Goal deleted."))
    return redirect("plan_detail", org_slug=org_slug, plan_id=plan_id)


def _item_form(request, item: TrainingItem, data=None) -> TrainingItemForm:
    initial = {"title": item.title, "due_on": item.due_on}
    return TrainingItemForm(data, prefix="item", today=organization_today(request.organization), initial=initial)


@leader_required
def plan_item_edit(request, org_slug, item_id):
    item = _item_for_editor(request, item_id)
    form = _item_form(request, item, request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.training_item_update(item=item, editor=request.membership, **form.cleaned_data)
        messages.success(request, gettext("Training item saved."))
        return redirect("plan_detail", org_slug=org_slug, plan_id=item.plan_id)
    context = {"plan": item.plan, "item": item, "item_form": form, "delete_form": TrainingItemDeleteForm()}
    return _render_edit_page(request, "item_edit.html", context)


@leader_required
@lookup_then_post_only(_item_editor_lookup)
def plan_item_delete(request, org_slug, item):
    form = TrainingItemDeleteForm(request.POST)
    if not form.is_valid():
        context = {"plan": item.plan, "item": item, "item_form": _item_form(request, item), "delete_form": form}
        return _render_edit_page(request, "item_edit.html", context)
    plan_id = item.plan_id
    services.training_item_delete(item=item, editor=request.membership)
    messages.success(request, gettext("Training item deleted."))
    return redirect("plan_detail", org_slug=org_slug, plan_id=plan_id)
