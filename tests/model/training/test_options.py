"""The training run's options: one parser for `cmr train` and torchrun, checks as RunUsageError."""
import pytest

from cmr_search.model.errors import RunUsageError
from cmr_search.model.training.options import check_options, parse_options, recorded_args


def test_checks_raise_usage_errors(tmp_path):
    ok = ["--cache", str(tmp_path), "--out", str(tmp_path / "o")]
    check_options(parse_options(ok))
    for extra, msg in ((["--batch", "0"], "--batch"), (["--text-variants", "-1"], "--text-variants"),
                       (["--ckpt-every", "0"], "--ckpt-every")):
        with pytest.raises(RunUsageError, match=msg):
            check_options(parse_options(ok + extra))
    with pytest.raises(RunUsageError, match="not found"):
        check_options(parse_options(["--cache", str(tmp_path / "none"), "--out", str(tmp_path / "o")]))
    (tmp_path / "o" / "train" / "last").mkdir(parents=True)
    (tmp_path / "o" / "train" / "last" / "state.pt").write_bytes(b"")
    with pytest.raises(RunUsageError, match="--resume"):
        check_options(parse_options(ok))
    check_options(parse_options(ok + ["--resume"]))


def test_recorded_args_leave_out_what_may_change_on_resume(tmp_path):
    args = recorded_args(parse_options(["--cache", "a", "--out", "o", "--device", "cpu", "--threads", "2"]))
    assert args["cache"] == "a" and not {"device", "threads", "resume", "no_progress", "load_workers"} & set(args)
    assert recorded_args(parse_options(["--cache", "a", "b", "--out", "o"]))["cache"] == ["a", "b"]
