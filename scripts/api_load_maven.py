#!/usr/bin/env python3
"""Load the Maven CRM sample into an organization through the documented REST API only, then print its KPIs.

    python scripts/api_load_maven.py --base-url http://127.0.0.1:8000/api/v1 --token spm_… \
        [--folder demo/data/maven-crm] [--period 2017]

The organization and a write token come from the API tokens page, or from
`manage.py api_token_create --org maven-api --scope write --create --currency USD`.
The script sends the same facts as `manage.py import_crm --source maven`: people with
their teams, managers and offices, accounts, the four-stage "Sales" pipeline, and one
deal per opportunity. Each deal is a snapshot. It entered Engaging at the engage date
(Prospecting deals: Prospecting at the file's last date) and was won or lost at the close
date. Open deals are valued at their product's list price. It then reads `/kpi-report/` for the period per
organization, which must equal `manage.py kpi_report --by organization` on a file
import of the same folder. Only the Python standard library is used.
"""

import argparse
import csv
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BATCH_SIZE = 1000
PRODUCT_ALIASES = {"GTXPro": "GTX Pro"}
PIPELINE = {
    "name": "Sales",
    "stages": [
        {"name": "Prospecting", "kind": "open", "probability": 10},
        {"name": "Engaging", "kind": "open", "probability": 50},
        {"name": "Won", "kind": "won", "probability": 100},
        {"name": "Lost", "kind": "lost", "probability": 0},
    ],
}


class ApiClient:
    def __init__(self, base_url: str, token: str):
        self.base_url = base_url.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json", "Accept-Language": "en"},
        )
        for attempt in range(5):
            try:
                with urllib.request.urlopen(request, timeout=600) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                if error.code == 429 and attempt < 4:
                    time.sleep(int(error.headers.get("Retry-After", "5")))
                    continue
                raise SystemExit(f"{method} {path} failed with {error.code}: {error.read().decode()[:2000]}") from None
        raise SystemExit(f"{method} {path} was throttled five times; raise API_RATE_LIMIT or retry later")

    def upsert(self, path: str, records: list[dict], source: str = "maven") -> list[dict]:
        """Send the records in batches and return every rejection the API reported."""
        rejected = []
        for start in range(0, len(records), BATCH_SIZE):
            result = self.request("POST", path, {"source": source, "records": records[start : start + BATCH_SIZE]})
            for error in result["rejected"]:
                rejected.append({**error, "index": error["index"] + start})
        return rejected


def read_rows(folder: Path, name: str) -> list[dict]:
    with open(folder / name, newline="", encoding="utf-8-sig") as file:
        return list(csv.DictReader(file))


def people_records(rows: list[dict]) -> list[dict]:
    """Managers get a team named after them; agents join their manager's team and office."""
    manager_office: dict[str, str] = {}
    for row in rows:
        manager_office.setdefault(row["manager"], row.get("regional_office", ""))
    records = [
        {"external_id": name, "name": name, "role": "manager", "team": name, "territory": office}
        for name, office in manager_office.items()
    ]
    for row in rows:
        if row["sales_agent"] in manager_office:
            continue
        records.append(
            {
                "external_id": row["sales_agent"],
                "name": row["sales_agent"],
                "role": "rep",
                "manager": row["manager"],
                "team": row["manager"],
                "territory": row.get("regional_office", ""),
            }
        )
    return records


def account_records(rows: list[dict]) -> list[dict]:
    return [
        {
            "external_id": row["account"],
            "name": row["account"],
            "sector": row.get("sector", ""),
            "country": row.get("office_location", ""),
            "year_established": row.get("year_established") or None,
            "annual_revenue_amount": row.get("revenue") or None,
            "employees": row.get("employees") or None,
            "parent": row.get("subsidiary_of", ""),
        }
        for row in rows
    ]


def deal_records(rows: list[dict], list_prices: dict[str, str]) -> list[dict]:
    """Build one snapshot record per opportunity; Prospecting deals are dated at the file's last date."""
    as_of = max(row[column] for row in rows for column in ("engage_date", "close_date") if row[column])
    records = []
    for row in rows:
        product = PRODUCT_ALIASES.get(row["product"], row["product"])
        stage = row["deal_stage"]
        amount = row["close_value"] or list_prices.get(product) or None
        name = f"{product} · {row['account']}" if row["account"] else product
        record = {
            "external_id": row["opportunity_id"],
            "name": name,
            "owner": row["sales_agent"],
            "pipeline": "Sales",
            "stage": stage,
            "entry_stage": "Prospecting" if stage == "Prospecting" else "Engaging",
            "created_at": row["engage_date"] or as_of,
            "closed_at": row["close_date"] or None,
            "expected_close_on": row["close_date"] or None,
            "amount": amount,
            "account": row["account"] or None,
            "product": product,
        }
        if not row["close_value"] and amount is not None:
            record["custom_fields"] = {"amount_source": "list_price"}
        records.append(record)
    return records


def wait_for_report(client: ApiClient, period: str, expected_deals: int, timeout_seconds: int = 300) -> dict:
    """Poll the KPI report until two reads in a row agree, because the recompute runs after each batch commits."""
    previous = None
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        report = client.request("GET", f"/kpi-report/?period={period}&by=organization")
        if previous is not None and report == previous and report["rows"]:
            return report
        previous = report
        time.sleep(2)
    return previous


def load(*, base_url: str, token: str, folder: Path, deal_limit: int | None = None) -> list[dict]:
    """Send the folder's people, accounts, pipeline and deals; return all rejections."""
    client = ApiClient(base_url, token)
    deals = read_rows(folder, "sales_pipeline.csv")[:deal_limit]
    list_prices = {row["product"]: row["sales_price"] for row in read_rows(folder, "products.csv")}

    rejected = client.upsert("/pipelines/", [PIPELINE])
    rejected += client.upsert("/people/", people_records(read_rows(folder, "sales_teams.csv")))
    rejected += client.upsert("/accounts/", account_records(read_rows(folder, "accounts.csv")))
    rejected += client.upsert("/deals/", deal_records(deals, list_prices))
    return rejected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="API root, e.g. http://127.0.0.1:8000/api/v1")
    parser.add_argument("--token", required=True, help="A write token of the target organization.")
    parser.add_argument("--folder", default="demo/data/maven-crm", type=Path, help="The Maven export folder.")
    parser.add_argument("--period", default="2017", help="Period of the KPI report printed at the end.")
    parser.add_argument("--limit", type=int, help="Send only the first N opportunities (for a quick run).")
    arguments = parser.parse_args()

    started = time.monotonic()
    rejected = load(base_url=arguments.base_url, token=arguments.token, folder=arguments.folder, deal_limit=arguments.limit)
    loaded_seconds = time.monotonic() - started
    for error in rejected:
        print(f"rejected: {json.dumps(error, ensure_ascii=False)}", file=sys.stderr)
    client = ApiClient(arguments.base_url, arguments.token)
    report = wait_for_report(client, arguments.period, expected_deals=0)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"loaded in {loaded_seconds:.1f} s, {len(rejected)} rejected records", file=sys.stderr)
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
