"""Attachment names and types as stored and sent back (pure)."""

from pulse.domain.attachments import clean_content_type, clean_file_name


def test_a_file_name_keeps_only_its_last_part_without_control_characters() -> None:
    assert clean_file_name("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert clean_file_name("../../etc/pass\x07wd") == "passwd"
    assert clean_file_name("  ..  ") == "attachment"
    assert clean_file_name(None) == "attachment"
    assert clean_file_name("é" * 300 + ".txt").endswith(".txt") and len(clean_file_name("é" * 300 + ".txt")) == 255


def test_an_implausible_content_type_is_stored_as_octet_stream() -> None:
    assert clean_content_type("application/pdf") == "application/pdf"
    assert clean_content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    for bad in (None, "", "bogus", "text/plain\r\nX-Injected: 1"):
        assert clean_content_type(bad) == "application/octet-stream"
