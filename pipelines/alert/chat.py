"""Digests to chat and push channels through Apprise (json://, ntfy://, tgram://,
slack://, matrix://...): a short text, each story's title with its link, instead of
the e-mail's full digest."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipelines.alert.digest import REPEAT_NOTE, Digest, one_line
from pipelines.alert.mailer import DeliveryError

# one request carries the whole message: a process that dies during it may have
# delivered it, so the log says so before it is made
CHAT_STAGE = "end-of-data"


def chat_text(digest: Digest, repeat: bool = False) -> tuple[str, str]:
    """The title and body for a chat channel: one line per story and its links."""
    lines = [REPEAT_NOTE, ""] if repeat else []
    ui_url = digest.rule.ui_url
    for story in digest.stories:
        lines.append(f"• {story.title} — {one_line(story.article.source_label)}, {story.date}")
        links = [link for link in (story.link,) if link]
        if ui_url:
            links.append(f"{ui_url}/article/{story.article.id}")
        lines += [f"  {link}" for link in links]
    if digest.waiting:
        lines.append(f"{digest.waiting} more waiting for the next digest.")
    if ui_url:
        lines.append(f"All: {digest.rule.search_url()}")
    return digest.subject, "\n".join(lines)


def send_chat(url: str, digest: Digest, on_stage: Callable[[str], None],
              repeat: bool = False) -> str:
    """Hand the digest to the channel at `url`; raises DeliveryError when Apprise could
    not (the reason from its log). Returns where it went, secrets hidden."""
    import apprise  # start-up cost: its plugins load only when a chat digest goes out

    channel = apprise.Apprise()
    channel.add(url)
    [plugin] = list(channel)
    title, body = chat_text(digest, repeat)
    on_stage(CHAT_STAGE)
    with apprise.LogCapture(level=logging.WARNING) as output:
        ok = channel.notify(body=body, title=title)
    if not ok:
        reason = " ".join(output.getvalue().split()) or "the channel refused it"
        raise DeliveryError(f"{plugin.url(privacy=True)}: {reason}")
    return str(plugin.url(privacy=True))
