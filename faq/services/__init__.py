"""The FAQ's rules: entries and their workflow, drafts from closed cases, search, votes, import.

Workflow: draft (下書き) → review (承認待ち) → published (公開中) → archived (公開終了).
A supervisor or administrator who is not the entry's author approves; approval is refused while
the redactor still finds personal data in the text. Every save and every transition appends a
revision. Each change also appends a `faq_change` row: the search index's revision counter.

One module per concern; this package offers their public names as one `services`: `common`
(roles, limits, PublishBlocked), `markdown`, `redaction`, `workflow`, `queries`, `drafts`,
`lookup` (search), `votes`, `synonyms` and `importing`. Services flush; the view or command
that called them commits.
"""

from faq.services.common import (
    APPROVE_ROLES,
    EDIT_ROLES,
    MAX_ANSWER,
    MAX_KEYWORDS,
    MAX_QUESTION,
    READ_ROLES,
    PublishBlocked,
)
from faq.services.drafts import DraftPreview, draft_from_ticket
from faq.services.importing import CSV_COLUMNS, ImportReport, import_file, seed_demo
from faq.services.lookup import (
    RELATIVE_FLOOR,
    Hit,
    highlight,
    index,
    related,
    search,
    similar_closed_tickets,
)
from faq.services.markdown import render_markdown
from faq.services.queries import (
    entries_from_ticket,
    get_entry,
    get_public_entry,
    list_entries,
    public_categories,
    public_entries,
    revisions,
    view_entry,
)
from faq.services.redaction import (
    configured_public_phones,
    names_in_case,
    redact_text,
    remaining_personal_data,
)
from faq.services.synonyms import save_synonyms, synonym_text
from faq.services.votes import record_view, vote_helpful, voter_key
from faq.services.workflow import (
    ALREADY,
    CHANGED_MEANWHILE,
    EDITED_MEANWHILE,
    approve,
    archive,
    create_entry,
    send_back,
    submit,
    update_entry,
)

__all__ = [
    "ALREADY",
    "APPROVE_ROLES",
    "CHANGED_MEANWHILE",
    "CSV_COLUMNS",
    "EDITED_MEANWHILE",
    "EDIT_ROLES",
    "MAX_ANSWER",
    "MAX_KEYWORDS",
    "MAX_QUESTION",
    "READ_ROLES",
    "RELATIVE_FLOOR",
    "DraftPreview",
    "Hit",
    "ImportReport",
    "PublishBlocked",
    "approve",
    "archive",
    "configured_public_phones",
    "create_entry",
    "draft_from_ticket",
    "entries_from_ticket",
    "get_entry",
    "get_public_entry",
    "highlight",
    "import_file",
    "index",
    "list_entries",
    "names_in_case",
    "public_categories",
    "public_entries",
    "record_view",
    "redact_text",
    "related",
    "remaining_personal_data",
    "render_markdown",
    "revisions",
    "save_synonyms",
    "search",
    "seed_demo",
    "send_back",
    "similar_closed_tickets",
    "submit",
    "synonym_text",
    "update_entry",
    "view_entry",
    "vote_helpful",
    "voter_key",
]
