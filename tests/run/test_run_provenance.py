"""Provenance: the commit (and whether the tree was dirty) is git's own answer, and a folder outside any
checkout says "no git"."""

import subprocess

from template.run import provenance
from tests.helpers.provenance_check import REPO, assert_true_provenance, git_head


def test_commit_is_git_rev_parse_head():
    found = provenance.git()
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True)
    assert found == git_head()
    if head.returncode == 0:  # a checkout (CI clones one); an exported tree has none to compare
        assert found["commit"] == head.stdout.strip() and len(found["commit"]) == 40


def test_a_folder_outside_git_says_no_git(tmp_path):
    assert provenance.git(tmp_path) == "no git"


def test_collect_names_the_versions_hardware_and_command():
    assert_true_provenance(provenance.collect())
