"""Schemathesis hooks for `.ci/schemathesis.sh`.

What a JSON Schema cannot state, the server still checks: whether a TOML text is a model that
compiles, whether a CSV file has the columns an import needs, whether a score is one of the
active model's, whether a time is in the future, whether a text anywhere in a message holds the
character U+0000. A request valid by the document that is refused
for one of these reasons alone is not a failure of the document; every other refusal is.
"""

import os
import re

import schemathesis

# A model upload is TOML text, which the document offers as `application/toml` as well as
# `text/plain`: the same bytes.
schemathesis.serializer.alias("application/toml", "text/plain")


def _operation_id(case):
    return case.operation.definition.raw.get("operationId")


def _positive(case):
    return case.meta is not None and case.meta.generation.mode.is_positive


@schemathesis.hook
def map_case(context, case):
    """Points valid requests at what the service can take beyond the document's words."""
    if not _positive(case):
        return case
    operation_id = _operation_id(case)
    if operation_id == "create_webhook" and isinstance(case.body, dict) and "url" in case.body:
        # The document says "an http:// or https:// URL"; the URL standard's grammar (what the
        # server parses) is not a regular expression, so generated text after `http://` is rarely
        # a URL. The service runs with --allow-private-webhooks, and nothing listens on port 9.
        case.body["url"] = "http://127.0.0.1:9/leadscore"
    elif operation_id == "revoke_key" and case.path_parameters is not None:
        # A valid id may be the very key the run authenticates with (they are small numbers):
        # revocations go to the spare key the driver made for them.
        case.path_parameters["id"] = int(os.environ["LEADSCORE_SPARE_KEY_ID"])
    return case


def _code_and_message(response):
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    return body.get("code"), str(body.get("message", ""))


# Per operation: the refusals (status 400, `code`, and a pattern of the message) that depend on
# what the document cannot know.
_BEYOND_THE_SCHEMA = {
    # The model must compile: `invalid_model` lists its errors.
    "upload_model": [("invalid_model", r"")],
    # The file must be one `leadscore train` wrote.
    "upload_predictive_model": [("invalid_predictive_model", r"")],
    # The score and tier must be the active model's; a cursor must be one a listing gave (it is
    # opaque), and a query parameter list cannot say that `cursor` and `offset` exclude each other.
    "list_leads": [("invalid_query", r"^`(score|tier)`[ :]|^`cursor` |give `cursor` or `offset`")],
    # The CSV must have the columns the import needs, and the query may only name columns it has;
    # a time format must be a usable strftime pattern and a time zone one the system knows.
    "import_leads": [("invalid_csv", r""), ("invalid_query", r"the file has no column|^`time_(format|zone)`")],
    "import_events": [("invalid_csv", r""), ("invalid_query", r"the file has no column|^`time_(format|zone)`")],
    # A tier must be one of the score's, an expiry in the future; no person may act under the name
    # of leadscore's own moves (a schema cannot exclude one value of a free text)...
    "set_score_override": [
        ("unknown_tier", r""),
        # ... and one of `value` and `tier` is needed, which may each be null.
        ("invalid_field", r"^`expires_at` .* is not in the future|is the name of leadscore's own|neither was given"),
    ],
    "set_lead_stage": [("invalid_field", r"is the name of leadscore's own")],
    # A query parameter list cannot say that `from` and `versions` exclude each other, nor that one
    # of them is needed.
    "lead_changes": [("invalid_query", r"give `from`")],
    # A message's time may not be more than 5 minutes in the server's future.
    **{
        f"segment_{kind}": [("invalid_message", r"is in the future")]
        for kind in ("identify", "track", "page", "screen", "group", "alias")
    },
    # The same at the short paths of Segment's browser library.
    **{
        f"segment_{kind}_short": [("invalid_message", r"is in the future")]
        for kind in ("identify", "track", "page", "group", "alias")
    },
}


# The refusal of a text holding the character U+0000 (`messages.rs`, `NUL_REFUSAL`).
_NUL_REFUSAL = re.compile(r"contains the character U\+0000 \(NUL\), which is not stored")


# Operations whose body is text (TOML, CSV): any bytes are a text body, so a "body of another
# type" becomes text again when it is sent, and its content alone decides.
_TEXT_BODIES = {"upload_model", "import_leads", "import_events"}


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but those listed above, which are about what no schema can state."""
    code = getattr(failure, "code", None)
    operation_id = _operation_id(case)
    if code == "ST201" and operation_id in _TEXT_BODIES and "in body" in str(getattr(failure, "message", "")):
        return False
    # A lead erased earlier in a run is told erased (410), whatever a request asks of it: the
    # schema cannot know which lead numbers were erased.
    if code == "ST202" and response.status_code == 410 and _code_and_message(response)[0] == "erased":
        return False
    if code != "ST202" or response.status_code != 400:
        return True
    answered, message = _code_and_message(response)
    # No schema can say that no key or string anywhere in a free-form object (a message's traits
    # and properties) holds the character U+0000, which the service refuses in every text of a
    # message on either store, PostgreSQL's text being unable to hold it (docs/api.md, limits).
    if answered in ("invalid_message", "invalid_field") and _NUL_REFUSAL.search(message):
        return False
    for expected, pattern in _BEYOND_THE_SCHEMA.get(operation_id, []):
        if answered == expected and re.search(pattern, message):
            return False
    return True
