"""What the handoff says to people: the mails to departments, external bodies, supervisors.

The texts are templates under templates/handoff/mail/; this module picks the recipients' values
and queues each mail in the outbox, in the transaction of the change that caused it (nothing is
sent from here). Subjects stay here, next to the values they carry.
"""

from __future__ import annotations

from flask import current_app

from consult import urls
from consult.services import mail
from consult.timeutil import format_tokyo
from handoff.models import Handoff, JointSession
from handoff.settings import HandoffSettings


def _render(name: str, **values) -> str:
    text = current_app.jinja_env.get_template(f"handoff/mail/{name}.txt").render(**values)
    # Jinja drops a template's last newline; every mail ends with one.
    return text + "\n"


def page_link(handoff: Handoff) -> str:
    """The handoff's page, for a department's staff."""
    return f"{urls.base_url()}/handoffs/{handoff.id}"


def external_link(token: str) -> str:
    """An external body's signed link (handoff.services.external)."""
    return f"{urls.base_url()}/x/handoff/{token}"


def new_handoff(handoff: Handoff, token: str | None) -> None:
    """The request to the department, or to an external body with its link (`token`)."""
    department = handoff.department
    due = format_tokyo(handoff.due_at, with_weekday=True)
    if department.is_external:
        text = _render(
            "new_external",
            handoff=handoff,
            due=due,
            link=external_link(token),
            days=HandoffSettings.current().link_days,
        )
    else:
        text = _render("new_department", handoff=handoff, due=due, link=page_link(handoff))
    mail.enqueue_mail(
        to=department.email,
        subject=f"【引継ぎ依頼】{handoff.response_label}（相談番号 {handoff.ticket.number}）",
        text=text,
        ticket=handoff.ticket,
    )


def information_added(handoff: Handoff, recipient: str, text: str) -> None:
    """What the centre added, to the officer who accepted (or the department's mailbox)."""
    mail.enqueue_mail(
        to=recipient,
        subject=f"【追加情報】相談番号 {handoff.ticket.number}",
        text=_render("information", text=text, link=page_link(handoff)),
        ticket=handoff.ticket,
    )


def not_accepted(handoff: Handoff, addresses: list[str]) -> None:
    """The escalation of a handoff nobody accepted in time, one mail per address."""
    text = _render(
        "not_accepted",
        handoff=handoff,
        accept_by=format_tokyo(handoff.accept_by, with_weekday=True),
        link=page_link(handoff),
    )
    subject = f"【未受付】{handoff.department.name}への引継ぎ（{handoff.ticket.number}）"
    for address in addresses:
        mail.enqueue_mail(to=address, subject=subject, text=text, ticket=handoff.ticket)


def joint_session(
    handoff: Handoff,
    session: JointSession,
    *,
    method: str,
    when: str,
    where: str,
    link: str,
    invitation: str,
) -> None:
    """The invitation to a joint session (REQUEST) or its cancellation (CANCEL), with the
    iCalendar file (handoff.joint) attached."""
    if method == "CANCEL":
        subject = f"【合同相談の取消】相談番号 {handoff.ticket.number}"
        text = _render("joint_cancelled", handoff=handoff, when=when, link=link)
    else:
        subject = f"【合同相談のご案内】{when}（相談番号 {handoff.ticket.number}）"
        text = _render("joint_invitation", handoff=handoff, when=when, where=where, link=link)
    mail.enqueue_mail(
        to=handoff.department.email,
        subject=subject,
        text=text,
        ticket=handoff.ticket,
        attachments=[
            {
                "filename": "joint-session.ics",
                "content_type": f"text/calendar; method={method}; charset=utf-8",
                "text": invitation,
            }
        ],
    )
