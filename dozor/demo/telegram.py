"""Telegram web-preview pages for channels Dozor serves itself (the demo, the tests).

The markup is Telegram's own (`t.me/s/<channel>`): message widgets in a channel history,
oldest first, twenty to a page, a "load older" link carrying `data-before`, and the
contact page a channel without a preview (or a missing one) gets instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

import yaml

PAGE_SIZE = 20  # what t.me/s serves per page


@dataclass
class DemoPost:
    id: int
    date: datetime
    html: str = ""  # the message text as Telegram marks it up (<br>, <a>, <b>)
    views: str = "1"
    forwarded_from: str = ""  # "channel/123" of the original, or a name without a link
    forwarded_name: str = ""
    preview: dict[str, str] | None = None  # url, site, title, description
    edited: bool = False
    kind: str = "text"  # text | service | poll | sticker


def _widget(channel: str, title: str, post: DemoPost) -> str:
    ref = f"{channel}/{post.id}"
    if post.kind == "service":
        return (f'<div class="tgme_widget_message_wrap js-widget_message_wrap">'
                f'<div class="tgme_widget_message service_message js-widget_message" '
                f'data-post="{ref}"><div class="tgme_widget_message_bubble">'
                f'<div class="tgme_widget_message_text js-message_text">{post.html}</div>'
                f"</div></div></div>")
    parts = [f'<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_'
             f'message_owner_name" href="https://t.me/{channel}"><span dir="auto">'
             f"{escape(title)}</span></a></div>"]
    if post.forwarded_name:
        name = f'<span dir="auto">{escape(post.forwarded_name)}</span>'
        link = (f'<a class="tgme_widget_message_forwarded_from_name" '
                f'href="https://t.me/{post.forwarded_from}">{name}</a>'
                if post.forwarded_from else
                f'<span class="tgme_widget_message_forwarded_from_name">{name}</span>')
        parts.append('<div class="tgme_widget_message_forwarded_from accent_color">'
                     f"Forwarded from&nbsp;{link}</div>")
    if post.kind == "poll":
        parts.append(f'<div class="tgme_widget_message_poll js-poll"><div class="tgme_widget_'
                     f'message_poll_question">{post.html}</div><div class="tgme_widget_message'
                     f'_poll_type">Anonymous poll</div></div>')
    elif post.kind == "sticker":
        parts.append('<div class="tgme_widget_message_sticker_wrap media_supported_cont">'
                     '<i class="tgme_widget_message_sticker js-sticker_image" '
                     'data-size="512"></i></div>')
    elif post.html:
        parts.append(f'<div class="tgme_widget_message_text js-message_text" dir="auto">'
                     f"{post.html}</div>")
    if post.preview:
        p = post.preview
        parts.append(
            f'<a class="tgme_widget_message_link_preview" href="{escape(p["url"])}">'
            f'<div class="link_preview_site_name accent_color" dir="auto">'
            f'{escape(p.get("site", ""))}</div>'
            f'<div class="link_preview_title" dir="auto">{escape(p.get("title", ""))}</div>'
            f'<div class="link_preview_description" dir="auto">'
            f'{escape(p.get("description", ""))}</div></a>')
    edited = "edited &nbsp;" if post.edited else ""
    parts.append(
        '<div class="tgme_widget_message_footer compact js-message_footer">'
        '<div class="tgme_widget_message_info short js-message_info">'
        f'<span class="tgme_widget_message_views">{post.views}</span>'
        '<span class="copyonly"> views</span>'
        f'<span class="tgme_widget_message_meta">{edited}<a class="tgme_widget_message_date" '
        f'href="https://t.me/{ref}"><time datetime="{post.date.isoformat()}" class="time">'
        f'{post.date:%H:%M}</time></a></span></div></div>')
    return (f'<div class="tgme_widget_message_wrap js-widget_message_wrap">'
            f'<div class="tgme_widget_message text_not_supported_wrap js-widget_message" '
            f'data-post="{ref}" data-view="x">'
            f'<div class="tgme_widget_message_user"><a href="https://t.me/{channel}">'
            f'<i class="tgme_widget_message_user_photo bgcolor1" data-content="{title[:1]}">'
            f'</i></a></div><div class="tgme_widget_message_bubble">{"".join(parts)}'
            f"</div></div></div>")


def _page(channel: str, title: str, body: str, more: str) -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)} – '
            f'Telegram</title><meta property="og:title" content="{escape(title)}">'
            f'<link rel="canonical" href="https://t.me/s/{channel}"></head>'
            f'<body class="widget_frame_base tgme_webpreview_body emoji_image">'
            f'<header class="tgme_header search_collapsed"><div class="tgme_header_info">'
            f'<div class="tgme_channel_info_header_title"><span dir="auto">{escape(title)}'
            f'</span></div></div></header><main class="tgme_main">'
            f'<div class="tgme_container"><section class="tgme_channel_history '
            f'js-message_history">{more}{body}</section></div></main></body></html>')


def channel_pages(channel: str, title: str, posts: list[DemoPost]) -> dict[str, str]:
    """Path (with `?before=` for older pages) -> HTML, as t.me/s answers them."""
    ordered = sorted(posts, key=lambda p: p.id)
    out: dict[str, str] = {}
    end = len(ordered)
    first = True
    while end > 0 or first:
        start = max(0, end - PAGE_SIZE)
        chunk = ordered[start:end]
        more = ""
        if start > 0:
            before = chunk[0].id
            more = (f'<div class="tgme_widget_message_centered js-messages_more_wrap">'
                    f'<a href="/s/{channel}?before={before}" class="tme_messages_more '
                    f'js-messages_more" data-before="{before}"></a></div>')
        path = f"/s/{channel}" if first else f"/s/{channel}?before={ordered[end].id}"
        out[path] = _page(channel, title, "".join(_widget(channel, title, p) for p in chunk),
                          more)
        first, end = False, start
    return out


def contact_page(channel: str, title: str | None) -> str:
    """/<channel>: a channel without a web preview (title given) or no such username."""
    if title is None:
        inner = (f'<div class="tgme_page_description">If you have <strong>Telegram</strong>,'
                 f' you can contact <a class="tgme_username_link" href="tg://resolve?domain='
                 f'{channel}">@{channel}</a> right away.</div>')
    else:
        inner = (f'<div class="tgme_page_title"><span dir="auto">{escape(title)}</span></div>'
                 f'<div class="tgme_page_extra">1 204 subscribers</div>'
                 f'<div class="tgme_page_action"><a class="tgme_action_button_new" '
                 f'href="tg://resolve?domain={channel}">View in Telegram</a></div>')
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Telegram: Contact '
            f'@{channel}</title></head><body><div class="tgme_page_wrap"><div class="tgme_'
            f'page">{inner}</div></div></body></html>')


def load_channels(directory: Path, base: str, now: datetime
                  ) -> dict[str, tuple[str, list[DemoPost]]]:
    """The demo's channels: one YAML file each (title, posts), named after the channel.

    A post's `hours_ago` dates it before `now`; `{base}` in its text and link preview is
    the address the demo site is served at."""
    out = {}
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        posts = []
        for spec in doc["posts"]:
            spec = dict(spec)
            date = now - timedelta(hours=spec.pop("hours_ago"))
            spec["html"] = spec.get("html", "").replace("{base}", base)
            if spec.get("preview"):
                spec["preview"] = {k: v.replace("{base}", base)
                                   for k, v in spec["preview"].items()}
            posts.append(DemoPost(date=date, **spec))
        out[path.stem] = (doc["title"], posts)
    return out
