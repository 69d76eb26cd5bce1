"""Synthetic MTAT mirror: MTAT's files and formats, with audio that sounds like its tags.

Pipeline of one clip (each module has one job):

* :mod:`~jetatag.synth.styles` — a latent style per track (orchestral, techno, indian, ...) and its plan:
  tempo, scale, instruments per role, textures, drums, singer, dynamics, reverb;
* :mod:`~jetatag.synth.score` — the arrangement as notes;
* :mod:`~jetatag.synth.voice` — a numpy formant singer (male, female, opera, choir, chant);
* :mod:`~jetatag.synth.notebank` — a sampler: every General-MIDI instrument's notes rendered once by
  midirenderer from pretty_midi's TimGM6mb soundfont, cached at 16 kHz, then placed, pitch-shifted and released;
* :mod:`~jetatag.synth.render` — the score played on the sampler, the singer, one room and a jittered mix;
* :mod:`~jetatag.synth.concepts` / :mod:`~jetatag.synth.labels` — what is audible in the clip, and tags drawn
  from it the way TagATune players tagged, with numbers in ``data/fitted.json`` calibrated offline to MTAT's
  tag statistics (``benchmarks/synth_fit.py``, from ``benchmarks/data/mtat_tag_stats.json``);
* :mod:`~jetatag.synth.catalog`, :mod:`~jetatag.synth.clip`, :mod:`~jetatag.synth.mirror` — MTAT-like names
  and folders, per-clip keyed randomness, and the mirror files (zip pieces, CSVs, SHA256SUMS).

The tables (styles, instruments, tag-concept links, fitted numbers) are JSON package data in ``data/``, each
with a JSON schema, read by :mod:`~jetatag.synth.tables`.
"""
