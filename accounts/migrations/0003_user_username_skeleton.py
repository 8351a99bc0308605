"""Add User.username_skeleton (the look-alike key of accounts/usernames.py) and fill it.

Filled oldest account first. Look-alikes accepted before the rule (``alice`` and ``аlice``,
``Bob`` and ``bob``) cannot both hold the unique key: the newer one keeps NULL, keeps working,
and is listed in the migration's output for the moderators. So the migration never fails on
existing data, and the column is unique from then on.
"""

from django.db import migrations, models


def fill(apps, schema_editor):
    from accounts.usernames import skeletons_fill

    clashes = skeletons_fill(apps.get_model("accounts", "User"))
    for newer, older in clashes:
        print(f"\n  username {newer!r} looks like the older {older!r}: it keeps no look-alike key", end="")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_sessions_and_deletions"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="username_skeleton",
            field=models.TextField(
                blank=True, editable=False, help_text="The name's look-alike key (UTS #39 skeleton).", null=True
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="user",
            name="username_skeleton",
            field=models.TextField(
                blank=True,
                editable=False,
                help_text="The name's look-alike key (UTS #39 skeleton).",
                null=True,
                unique=True,
            ),
        ),
    ]
