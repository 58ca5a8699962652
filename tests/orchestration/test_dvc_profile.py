"""DVC records params of the profile params.yaml names; a run with another profile is refused, not mis-recorded."""

import pytest

from orchestration.dvc import DvcError, DvcResource


def test_stages_running_another_profile_than_params_yaml_names_are_refused(tmp_path):
    (tmp_path / "params.yaml").write_text("profile: tiny\ntiny: {}\ngpu: {}\n")
    with pytest.raises(DvcError, match="selects profile 'tiny' but the stages run with 'gpu'.*profile: gpu"):
        DvcResource(repo=str(tmp_path), profile="gpu").is_up_to_date("any")
    DvcResource(repo=str(tmp_path), profile="tiny")._check_profile()        # the same profile: no complaint
