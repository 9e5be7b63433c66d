"""`make run`'s integration secrets key: the environment's, else one made once and kept."""

from pathlib import Path

from pydantic import SecretStr

from pulse.config import Settings
from pulse.devstack_maverick import secrets_key
from pulse.secretbox import SecretBox


def test_the_local_stack_keeps_one_generated_key_unless_one_is_given(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = secrets_key(settings)
    assert secrets_key(settings) == first
    assert (tmp_path / "data" / "secrets-key").stat().st_mode & 0o777 == 0o600
    SecretBox(first).seal("works", "context")  # a usable AES-256 key
    given = Settings(data_dir=tmp_path / "data", secrets_key=SecretStr("x" * 43 + "="))
    assert secrets_key(given) == "x" * 43 + "="
