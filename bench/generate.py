"""Write a synthetic benchmark tenant straight into PostgreSQL with COPY.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spm_bench \
        python bench/generate.py --size 1m      # 1,000,000 deals (default)
    ... python bench/generate.py --size small   # 50,000 deals

The tenant (organization slug `bench-<size>`) has 300 reps in 30 teams and 12
territories, 30 managers and an admin, one pipeline with four open stages and
Won/Lost, deals created over three years before `--end`, about three stage
changes and five activities per deal. Rep volume and win rate, and deal size,
are skewed (log-normal); about 8 % of deals move backwards once, and 3 % of
closed deals are reopened, of which some close again.

Rows are consistent with the product's model: `stage`, `status` and `closed_at`
follow the generated history exactly as `deal_close_state_refresh` derives
them (latest move decides the stage, `closed_at` is the latest move into
won/lost while the deal is closed), `base_amount` is set on every deal, and
every row carries `organization_id`. The same `--seed` and size give the same
rows; only primary keys depend on what the database held before.

Small rows (people, teams, stages) go through the ORM; deals, stage changes,
activities and accounts are streamed with COPY in chunks of 20,000 deals, so
memory does not grow with the size.
"""

import argparse
import datetime as dt
import math
import os
import random
import sys
import time
from bisect import bisect_right
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spm.settings")

SIZES = {
    # deals, reps, teams, territories, accounts
    "1m": (1_000_000, 300, 30, 12, 20_000),
    "small": (50_000, 300, 30, 12, 2_000),
    "250k": (250_000, 300, 30, 12, 5_000),
    "tiny": (2_000, 12, 3, 2, 100),
}
SOURCE = "bench"
CHUNK_DEALS = 20_000
YEARS = 3
# Stage name, order, kind, default probability.
STAGES = (
    ("Prospecting", 1, "open", 10),
    ("Qualification", 2, "open", 25),
    ("Proposal", 3, "open", 50),
    ("Negotiation", 4, "open", 75),
    ("Won", 5, "won", 100),
    ("Lost", 6, "lost", 0),
)
OPEN_STAGE_COUNT = 4
ACTIVITY_KINDS = ("call", "call", "call", "email", "email", "email", "meeting", "meeting", "task", "note")
LOST_REASONS = ("Price", "Competitor", "No budget", "Timing", "No decision")
USD_RATE = 0.92  # EUR per USD, fixed: base_amount = amount × rate for USD deals.
DAY = 86_400


def organization_slug(size: str) -> str:
    return f"bench-{size}"


def _setup_django():
    import django

    django.setup()


def _timestamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")


class Generator:
    """Holds the random state and the ids of the small rows; streams the big tables."""

    def __init__(self, *, size: str, seed: int, end: dt.datetime):
        self.deal_total, self.rep_total, self.team_total, self.territory_total, self.account_total = SIZES[size]
        self.size = size
        self.rng = random.Random(seed)
        self.end = int(end.timestamp())
        self.start = self.end - YEARS * 365 * DAY
        self.counts = {"deals": 0, "stage_changes": 0, "activities": 0, "accounts": 0}

    # -- small rows through the ORM --------------------------------------------------------

    def people_create(self):
        from django_scopes import scopes_disabled

        from goals.models import Team, Territory
        from pipelines.models import Pipeline, Stage
        from spm.models import Membership, Organization, Role, User

        rng = self.rng
        slug = organization_slug(self.size)
        with scopes_disabled():
            organization = Organization.objects.create(
                name=f"Bench {self.size}", slug=slug, time_zone="Europe/Berlin", currency="EUR", language="en"
            )
            self.organization = organization
            pipeline = Pipeline.objects.create(organization=organization, name="Sales", is_default=True)
            self.stages = [
                Stage.objects.create(
                    organization=organization, pipeline=pipeline, name=name, order=order, kind=kind, probability=prob
                )
                for name, order, kind, prob in STAGES
            ]
            self.pipeline = pipeline
            territories = [
                Territory.objects.create(organization=organization, name=f"Territory {index + 1:02d}")
                for index in range(self.territory_total)
            ]
            admin_user = User.objects.create(email=f"admin@{slug}.example", name="Bench Admin")
            admin_user.set_password("bench")
            admin_user.save()
            self.admin = Membership.objects.create(organization=organization, user=admin_user, role=Role.ADMIN)

            teams = []
            for index in range(self.team_total):
                user = User.objects.create(email=f"manager{index + 1:02d}@{slug}.example", name=f"Manager {index + 1:02d}")
                manager = Membership.objects.create(
                    organization=organization,
                    user=user,
                    role=Role.MANAGER,
                    territory=territories[index % len(territories)],
                    manager=self.admin,
                    external_id=f"M{index + 1:02d}",
                )
                team = Team.objects.create(organization=organization, name=f"Team {index + 1:02d}", manager=manager)
                manager.team = team
                manager.save(update_fields=["team"])
                teams.append((team, manager))

            users = User.objects.bulk_create(
                [User(email=f"rep{index + 1:03d}@{slug}.example", name=f"Rep {index + 1:03d}") for index in range(self.rep_total)]
            )
            reps = []
            for index, user in enumerate(users):
                team, manager = teams[index % len(teams)]
                reps.append(
                    Membership(
                        organization=organization,
                        user=user,
                        role=Role.REP,
                        team=team,
                        territory=territories[index % len(territories)],
                        manager=manager,
                        external_id=f"R{index + 1:03d}",
                    )
                )
            reps = Membership.objects.bulk_create(reps)

        # Skew: a rep's share of deals and win rate are log-normal around the mean.
        self.rep_ids = [rep.pk for rep in reps]
        self.rep_territory = [rep.territory_id for rep in reps]
        weights = [rng.lognormvariate(0, 0.5) for _ in reps]
        total = 0.0
        self.rep_cumulative = []
        for weight in weights:
            total += weight
            self.rep_cumulative.append(total)
        self.rep_win_rate = [min(0.75, max(0.05, 0.3 * rng.lognormvariate(0, 0.4))) for _ in reps]

    # -- big tables through COPY -----------------------------------------------------------

    def _reserve_ids(self, cursor, table: str, count: int) -> int:
        """Move the table's id sequence past `count` new ids and return the first of them."""
        cursor.execute(f"SELECT pg_get_serial_sequence('{table}', 'id')")
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        first = cursor.fetchone()[0] + 1
        cursor.execute("SELECT setval(%s, %s)", [sequence, first + count])
        return first

    def accounts_copy(self, cursor):
        org_id = self.organization.pk
        first = self._reserve_ids(cursor, "pipelines_account", self.account_total)
        lines = []
        for index in range(self.account_total):
            lines.append(f"{first + index}\t{org_id}\tAccount {index + 1:05d}\tA{index + 1:05d}\t\t\t\\N\t\\N\t\\N\t\\N\n")
        with cursor.copy(
            "COPY pipelines_account (id, organization_id, name, external_id, sector, country, year_established,"
            " annual_revenue_amount, employees, parent_id) FROM STDIN"
        ) as copy:
            copy.write("".join(lines))
        self.account_first = first
        self.counts["accounts"] = self.account_total

    def deals_copy(self, cursor):
        """Stream deals, their stage history and activities, CHUNK_DEALS deals at a time."""
        deal_next = self._reserve_ids(cursor, "pipelines_deal", self.deal_total)
        change_next = self._reserve_ids(cursor, "pipelines_dealstagechange", self.deal_total * 5)
        activity_next = self._reserve_ids(cursor, "pipelines_activity", self.deal_total * 11)
        for chunk_start in range(0, self.deal_total, CHUNK_DEALS):
            deals, changes, activities = [], [], []
            for number in range(chunk_start, min(self.deal_total, chunk_start + CHUNK_DEALS)):
                change_next, activity_next = self._deal(
                    number, deal_next + number, change_next, activity_next, deals, changes, activities
                )
            with cursor.copy(
                "COPY pipelines_deal (id, organization_id, source, external_id, name, owner_id, account_id,"
                " pipeline_id, stage_id, product_id, territory_id, amount, currency, base_amount, probability,"
                " status, created_at, expected_close_on, closed_at, lost_reason, deal_source, custom_fields,"
                " updated_at) FROM STDIN"
            ) as copy:
                copy.write("".join(deals))
            with cursor.copy(
                "COPY pipelines_dealstagechange (id, organization_id, deal_id, from_stage_id, to_stage_id,"
                " changed_at, is_implied) FROM STDIN"
            ) as copy:
                copy.write("".join(changes))
            with cursor.copy(
                "COPY pipelines_activity (id, organization_id, source, external_id, kind, type_name, subject,"
                " is_done, owner_id, deal_id, account_id, occurred_at, duration, outcome, is_captured) FROM STDIN"
            ) as copy:
                copy.write("".join(activities))
            print(f"  {min(self.deal_total, chunk_start + CHUNK_DEALS):>9,} deals", file=sys.stderr, flush=True)
        self.counts["deals"] = self.deal_total

    def _deal(self, number, deal_id, change_id, activity_id, deals, changes, activities):
        rng = self.rng
        org_id = self.organization.pk
        stages = self.stages
        rep = bisect_right(self.rep_cumulative, rng.random() * self.rep_cumulative[-1])
        owner_id = self.rep_ids[rep]
        created = self.start + int(rng.random() * (self.end - self.start - DAY))
        cycle = max(DAY // 24, int(rng.lognormvariate(math.log(40), 0.8) * DAY))
        reached = rng.choices((1, 2, 3, 4), weights=(40, 30, 20, 10))[0]
        amount = round(min(5_000_000.0, rng.lognormvariate(math.log(8_000), 1.0)), 2)
        is_usd = rng.random() < 0.15
        base_amount = round(amount * USD_RATE, 2) if is_usd else amount

        # History: (stage index, time). First stage at creation, forward moves within the cycle.
        moves = [(0, created)]
        close_time = created + cycle
        steps = sorted(rng.randrange(1, max(2, cycle - 60)) for _ in range(reached - 1))
        for index, step in enumerate(steps, start=1):
            moves.append((index, created + step + index))
        if reached >= 3 and rng.random() < 0.25:
            # A backward move and back up again, before the close.
            last_stage, last_time = moves[-1]
            back_at = last_time + max(1, (close_time - last_time) // 3)
            moves.append((last_stage - 1, back_at))
            moves.append((last_stage, back_at + max(1, (close_time - last_time) // 3)))
        if close_time < self.end:
            skill = self.rep_win_rate[rep] * (0.6 + 0.3 * reached)
            won = rng.random() < skill
            close_stage = 4 if won else 5
            close_time = max(close_time, moves[-1][1] + 1)
            moves.append((close_stage, close_time))
            if rng.random() < 0.03:
                reopen = close_time + rng.randrange(DAY, 30 * DAY)
                if reopen < self.end:
                    moves.append((3, reopen))
                    again = reopen + rng.randrange(DAY, 60 * DAY)
                    if again < self.end and rng.random() < 0.7:
                        moves.append((4 if rng.random() < 0.5 else 5, again))
        # Equal times would be ambiguous without ids; keep them strictly increasing.
        for index in range(1, len(moves)):
            if moves[index][1] <= moves[index - 1][1]:
                moves[index] = (moves[index][0], moves[index - 1][1] + 1)

        previous = "\\N"
        for stage_index, moment in moves:
            stage_id = stages[stage_index].pk
            changes.append(f"{change_id}\t{org_id}\t{deal_id}\t{previous}\t{stage_id}\t{_timestamp(moment)}\tf\n")
            previous = str(stage_id)
            change_id += 1

        final_stage = stages[moves[-1][0]]
        status = final_stage.kind
        closed_at = "\\N"
        if status != "open":
            closed_at = _timestamp(moves[-1][1])
        lost_reason = rng.choice(LOST_REASONS) if status == "lost" else ""
        expected = dt.datetime.fromtimestamp(created + cycle, dt.timezone.utc).date().isoformat() if status == "open" else "\\N"
        account_id = self.account_first + rng.randrange(self.account_total)
        last_moment = moves[-1][1]
        deals.append(
            f"{deal_id}\t{org_id}\t{SOURCE}\tD{number + 1:07d}\tDeal {number + 1}\t{owner_id}\t{account_id}\t"
            f"{self.pipeline.pk}\t{final_stage.pk}\t\\N\t{self.rep_territory[rep]}\t{amount:.2f}\t"
            f"{'USD' if is_usd else 'EUR'}\t{base_amount:.2f}\t\\N\t{status}\t{_timestamp(created)}\t{expected}\t"
            f"{closed_at}\t{lost_reason}\t\t{{}}\t{_timestamp(last_moment)}\n"
        )

        activity_end = last_moment if status != "open" else self.end
        for _ in range(rng.randrange(0, 11)):
            moment = created + int(rng.random() * max(1, activity_end - created))
            kind = rng.choice(ACTIVITY_KINDS)
            minutes = rng.randrange(5, 90) if kind in ("call", "meeting") else 0
            duration = f"00:{minutes:02d}:00" if minutes < 60 else f"01:{minutes - 60:02d}:00"
            activities.append(
                f"{activity_id}\t{org_id}\t{SOURCE}\tA{activity_id}\t{kind}\t{kind}\t\tt\t{owner_id}\t{deal_id}\t"
                f"{account_id}\t{_timestamp(moment)}\t{duration if minutes else chr(92) + 'N'}\t\tf\n"
            )
            activity_id += 1
        self.counts["stage_changes"] += len(moves)
        return change_id, activity_id


def _activity_count_fix(cursor, organization_id: int) -> int:
    cursor.execute("SELECT COUNT(*) FROM pipelines_activity WHERE organization_id = %s", [organization_id])
    return cursor.fetchone()[0]


def organization_drop(slug: str) -> bool:
    """Delete a benchmark organization's rows; big tables by plain DELETE first.

    When the organization row itself cannot go (the audit log is append-only on
    PostgreSQL), it stays with its audit entries under a new slug, so the slug is
    free again and the bulk of the data is gone.
    """
    from django.db import DatabaseError, connection, transaction
    from django_scopes import scopes_disabled

    from spm.models import Organization

    with scopes_disabled():
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            return False
        with transaction.atomic(), connection.cursor() as cursor:
            for table in ("pipelines_activity", "pipelines_dealstagechange", "dashboards_kpisnapshot", "pipelines_deal"):
                cursor.execute(f"DELETE FROM {table} WHERE organization_id = %s", [organization.pk])
        try:
            with transaction.atomic():
                organization.delete()
        except DatabaseError:
            Organization.objects.filter(pk=organization.pk).update(slug=f"dropped-{organization.pk}")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="1m")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument(
        "--end", default="2026-11-30T18:00:00+00:00", help="the data's last instant (ISO, UTC offset); default fixed"
    )
    parser.add_argument("--replace", action="store_true", help="drop an existing tenant of this size first")
    parser.add_argument("--if-missing", action="store_true", help="do nothing when the tenant exists")
    args = parser.parse_args(argv)

    _setup_django()
    from django.db import connection, transaction

    slug = organization_slug(args.size)
    if args.if_missing and not args.replace:
        from django_scopes import scopes_disabled

        from spm.models import Organization

        with scopes_disabled():
            if Organization.objects.filter(slug=slug).exists():
                print(f"tenant {slug} exists; --replace generates it again", file=sys.stderr)
                return 0
    if args.replace:
        if organization_drop(slug):
            print(f"dropped tenant {slug}", file=sys.stderr)

    started = time.monotonic()
    generator = Generator(size=args.size, seed=args.seed, end=dt.datetime.fromisoformat(args.end))
    with transaction.atomic():
        generator.people_create()
        with connection.cursor() as django_cursor:
            cursor = django_cursor.cursor
            generator.accounts_copy(cursor)
            generator.deals_copy(cursor)
            generator.counts["activities"] = _activity_count_fix(cursor, generator.organization.pk)
    with connection.cursor() as cursor:
        for table in ("pipelines_deal", "pipelines_dealstagechange", "pipelines_activity", "pipelines_account"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    elapsed = time.monotonic() - started
    counts = ", ".join(f"{name}={count:,}" for name, count in generator.counts.items())
    print(f"tenant {slug} organization_id={generator.organization.pk} {counts} seconds={elapsed:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
