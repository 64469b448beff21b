import pytest

from training import precision


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", True),
        ("fpu sse2 avx2 amx_tile amx_bf16", True),
        ("fpu sse2 avx2 avx512f avx512bw", False),
    ],
)
def test_cpu_has_bfloat16_reads_the_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n")
    assert precision.cpu_has_bfloat16(str(cpuinfo)) is expected


def test_cpu_has_bfloat16_without_cpuinfo(tmp_path):
    assert precision.cpu_has_bfloat16(str(tmp_path / "absent")) is False


@pytest.mark.parametrize(
    "native, expected", [(True, "mixed_bfloat16"), (False, "float32")]
)
def test_auto_follows_the_cpu(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: native)
    assert precision.resolve_precision("auto") == expected
    assert precision.set_precision("auto").name == expected


def test_explicit_policies_are_kept(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    for policy in precision.POLICIES:
        assert precision.resolve_precision(policy) == policy


def test_unknown_policy_is_named():
    with pytest.raises(ValueError, match="Argument `policy`.*'bf16'"):
        precision.resolve_precision("bf16")
