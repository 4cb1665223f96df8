"""Schemathesis hooks of .ci/fuzz (loaded through SCHEMATHESIS_HOOKS).

Every call gets an `Idempotency-Key` of its own when it sends one: generated
keys repeat (the schema's example most of all), and a repeated key with the
same body is answered, as documented, with the first call's answer, so a
create replayed after its record was deleted made the stateful check "created
resource not found" fail on correct behaviour. Idempotent retries are tested by
the API tests (tests/api/idempotency.rs, tests/api/rest/).

Six failures are dropped, each exactly and for a reason dynabill documents;
schemathesis counts the drops in its summary ("dropped by `filter_failure`"):

- positive_data_acceptance on a list refusing a generated `cursor`. A cursor is
  a page's `next_cursor` handed back unchanged; it carries a check over the
  list's tenant, filters, position and total (crates/dynabill-http/src/cursor.rs)
  that no schema can state, so a generated cursor is refused (422 naming
  `cursor`) however well formed. Every other rejection of valid data stands, on
  lists too; real cursors are exercised by the API tests.
- positive_data_acceptance refused because an end falls before its start
  (`end_date must be after ...`, 422 naming `end_date`). JSON Schema cannot
  compare two fields of a body, so a generated pair in the wrong order is
  "valid" to it; dynabill refuses it, as BILLING.md requires. Only that exact
  refusal is dropped.
- positive_data_acceptance refused because a webhook endpoint's `url`, which
  starts `http://` or `https://` as its schema says, names no host, carries
  credentials, or is a loopback or private address (refused unless the server
  runs with `--allow-private-webhooks`; docs/EVENTS.md). No pattern can say
  what a host is or which addresses are private. Only those three refusals of
  `url` are dropped; a `url` refused for any other reason stands.
- positive_data_acceptance refused because an insights report's months are in
  the wrong order or too many (`from must not be after to`, `from must be at
  most 120 months before to`, 422 naming `from`; docs/INSIGHTS.md). Each month
  is a well-formed `YYYY-MM` to the schema, which cannot compare two query
  parameters; `to` defaults to the current month, so a lone early `from` spans
  too many. Only those two refusals of `from` are dropped.
- positive_data_acceptance refused because an invoice update records a
  payment (`paid_date`, `payment_reference`) without making the invoice Paid
  (`invoice_status must be 4 (Paid) to record ...`, 422 naming
  `invoice_status`): a rule between the body and the invoice's state, which no
  schema states. Only that refusal is dropped.
- use_after_free on a read of a deleted record with `include_deleted=true`. A
  delete keeps the record, marked deleted (the DELETE operation says so), and
  `include_deleted=true` asks for it: the answer says `"deleted": true`. The
  same read without the flag must still answer 404, and that is checked.
"""

import json
import uuid

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData, UseAfterFree

CURSOR_REFUSALS = (
    "cursor is not a cursor this server issued",
    "cursor does not belong to this list",
)


def body(response):
    try:
        return json.loads(response.content)
    except ValueError:
        return None


URL_REFUSALS = (
    "url must name a host",
    "url must not carry credentials",
    "url must not be a loopback or private address",
)

MONTH_REFUSALS = (
    "from must not be after to",
    "from must be at most 120 months before to",
)

# Each refusal of valid-looking data that no schema can state: the field the
# problem names, and how its detail starts.
RULE_REFUSALS = (
    ("cursor", CURSOR_REFUSALS),
    ("end_date", ("end_date must be after",)),
    ("url", URL_REFUSALS),
    ("from", MONTH_REFUSALS),
    ("invoice_status", ("invoice_status must be 4 (Paid) to record",)),
)


def refused_by_a_rule(failure, response):
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return False
    problem = body(response)
    if not isinstance(problem, dict) or problem.get("code") != "invalid_field":
        return False
    detail = str(problem.get("detail", ""))
    return any(
        problem.get("field") == field and detail.startswith(prefixes)
        for field, prefixes in RULE_REFUSALS
    )


def asked_for_the_deleted_record(failure, case, response):
    if not isinstance(failure, UseAfterFree) or response.status_code != 200:
        return False
    flag = str((case.query or {}).get("include_deleted", "")).lower()
    record = body(response)
    return flag == "true" and isinstance(record, dict) and record.get("deleted") is True


@schemathesis.hook
def filter_failure(context, failure, case, response):
    return not (
        refused_by_a_rule(failure, response)
        or asked_for_the_deleted_record(failure, case, response)
    )


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            headers[name] = str(uuid.uuid4())
