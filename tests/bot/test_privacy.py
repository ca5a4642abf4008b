"""What could point at a person is masked out of question text before it is kept."""

from __future__ import annotations

from bot.privacy import mask


def test_mentions_user_ids_emails_and_numbers_are_masked() -> None:
    masked = mask(
        "can <@U0SECRET01|kari> and @ ola (<at>Per Hansen</at>, U0ABCDEF12) mail kari.n@example.com "
        "or ring +47 912 34 567 about id 6b1f7c1e-0000-4000-8000-00000000000a before 2028 @channel"
    )

    for secret in ("U0SECRET01", "kari", "ola", "Per Hansen", "U0ABCDEF12", "example.com", "912", "6b1f7c1e"):
        assert secret not in masked
    assert masked == (
        "can [someone] and [someone] ([someone], [someone]) mail [email] or ring [number] about id [id] "
        "before 2028 @channel"
    )
    assert mask("Can I post about WHATSAPP groups at 10:30?") == "Can I post about WHATSAPP groups at 10:30?"


def test_a_mention_written_as_at_and_an_id_is_one_placeholder_without_the_at() -> None:
    assert mask("can I tag @U0SECRET01 or @ 29:1abcdefghij?") == "can I tag [someone] or [someone]?"
    assert mask("write to @kari.n@example.com") == "write to [email]"
