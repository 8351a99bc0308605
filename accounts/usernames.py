"""Username rules: one normal form, one writing system, no look-alikes of other names or reserved ones.

Every entry that names or renames an account (sign-up over REST and the web page, the Django
admin) goes through :func:`username_check`:

- The name is stored in Unicode normal form NFKC, so full-width ``ａｌｉｃｅ`` or a ligature
  ``ﬁ`` become the plain letters a reader sees.
- It uses one writing system, as UTS #39's "highly restrictive" level asks: one script, or
  Latin with Han + Hiragana + Katakana (Japanese), Han + Bopomofo, or Han + Hangul (Korean).
  Digits and ``_ . - + @`` belong to every script. ``аlice`` with a Cyrillic ``а`` is refused.
- Two names that look alike have the same *key*: the UTS #39 skeleton (NFD, every character
  mapped to its prototype in Unicode's confusables.txt, NFD again), case-folded. ``a1ice`` or
  ``rnary`` look like ``alice`` and ``mary``; ``Alice`` is ``alice``. The key is stored in
  ``User.username_skeleton`` (unique), and a name whose key matches an existing user's or a
  reserved name's is refused as taken.

The Unicode data (confusables and script properties) is a generated table shipped beside this
module (``unicode_data/tables.json``, with the script that made it and its Unicode versions):
nothing is downloaded at run time.
"""

from __future__ import annotations

import bisect
import functools
import json
import unicodedata
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from streams.errors import CONFLICT, INVALID, ChatError

TABLES = Path(__file__).with_name("unicode_data") / "tables.json"

# Names nobody may take, nor anything that looks like them (compared by key, with the separators
# _ . - + @ removed and l/I/1 taken for i, so "ad_min", "Admin", "adm1n" and "аdmin" are all "admin"). Names of the product's
# own roles, of pages and API paths, of the placeholder shown for deleted accounts, and mention
# keywords a client may give a meaning to.
RESERVED = frozenset(
    {
        # roles and the people behind the product
        "admin", "administrator", "admins", "root", "superuser", "sysadmin", "system", "sys", "support",
        "moderator", "moderators", "mod", "mods", "staff", "security", "help", "helpdesk", "info", "official",
        "owner", "team", "service", "operator", "bot", "server", "webmaster", "postmaster", "hostmaster", "abuse",
        "noreply", "no-reply", "mail", "chat",
        # placeholders the product shows itself
        "deleted", "deleted user", "deleteduser", "unknown", "anonymous", "anon", "guest", "nobody", "someone",
        "user", "users",
        # mentions
        "everyone", "everybody", "here", "channel", "room", "all", "me", "myself", "you",
        # values a client might print for a missing name
        "null", "none", "nil", "undefined", "true", "false", "nan",
        # pages and API paths
        "api", "static", "media", "www", "login", "logout", "signup", "account", "accounts", "settings", "rooms",
        "healthz", "readyz", "ws",
    }
)  # fmt: skip
_SEPARATORS = str.maketrans("", "", "_.-+@ ")

# UTS #39 section 5.1: the augmented script sets. A Han character can be part of Japanese (Jpan),
# Korean (Kore) or Han with Bopomofo (Hanb) text; kana only of Japanese; Hangul only of Korean.
_AUGMENT = {
    "Hani": {"Hanb", "Jpan", "Kore"},
    "Hira": {"Jpan"},
    "Kana": {"Jpan"},
    "Hrkt": {"Hira", "Kana", "Jpan"},  # characters shared by both kana (the prolonged sound mark)
    "Hang": {"Kore"},
    "Bopo": {"Hanb"},
}
_ANY = frozenset({"Zyyy", "Zinh"})  # Common and Inherited: digits, punctuation, combining marks
_WITH_LATIN = frozenset({"Jpan", "Kore", "Hanb"})  # "highly restrictive" allows Latin beside these

TAKEN = "That username is taken."
SIMILAR = "That username is too easy to mistake for an existing one; please choose another."


@functools.cache
def _tables() -> tuple[dict[str, str], list[int], list[tuple[int, frozenset[str]]], dict[str, str]]:
    data = json.loads(TABLES.read_text(encoding="utf-8"))
    ranges = [(first, last, frozenset(value.split())) for first, last, value in data["scripts"]]
    starts = [first for first, _, _ in ranges]
    spans = [(last, value) for _, last, value in ranges]
    return data["confusables"], starts, spans, data["script_names"]


def unicode_versions() -> dict[str, str]:
    """The Unicode versions of the shipped tables and of Python's normalisation (for the docs and checks)."""
    data = json.loads(TABLES.read_text(encoding="utf-8"))
    return {
        "confusables": data["confusables_version"],
        "scripts": data["scripts_version"],
        "normalization": unicodedata.unidata_version,
    }


def username_normalize(username: str) -> str:
    """The form a name is stored and shown in: surrounding spaces dropped, Unicode NFKC."""
    return unicodedata.normalize("NFKC", (username or "").strip())


def skeleton(text: str) -> str:
    """The UTS #39 skeleton: NFD, each character replaced by its confusables.txt prototype, NFD."""
    confusables = _tables()[0]
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(confusables.get(char, char) for char in decomposed))


def username_key(username: str) -> str:
    """What two names that look alike share: the skeleton, case-folded, and the skeleton of that.

    Case-folded so that ``Alice`` and ``alice`` are one name; the skeleton is taken again after
    folding because a lower-case letter may have a prototype its capital has not.
    """
    return skeleton(skeleton(username_normalize(username)).casefold())


def _keys(username: str) -> set[str]:
    """The keys a new name is compared by: of the name as typed and of its lower-case form.

    Both, because case and look-alikes interact: a capital ``I`` looks like ``l`` (``AIice`` is
    ``Alice``), while ``ALICE`` must still clash with ``alice``.
    """
    name = username_normalize(username)
    return {username_key(name), username_key(name.casefold())}


def scripts_of(char: str) -> frozenset[str]:
    """The character's Script_Extensions (ISO 15924 codes); Zzzz when it is unassigned."""
    _, starts, spans, _ = _tables()
    index = bisect.bisect_right(starts, ord(char)) - 1
    if index >= 0 and ord(char) <= spans[index][0]:
        return spans[index][1]
    return frozenset({"Zzzz"})


def _resolved(chars) -> set[str] | None:
    """The UTS #39 resolved script set of these characters (None: no character restricts it)."""
    resolved: set[str] | None = None
    for char in chars:
        scripts = scripts_of(char)
        if scripts & _ANY:
            continue
        augmented = set(scripts)
        for script in scripts:
            augmented |= _AUGMENT.get(script, set())
        resolved = augmented if resolved is None else resolved & augmented
    return resolved


def mixed_scripts(username: str) -> list[str] | None:
    """None if the name is "highly restrictive" (UTS #39 5.2), else the script names it mixes."""
    name = username_normalize(username)
    resolved = _resolved(name)
    if resolved is None or resolved:
        return None
    # Latin beside Japanese, Korean or Chinese with Bopomofo: the rest alone must be one of those.
    rest = _resolved(char for char in name if "Latn" not in scripts_of(char))
    if rest is not None and rest & _WITH_LATIN:
        return None
    names = _tables()[3]
    found: list[str] = []
    for char in name:
        scripts = scripts_of(char)
        if scripts & _ANY or scripts & set(found):
            continue
        # A character of several scripts (the Arabic-Indic digits) is named by the first one.
        found.append(sorted(scripts)[0])
    return sorted(names.get(script, script).replace("_", " ") for script in found)


def username_shape_check(username: str) -> str:
    """The normalised name, or ``invalid``: characters outside the allowed set, or mixed scripts.

    Needs no database: the sign-up page runs it as its form's own check.
    """
    name = username_normalize(username)
    user_model = get_user_model()
    try:
        # Blank, too long, characters outside letters, digits and @/./+/-/_.
        user_model._meta.get_field("username").clean(name, user_model(username=name))
    except ValidationError as exc:
        raise ChatError(INVALID, " ".join(exc.messages)) from None
    scripts = mixed_scripts(name)
    if scripts:
        raise ChatError(
            INVALID,
            f"A username must be written in one alphabet; this one mixes {' and '.join(scripts)}. "
            "Letters from two alphabets can make a name look like someone else's.",
        )
    return name


def is_reserved(username: str) -> bool:
    """True if the name is, or looks like, one of ``RESERVED`` (separators ignored).

    Two comparisons. In lower case, where an ``i`` of a reserved name may also be written l, I
    or 1: "adm1n" and "ADMlN" are "admin". And as typed, against the reserved names in lower,
    title and upper case: "aII" (capital i) looks like "all". Not by the folded key, in which
    "ALI" (skeleton "ALl") would become "all".
    """
    name = username_normalize(username)
    lower, shaped = _reserved_keys()
    return (
        username_key(name.casefold()).translate(_SEPARATORS) in lower or skeleton(name).translate(_SEPARATORS) in shaped
    )


@functools.cache
def _reserved_keys() -> tuple[frozenset[str], frozenset[str]]:
    lower, shaped = set(), set()
    for name in RESERVED:
        spellings = {username_key(name).translate(_SEPARATORS)}
        for _ in range(name.count("i")):
            spellings |= {s[:i] + "l" + s[i + 1 :] for s in spellings for i, c in enumerate(s) if c == "i"}
        lower |= spellings
        shaped |= {skeleton(cased).translate(_SEPARATORS) for cased in (name, name.title(), name.upper())}
    return frozenset(lower), frozenset(shaped)


def username_check(*, username: str, exclude_user_id: int | None = None) -> str:
    """The normalised name if it may be used, else a ChatError a user can act on.

    ``invalid`` for a name outside the allowed characters or mixing scripts; ``conflict`` for a
    reserved name, one taken in any case, or one that looks like an existing user's (other than
    ``exclude_user_id``, the account being renamed).
    """
    name = username_shape_check(username)
    if is_reserved(name):
        raise ChatError(CONFLICT, TAKEN)
    users = get_user_model().objects.all()
    if exclude_user_id is not None:
        users = users.exclude(pk=exclude_user_id)
    if users.filter(username__iexact=name).exists():
        raise ChatError(CONFLICT, TAKEN)
    if users.filter(username_skeleton__in=_keys(name)).exists():
        raise ChatError(CONFLICT, SIMILAR)
    return name


def skeletons_fill(user_model, *, batch: int = 2000) -> list[tuple[str, str]]:
    """Store every user's key, oldest account first (the data migration; again after a table update).

    A later account whose key an older one already holds (look-alikes accepted before these
    rules) keeps no key (NULL) instead of failing the unique column; returns those pairs as
    (newer name, older name) for the operators. Both accounts keep working.
    """
    held: dict[str, str] = {}
    clashes: list[tuple[str, str]] = []
    # Cleared first, so that a key moving from one account to another never clashes on the way.
    user_model.objects.exclude(username_skeleton=None).update(username_skeleton=None)
    pending = []
    users = user_model.objects.order_by("date_joined", "pk").only("pk", "username", "date_joined")
    for user in users.iterator(chunk_size=batch):
        key = username_key(user.username)
        if key in held:
            clashes.append((user.username, held[key]))
            continue
        held[key] = user.username
        user.username_skeleton = key
        pending.append(user)
        if len(pending) >= batch:
            user_model.objects.bulk_update(pending, ["username_skeleton"])
            pending.clear()
    if pending:
        user_model.objects.bulk_update(pending, ["username_skeleton"])
    return clashes
