"""Tests of the ``labels`` stage: the real annotations format, tie-breaks, drops, and the real MTAT split counts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mirror_fixture import TinyData

from jetatag.data.labels import NO_TOP_TAG, run_labels, select_clips, top_tags
from jetatag.errors import StageError
from jetatag.mtat import TAGS_188, read_annotations, write_annotations

MTAT = Path("/work/shared/mtat")


def real_format(header: list[str], rows: list[list[str]]) -> bytes:
    """An annotations file written by hand the way the official one is: quoted fields, tabs, CRLF."""
    lines = ["\t".join(f'"{field}"' for field in row) for row in [header, *rows]]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_real_format_with_frequency_ties(tmp_path: Path):
    # column counts: metal 2, female voice 2 (a tie the standard order breaks: metal first),
    # "duet" 2 and "bongos" 2 (a tie outside the standard list: column order), "choral" 3, "guitar" 1
    tags = list(TAGS_188)
    rows = []
    on = [
        ["female voice", "metal", "choral", "duet"],
        ["female voice", "metal", "choral", "bongos"],
        ["choral", "duet", "bongos"],
        ["guitar"],
    ]
    for i, clip_tags in enumerate(on):
        rows.append([str(10 + i), *("1" if t in clip_tags else "0" for t in tags), f"{'0cf'[i % 3]}/clip-{i}.mp3"])
    path = tmp_path / "annotations_final.csv"
    path.write_bytes(real_format(["clip_id", *tags, "mp3_path"], rows))
    annotations = read_annotations(path)
    assert len(annotations.tags) == 188 and annotations.mp3_path[1] == "c/clip-1.mp3"
    ranked = [annotations.tags[c] for c in top_tags(annotations.labels, annotations.tags, 6)]
    assert ranked == ["choral", "metal", "female voice", "duet", "bongos", "guitar"]
    # a tie across the cut-off is decided by the same rule: "duet" (column 2) before "bongos" (column 6)
    assert [annotations.tags[c] for c in top_tags(annotations.labels, annotations.tags, 4)][-1] == "duet"
    selection = select_clips(annotations, n_tags=3, unreadable={})
    assert selection.tags == ("choral", "metal", "female voice") and selection.counts == (3, 2, 2)
    assert selection.keep.tolist() == [True, True, True, False] and selection.dropped == {3: NO_TOP_TAG}
    assert selection.split.tolist() == ["train", "valid", "test", "train"]


def test_drops_empty_corrupt_missing_and_untagged(tmp_path: Path, tiny: tuple[Path, TinyData], make_params, caplog):
    raw, data = tiny
    run_labels(make_params({"data": {"n_tags": 10}}), raw_dir=raw, out_dir=tmp_path)
    clips = pd.read_parquet(tmp_path / "clips.parquet")
    dropped = {d["mp3_path"]: d["reason"] for d in json.loads((tmp_path / "dropped.json").read_text())}
    tags = json.loads((tmp_path / "tags.json").read_text())
    empty, corrupt = data.mp3_paths[3], data.mp3_paths[7]
    assert dropped[empty] == "empty" and dropped[corrupt].startswith("undecodable")
    assert empty in caplog.text and corrupt in caplog.text
    names = [t["name"] for t in tags["tags"]]
    top = data.labels[:, [TAGS_188.index(n) for n in names]]
    expect_kept = [i for i, p in enumerate(data.mp3_paths) if top[i].any() and p not in (empty, corrupt)]
    assert clips["clip_id"].tolist() == [data.clip_ids[i] for i in expect_kept]
    assert len(dropped) == len(data.mp3_paths) - len(expect_kept)
    np.testing.assert_array_equal(clips[names].to_numpy(), top[expect_kept])
    assert [t["count"] for t in tags["tags"]] == top.sum(axis=0).tolist()
    assert tags["n_clips"] == clips["split"].value_counts().reindex(["train", "valid", "test"], fill_value=0).to_dict()
    assert list(clips.columns[:3]) == ["clip_id", "mp3_path", "split"] and (clips[names].dtypes == np.uint8).all()


def test_missing_mp3_is_dropped(tmp_path: Path, tiny: tuple[Path, TinyData], make_params):
    raw, data = tiny
    copy = tmp_path / "raw"
    copy.mkdir()
    for name in ("annotations_final.csv", "clip_info_final.csv"):
        (copy / name).write_bytes((raw / name).read_bytes())
    (copy / "mp3").symlink_to(raw / "mp3")  # same audio; then hide one clip behind a rewritten path
    text = (copy / "annotations_final.csv").read_text().replace(data.mp3_paths[0], "0/not-there.mp3")
    (copy / "annotations_final.csv").write_text(text)
    run_labels(make_params({"data": {"n_tags": 10}}), raw_dir=copy, out_dir=tmp_path / "labels")
    dropped = json.loads((tmp_path / "labels" / "dropped.json").read_text())
    assert {"clip_id": data.clip_ids[0], "mp3_path": "0/not-there.mp3", "reason": "missing"} in dropped


def test_too_many_tags_is_a_clear_error(tmp_path: Path, tiny: tuple[Path, TinyData], make_params):
    with pytest.raises(StageError, match="data.n_tags = 189"):
        run_labels(make_params({"data": {"n_tags": 189}}), raw_dir=tiny[0], out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not MTAT.is_dir(), reason="real MTAT label data (/work/shared/mtat) not available")
def test_real_mtat_top50_and_split_counts(tmp_path: Path):
    npz = np.load(MTAT / "annotations_188.npz")
    with open(MTAT / "clips.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [int(r["clip_id"]) for r in rows] == npz["clip_id"].tolist()
    path = tmp_path / "annotations_final.csv"
    write_annotations(path, npz["clip_id"], npz["labels"], [r["mp3_path"] for r in rows])
    broken = {r["mp3_path"]: "empty" for r in rows if r["broken"] == "1"}
    assert len(broken) == 3

    selection = select_clips(read_annotations(path), n_tags=50, unreadable=broken)

    assert list(selection.tags) == (MTAT / "tags_top50.txt").read_text().split("\n")[:50]
    split = selection.split[selection.keep]
    assert [int((split == s).sum()) for s in ("train", "valid", "test")] == [15247, 1529, 4332]
    kept = np.flatnonzero(selection.keep)
    for name in ("train", "valid", "test"):
        listed = [line.split("\t")[0] for line in (MTAT / f"split_{name}.tsv").read_text().splitlines() if line]
        assert kept[split == name].tolist() == [int(r) for r in listed]
    np.testing.assert_array_equal(
        npz["labels"][np.ix_(kept, selection.columns)], np.load(MTAT / "binary_top50.npy")[kept]
    )
