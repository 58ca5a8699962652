"""The deployment picks the launcher in one place; the stage graph is the same for both."""

import pytest

from orchestration.defs.resources import resources_for
from orchestration.k8s.launcher import K8sLauncher
from orchestration.launchers import LocalLauncher


def test_the_deployment_chooses_the_launcher():
    assert isinstance(resources_for("local", "tiny")["launcher"], LocalLauncher)
    k8s = resources_for("k8s", "cluster")["launcher"]
    assert isinstance(k8s, K8sLauncher) and k8s.profile == "cluster"
    with pytest.raises(ValueError, match="'local' or 'k8s'"):
        resources_for("kubernetes", "cluster")


def test_the_cluster_profile_pushes_to_the_s3_remote():
    assert resources_for("k8s", "cluster")["dvc"].remote == "s3"
    assert resources_for("local", "tiny")["dvc"].remote == ""
