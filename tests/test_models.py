"""Tests for jetatag.models: extractor shapes and sizes, front ends, heads, losses, checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics.pairwise import cosine_similarity

from jetatag.config import HcnnFrontEnd, HcnnHead, ModelParams, TagEncoderNorm, load_params
from jetatag.errors import StageError
from jetatag.extractors import EXTRACTOR_IDS, extractor_spec
from jetatag.models import H_DIM, build_extractor, common, conv3x3, h_dim, same_conv
from jetatag.models.common import (
    BIAS_IN_MATMUL_FROM,
    KERAS_BN_EPS,
    KERAS_BN_MOMENTUM,
    ChannelsLastGradBack,
    FramesMatmul,
    WaveConv,
    WaveDropout,
    as_rows,
    framed_conv,
    row_chunks,
    segment_count,
)
from jetatag.models.conv3x3 import BANDED_FROM_ROWS, CHEAP_BACKWARD_FROM, Conv3x3, banded_weight_grad
from jetatag.models.harmonic import BAND_GROUP, A21HarmonicSTFT, BandedFilterbank, HarmonicSTFT, band_groups
from jetatag.models.heads import Classifier
from jetatag.models.losses import classification_loss, pair_loss, reconstruction_loss
from jetatag.models.same_conv import (
    STACKED_TAPS_BELOW,
    TAP_CHUNK_ROWS,
    TAP_GEMM_FROM_CHANNELS,
    WeightGrad,
    WeightGradConv,
    onednn_weight_grad,
    tap_weight_grad,
)
from jetatag.models.samplecnn import SEBlock
from jetatag.models.sinc import SincConv, a21_filters, fft_convolve, zero_padded_clips
from jetatag.models.tagger import (
    FORMAT_VERSION,
    Tagger,
    TaggerMeta,
    build_joint_embedding,
    build_tagger,
    load_tagger,
    save_tagger,
)

PARAMS_YAML = Path(__file__).resolve().parents[1] / "params.yaml"
PAPER = ModelParams(width=1.0, sinc_filters=256, sinc_taps=2501)
SR = 16000
SHORT = 3**8
"""Crop length for head, loss and checkpoint tests: pooling shrinks on short inputs, so every extractor takes it."""


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def demo() -> ModelParams:
    return load_params(PARAMS_YAML).model


def n_trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def noise(rng: np.random.Generator, *shape: int) -> torch.Tensor:
    return torch.from_numpy(rng.uniform(-1, 1, size=shape).astype(np.float32))


# --- registry -----------------------------------------------------------------------------------


def test_unknown_extractor_lists_the_ids() -> None:
    with pytest.raises(ValueError, match="samplecnn_rese"):
        build_extractor("vggish", PAPER, sample_rate=SR)


# --- extractors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXTRACTOR_IDS)
def test_paper_size_extractor_maps_paper_crops_to_h(name: str, rng: np.random.Generator) -> None:
    extractor = build_extractor(name, PAPER, sample_rate=SR).eval()
    with torch.no_grad():
        h = extractor(noise(rng, 2, extractor_spec(name).paper_input_length))
    assert h.shape == (2, H_DIM)
    assert torch.isfinite(h).all()


@pytest.mark.parametrize("name", EXTRACTOR_IDS)
def test_demo_size_extractor_maps_demo_crops_to_h(name: str, demo: ModelParams, rng: np.random.Generator) -> None:
    extractor = build_extractor(name, demo, sample_rate=SR)
    h = extractor(noise(rng, 2, demo.crop_samples(name)))  # training mode: BN on batch statistics
    assert h.shape == (2, H_DIM)
    assert n_trainable(extractor) < n_trainable(build_extractor(name, PAPER, sample_rate=SR)) / 5


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("samplecnn", 2_632_192),
        ("samplecnn_se", 24_691_456),
        ("samplecnn_res", 4_869_632),
        ("samplecnn_rese", 26_928_896),
    ],
)
def test_sample_cnn_parameter_counts_match_the_authors(name: str, count: int) -> None:
    assert n_trainable(build_extractor(name, PAPER, sample_rate=SR)) == count


@pytest.mark.parametrize(
    ("head", "front_end", "count"), [("a21", "won", 4_437_901), ("a21", "a21", 4_437_901), ("dense", "won", 5_489_549)]
)
def test_harmonic_cnn_parameter_counts(head: HcnnHead, front_end: HcnnFrontEnd, count: int) -> None:
    # "a21": the A22 checkpoint's 4,437,901 trainable parameters up to h (Q, input BN and the seven blocks)
    model = dataclasses.replace(PAPER, hcnn_head=head, hcnn_front_end=front_end)
    extractor = build_extractor("hcnn", model, sample_rate=SR)
    assert n_trainable(extractor) == count and h_dim(extractor) == H_DIM


def test_a21_harmonic_cnn_head_is_the_pooled_blocks(rng: np.random.Generator) -> None:
    model = ModelParams(width=0.125, hcnn_head="a21", hcnn_crop_samples=8000)
    tagger = build_tagger("hcnn", model, n_tags=5, sample_rate=SR, joint_heads=True)
    assert h_dim(tagger.extractor) == 32 + 32 + 64  # blocks 5-7 at width 0.125, no dense layer
    wave = noise(rng, 2, 8000)
    assert tagger.embed(wave).shape == (2, 128) and tagger(wave).shape == (2, 5)
    assert tagger.audio_embedding(wave).shape == (2, model.embed_dim)


def test_harmonic_cnn_accepts_crops_shorter_than_its_pooling() -> None:
    extractor = build_extractor("hcnn", ModelParams(width=0.0625, hcnn_crop_samples=4096), sample_rate=SR).eval()
    with torch.no_grad():
        assert extractor(torch.zeros(1, 4096)).shape == (1, H_DIM)


# --- harmonic STFT ------------------------------------------------------------------------------


def test_harmonic_stft_shape_and_centres() -> None:
    hstft = HarmonicSTFT(sample_rate=SR)
    out = hstft(torch.zeros(2, 80000))
    assert out.shape == (2, 6, 128, 1 + 80000 // 256)
    assert out.is_contiguous()  # the BatchNorm after it runs 3x faster on this layout
    centres = hstft.f0.view(6, 128)
    # base grid: C1 upwards in half semitones; harmonic k is k × the base grid
    assert centres[0, 0].item() == pytest.approx(32.703, abs=1e-3)
    assert torch.allclose(centres[0, 1:] / centres[0, :-1], torch.tensor(2 ** (1 / 24)), rtol=1e-5)
    for k in range(6):
        assert torch.allclose(centres[k], (k + 1) * centres[0], rtol=1e-6)
    assert centres[-1, -1] < SR / 2
    assert torch.all(out == -100.0)  # silence hits the 1e-10 power floor


def test_harmonic_stft_matches_librosa_reference(rng: np.random.Generator) -> None:
    wave = rng.uniform(-1, 1, size=8000).astype(np.float32)
    out = HarmonicSTFT(sample_rate=SR)(torch.from_numpy(wave)[None])[0].detach().numpy()  # (6, 128, T)
    # independent reference: librosa power STFT and triangles of half-width ERB(f)/2 around librosa's note grid
    power = np.abs(librosa.stft(wave.astype(np.float64), n_fft=512, hop_length=256, pad_mode="reflect")) ** 2
    base = librosa.midi_to_hz(24 + np.arange(128) / 2)
    centres = np.concatenate([base * k for k in range(1, 7)])
    bins = librosa.fft_frequencies(sr=SR, n_fft=512)
    bw = 0.1079 * centres + 24.7
    fb = np.clip(1 - np.abs(bins[:, None] - centres[None]) / (bw / 2), 0, None)
    expected = 10 * np.log10(np.maximum(fb.T @ power, 1e-10)).reshape(6, 128, -1)
    loud = expected > -60
    assert loud.mean() > 0.9
    np.testing.assert_allclose(out[loud], expected[loud], atol=0.01)


@pytest.mark.parametrize(("harmonic", "fundamental"), [(1, 440.0), (2, 220.0), (4, 110.0)])
def test_pure_tone_excites_the_band_of_its_subharmonic(harmonic: int, fundamental: float) -> None:
    t = torch.arange(16000) / SR
    out = HarmonicSTFT(sample_rate=SR)(torch.sin(2 * torch.pi * 440.0 * t)[None])  # (1, 6, 128, T)
    band = out[0, harmonic - 1].mean(dim=-1).argmax().item()
    expected = round(2 * (librosa.hz_to_midi(fundamental) - 24))  # half-semitone index above C1
    assert band == expected


def test_a21_harmonic_stft_is_kapres_magnitude_db_with_the_reshape(rng: np.random.Generator) -> None:
    # a loud clip that starts silent (its 80-dB floor binds) and a quiet one (kapre's 1e-5 floor binds first)
    loud = np.concatenate([np.zeros(4000), 1e3 * rng.uniform(-1, 1, 4000)])
    waves = np.stack([loud, 1e-3 * rng.uniform(-1, 1, 8000)]).astype(np.float32)
    out = A21HarmonicSTFT(sample_rate=SR)(torch.from_numpy(waves)).detach().numpy()  # (2, 6, 128, T)
    assert out.shape == (2, 6, 128, 8000 // 256)
    # independent reference: kapre pads n_fft - hop zeros at the start, frames without centring, takes |STFT|
    padded = np.pad(waves.astype(np.float64), ((0, 0), (256, 0)))
    magnitude = np.abs(librosa.stft(padded, n_fft=512, hop_length=256, center=False))  # (2, 257, T)
    base = librosa.midi_to_hz(24 + np.arange(128) / 2)
    centres = np.concatenate([base * k for k in range(1, 7)])
    bins = librosa.fft_frequencies(sr=SR, n_fft=512)
    fb = np.clip(1 - np.abs(bins[:, None] - centres[None]) / ((0.1079 * centres + 24.7) / 2), 0, None)
    db = 10 * np.log10(np.maximum(np.einsum("fn,bft->bnt", fb, magnitude), 1e-5))  # (2, 768, T)
    db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - 80)  # per-example 80-dB floor
    # Keras Reshape((-1, 128, 6)) of each frame's 768 harmonic-major bands, channels last → (6, 128, T)
    expected = db.transpose(0, 2, 1).reshape(2, -1, 128, 6).transpose(0, 3, 2, 1)
    np.testing.assert_allclose(out, expected, atol=0.01)
    # channel 1, row 0 is the fundamental's second band, not the second harmonic's first
    assert np.allclose(out[:, 1, 0], db[:, 1], atol=0.01)
    assert out[0].min() == pytest.approx(out[0].max() - 80, abs=1e-3)  # floored under its own maximum
    assert out[1].min() == pytest.approx(-50, abs=1e-3) and out[1].max() - 80 < -50


def test_harmonic_stft_bandwidth_is_learnable_or_fixed() -> None:
    learnable = HarmonicSTFT(sample_rate=SR)
    learnable(torch.randn(1, 4096)).mean().backward()
    assert learnable.bw_Q.grad is not None and learnable.bw_Q.grad.abs() > 0
    assert n_trainable(HarmonicSTFT(sample_rate=SR, learn_bw="fix")) == 0


@pytest.mark.parametrize("q", [1.0, 0.05])  # Won et al.'s start, and bands wide enough to overlap whole groups
@pytest.mark.parametrize("silent_group", [False, True])  # the first group's filters all zero
def test_banded_filterbank_is_the_dense_product_with_its_gradients(
    q: float, silent_group: bool, rng: np.random.Generator
) -> None:
    hstft = HarmonicSTFT(sample_rate=SR, bw_Q=q)

    def bank() -> torch.Tensor:  # (768, 257), bw_Q's graph behind it: one for each product
        filters = hstft.filterbank().t()
        return torch.cat([torch.zeros_like(filters[:BAND_GROUP]), filters[BAND_GROUP:]]) if silent_group else filters

    filters = bank()
    groups = band_groups(filters)
    assert len(groups) == filters.shape[0] // BAND_GROUP
    assert (groups[0][2] == groups[0][3]) == silent_group  # an empty bin range for a silent group
    covered = sum((end - start) * (high - low) for start, end, low, high in groups)
    assert covered < filters.numel() / (10 if q == 1.0 else 1)  # the point of the bands: 8 % at Q = 1
    values = torch.from_numpy(rng.random((2, filters.shape[1], 9), dtype=np.float32)).requires_grad_()
    y = BandedFilterbank.apply(filters, values)
    reference = torch.matmul(bank(), values)  # (2, 768, 9)
    assert y.is_contiguous() and torch.allclose(y, reference, rtol=1e-5, atol=1e-6)
    assert_same_gradients(y, reference, (hstft.bw_Q, values))


# --- sinc filters -------------------------------------------------------------------------------


def test_sinc_filters_start_as_the_mel_spaced_band_passes() -> None:
    sr, taps = SR, 1001
    sinc = SincConv(8, taps, sample_rate=sr)
    low, high = (edge.detach().numpy() for edge in sinc.band_edges())
    # independent mel grid (HTK: 2595 log10(1 + f/700)) from 80 mel to Nyquist
    mel = np.linspace(80, 2595 * np.log10(1 + (sr / 2) / 700), 8)
    centres = 700 * (10 ** (mel / 2595) - 1)
    np.testing.assert_allclose(low, [30.0, *centres[:-1]], rtol=1e-4)  # band i spans centres i-1 .. i+1
    np.testing.assert_allclose(high, [*centres[1:], sr / 2 - 100], rtol=1e-4)
    assert high[-1] == pytest.approx(sr / 2 - 100)
    # frequency response: unit gain inside each band, near zero away from it
    n_fft = 1 << 15
    gain = np.abs(np.fft.rfft(sinc.filters().detach().numpy(), n=n_fft, axis=-1))  # (8, n_fft/2 + 1)
    hz = np.fft.rfftfreq(n_fft, d=1 / sr)
    for i in range(8):
        inside = (hz > low[i] + 60) & (hz < high[i] - 60)
        outside = (hz < low[i] - 60) | (hz > high[i] + 60)
        assert np.allclose(gain[i, inside], 1.0, atol=0.03), i
        assert gain[i, outside].max() < 0.03, i


def test_sinc_convolution_equals_direct_convolution(rng: np.random.Generator) -> None:
    sinc = SincConv(4, 251, sample_rate=SR)
    wave = noise(rng, 2, 3000)
    out = sinc(wave).detach().numpy()  # (2, 4, 3000)
    h = sinc.filters().detach().numpy()
    for b in range(2):
        for f in range(4):
            np.testing.assert_allclose(out[b, f], np.convolve(wave[b].numpy(), h[f], mode="same"), atol=1e-4)


@pytest.mark.parametrize("wave_grad", [False, True])  # training never asks for the wave's gradient; it is still right
def test_fft_convolution_gradients_equal_the_direct_convolutions(wave_grad: bool, rng: np.random.Generator) -> None:
    wave = noise(rng, 3, 1000).requires_grad_(wave_grad)
    filters = noise(rng, 4, 63).requires_grad_()  # not symmetric: each tap's gradient is checked
    weights = noise(rng, 3, 4, 1000)  # a loss that weighs every output sample differently
    out = fft_convolve(wave, filters)  # (3, 4, 1000)
    reference = F.conv1d(wave.unsqueeze(1), filters.flip(-1).unsqueeze(1), padding=31)  # convolution, "same"
    assert torch.allclose(out, reference, atol=1e-4)
    assert as_rows(out).data_ptr() == out.data_ptr()  # written as the body's channels-last rows: no copy between
    assert fft_convolve(wave, filters.double()).dtype == torch.float64  # float64 filters (the exactness checks)
    inputs = (filters, wave) if wave_grad else (filters,)
    grads = torch.autograd.grad((out * weights).sum(), inputs)
    expected = torch.autograd.grad((reference * weights).sum(), inputs)
    for got, want in zip(grads, expected, strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_zero_padded_clips_are_f_pads_values(memory_format: torch.memory_format, rng: np.random.Generator) -> None:
    rows = noise(rng, 3, 4, 1, 1000).contiguous(memory_format=memory_format).squeeze(2)  # (B, F, L)
    clips = [clip.clone() for clip in zero_padded_clips(rows, 1024)]
    assert all(clip.is_contiguous() for clip in clips)
    assert torch.equal(torch.stack(clips), F.pad(rows, (0, 24)))


def test_a21_sinc_filters_are_the_pi_less_22050_hz_design() -> None:
    taps, rate = 101, 22050
    bank = a21_filters(n_filters=4, n_taps=taps)
    mel = np.linspace(80, 2595 * np.log10(1 + (rate / 2) / 700), 4)  # independent HTK mel grid
    centres = 700 * (10 ** (mel / 2595) - 1)
    b1, b2 = np.array([30.0, *centres[:-1]]), np.array([*centres[1:], rate / 2 - 100])  # A21 modules.py:379-382
    low = b1 + 50  # :390, in design Hz
    high = low + np.abs(b2 - b1) + 50  # :391-393
    k = np.arange(1, taps // 2 + 1)

    def low_pass(f: float) -> np.ndarray:  # :445-450, sin(2 f t) / (2 f t) at t = k / rate: no π
        right = np.sin(2 * f * k / rate) / (2 * f * k / rate)
        return 2 * f / (10 * rate) * np.concatenate([right[::-1], [1.0], right])

    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.linspace(0, taps, taps) / taps)  # :396-397
    for i in range(4):
        band_pass = low_pass(high[i]) - low_pass(low[i])
        np.testing.assert_allclose(bank[i], band_pass / band_pass.max() * window, rtol=1e-9, atol=1e-12)


def test_a21_sinc_bank_spans_about_28_hz_to_2_5_khz_at_16_khz() -> None:
    bank = a21_filters(n_filters=256, n_taps=2501)  # paper size
    n_fft = 1 << 17
    gain = np.abs(np.fft.rfft(bank, n=n_fft, axis=-1))  # (256, n_fft/2 + 1)
    hz = np.fft.rfftfreq(n_fft, d=1 / 16000)
    peaks = hz[gain.argmax(axis=1)]  # (256,) each filter's centre at 16 kHz
    assert 25 < peaks[0] < 31 and 2500 < peaks.max() < 2600  # measured 27.7 Hz and 2,557 Hz
    envelope = gain.max(axis=0)
    passband = hz[envelope >= envelope.max() / np.sqrt(2)]
    assert 20 < passband.min() < 25 and 2500 < passband.max() < 2600  # measured 22.1 Hz to 2,543 Hz (-3 dB)
    assert envelope[hz > 3000].max() < envelope.max() * 1e-3  # nothing above 3 kHz: -75 dB measured


def test_a21_sinc_filters_receive_no_gradient(rng: np.random.Generator) -> None:
    model = build_extractor("sincnet", ModelParams(width=0.0625, sinc_taps=63, sinc_design="a21"), sample_rate=SR)
    assert list(model.frontend.parameters()) == []  # no learnable cut-offs, no BatchNorm after the bank
    learnable = build_extractor("sincnet", ModelParams(width=0.0625, sinc_taps=63), sample_rate=SR)
    n_filters = learnable.frontend.sinc.n_filters
    n_params = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in learnable.parameters()) - n_params == 4 * n_filters  # cut-offs + BN affine
    model(noise(rng, 2, 3**10)).square().sum().backward()
    assert model.frontend.sinc.bank.grad is None and not model.frontend.sinc.bank.requires_grad
    assert all(p.grad is not None for p in model.parameters())


# --- heads and losses ---------------------------------------------------------------------------


def test_joint_embedding_outputs(rng: np.random.Generator) -> None:
    model = build_joint_embedding("samplecnn", ModelParams(width=0.0625, embed_dim=16), n_tags=7, sample_rate=SR)
    tags = torch.from_numpy((rng.random((3, 7)) < 0.3).astype(np.float32))
    out = model(noise(rng, 3, SHORT), tags)
    assert out["h"].shape == (3, H_DIM)
    for key in ("z_m", "z_t"):
        assert out[key].shape == (3, 16)
        assert torch.allclose(out[key].norm(dim=-1), torch.ones(3), atol=1e-5)
    assert out["tags_hat"].shape == (3, 7)
    assert ((out["tags_hat"] >= 0) & (out["tags_hat"] <= 1)).all()


@pytest.mark.parametrize(("norm", "count"), [("none", 23_040), ("layernorm", 23_040 + 2 * 128)])
def test_tag_encoder_parameter_count(norm: TagEncoderNorm, count: int) -> None:
    # "none" is the authors' tag encoder: 50·128 + 128 + 128·128 + 128 = 23,040 (A22's checkpoint)
    model = build_joint_embedding(
        "samplecnn", ModelParams(width=0.0625, tag_encoder_norm=norm), n_tags=50, sample_rate=SR
    )
    assert n_trainable(model.tag_encoder) == count
    assert any(isinstance(m, torch.nn.LayerNorm) for m in model.tag_encoder.modules()) == (norm == "layernorm")


Z_M = torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.6, -0.8]])  # (B=2, D=3), unit rows
Z_T = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.28, 0.96]])


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine written out: a·b / (|a| |b|)."""
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def test_paper_pair_loss_is_the_papers_formula(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    expected = np.mean(1 - np.diag(cosine_similarity(a, b))) + np.mean(1 - np.diag(cosine_similarity(1 - a, 1 - b)))
    got = pair_loss(torch.from_numpy(a), torch.from_numpy(b), kind="paper")
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert pair_loss(torch.from_numpy(a), torch.from_numpy(a)).item() == pytest.approx(0.0, abs=1e-6)


def test_a21_pair_loss_is_two_plus_the_cosines() -> None:
    # A21: (1 − CosineSimilarity()(z_t, z_m)) + (1 − CosineSimilarity()(1 − z_t, 1 − z_m)), Keras' loss = −cos
    expected = 2 + _cos(Z_T, Z_M).mean() + _cos(1 - Z_T, 1 - Z_M).mean()
    assert pair_loss(Z_M, Z_T, kind="a21").item() == pytest.approx(expected.item(), rel=1e-6)
    assert _cos(Z_T, Z_M).tolist() == pytest.approx([0.6, 0.6 * 0.28 - 0.8 * 0.96])  # the hand-computed cosines
    # it is lowest when z_m points away from z_t: the opposite of the paper's loss
    assert pair_loss(-Z_T, Z_T, kind="a21") < pair_loss(Z_T, Z_T, kind="a21")


def test_a22_pair_loss_is_the_elementwise_margin_formula() -> None:
    terms = Z_T * Z_M**2 + (1 - Z_T) * torch.clamp(0.4 - Z_M, min=0) ** 2  # (2, 3): y = z_t, d = z_m
    # by hand: z_t = 1, z_m = 0.6 → 0.36; z_t = 0, z_m = 0 → 0.4² = 0.16; z_t = 0.96, z_m = −0.8 → 0.6144 + 0.0576
    assert terms[0, 0].item() == pytest.approx(0.36) and terms[0, 2].item() == pytest.approx(0.16)
    assert terms[1, 2].item() == pytest.approx(0.96 * 0.64 + 0.04 * 1.44)
    assert pair_loss(Z_M, Z_T, kind="a22", margin=0.4).item() == pytest.approx(terms.mean().item(), rel=1e-6)


def test_contrastive_pair_loss_is_zero_only_for_matched_and_separated_pairs() -> None:
    z = torch.eye(4)  # orthogonal: matching distance 0, non-matching distance 1 > margin
    assert pair_loss(z, z, kind="contrastive", margin=0.4).item() == pytest.approx(0.0)
    assert pair_loss(z, z.roll(1, dims=0), kind="contrastive", margin=0.4).item() > 0.5
    d = 1 - _cos(Z_M[:, None], Z_T[None])  # (2, 2) cosine distances
    expected = d.diagonal().square().mean() + torch.clamp(0.4 - d[[0, 1], [1, 0]], min=0).square().mean()
    assert pair_loss(Z_M, Z_T, kind="contrastive").item() == pytest.approx(expected.item(), rel=1e-6)


def test_unknown_pair_loss_names_the_allowed_kinds() -> None:
    with pytest.raises(ValueError, match="expected one of paper, a21, a22, contrastive"):
        pair_loss(Z_M, Z_T, kind="triplet")  # type: ignore[arg-type]


def _train_steps(model: torch.nn.Module, loss_fn, steps: int = 5) -> tuple[float, float]:  # noqa: ANN001
    """Loss before and after ``steps`` Adam steps on one fixed batch (same dropout mask when measuring)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def measure() -> float:
        torch.manual_seed(1)
        with torch.no_grad():
            return loss_fn().item()

    before = measure()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()
    return before, measure()


@pytest.mark.parametrize("kind", ["paper", "a21", "a22", "contrastive"])
def test_a_few_steps_lower_the_stage1_losses(kind: str, rng: np.random.Generator) -> None:
    model = build_joint_embedding("samplecnn", ModelParams(width=0.0625), n_tags=6, sample_rate=SR)
    wave, tags = noise(rng, 4, SHORT), torch.from_numpy((rng.random((4, 6)) < 0.4).astype(np.float32))

    def joint_loss() -> torch.Tensor:
        out = model(wave, tags)
        return pair_loss(out["z_m"], out["z_t"], kind=kind)

    before, after = _train_steps(model, joint_loss)
    assert after < before
    before, after = _train_steps(model, lambda: reconstruction_loss(tags, model(wave, tags)["tags_hat"]))
    assert after < before


@pytest.mark.parametrize("name", ["hcnn", "sincnet"])
def test_a_few_steps_lower_the_classification_loss(name: str, rng: np.random.Generator) -> None:
    model = build_tagger(name, ModelParams(width=0.0625, sinc_taps=63), n_tags=6, sample_rate=SR)
    wave = noise(rng, 4, SHORT)
    tags = torch.from_numpy((rng.random((4, 6)) < 0.4).astype(np.float32))
    before, after = _train_steps(model, lambda: classification_loss(model(wave), tags))
    assert after < before


def test_frozen_extractor_stays_in_eval_mode_without_gradients(rng: np.random.Generator) -> None:
    tagger = build_tagger("samplecnn", ModelParams(width=0.0625), n_tags=3, sample_rate=SR).freeze_extractor()
    tagger.train()
    assert not tagger.extractor.training and tagger.classifier.training
    state = {k: v.clone() for k, v in tagger.extractor.state_dict().items()}
    classification_loss(tagger(noise(rng, 2, SHORT)), torch.ones(2, 3)).backward()
    assert all(p.grad is None for p in tagger.extractor.parameters())
    assert all(torch.equal(state[k], v) for k, v in tagger.extractor.state_dict().items())  # BN statistics too


# --- checkpoints --------------------------------------------------------------------------------


def _meta(model: ModelParams, *, extractor: str = "sincnet", variant: str = "je") -> TaggerMeta:
    return TaggerMeta(
        extractor=extractor,
        variant=variant,  # type: ignore[arg-type]
        tags=["rock", "piano", "quiet"],
        sample_rate=SR,
        crop_samples=model.crop_samples(extractor),
        model=dataclasses.asdict(model),
    )


@pytest.mark.parametrize(
    ("extractor", "joint", "switches"),
    [
        ("sincnet", True, {}),
        ("sincnet", False, {"sinc_design": "a21"}),
        ("hcnn", False, {}),
        ("hcnn", False, {"hcnn_front_end": "a21", "init_and_bn": "a21"}),  # BN eps 1e-3 must come back too
    ],
)
def test_checkpoint_round_trip_gives_identical_outputs(
    extractor: str, joint: bool, switches: dict[str, str], tmp_path: Path, rng: np.random.Generator
) -> None:
    model = dataclasses.replace(ModelParams(width=0.0625, sinc_taps=63), **switches)
    tagger = build_tagger(extractor, model, n_tags=3, sample_rate=SR, joint_heads=joint)
    tagger(noise(rng, 4, SHORT))  # move BN statistics off their init
    tagger.eval()
    meta = _meta(model, extractor=extractor)
    save_tagger(tmp_path / "model.pt", tagger, meta=meta)
    save_tagger(tmp_path / "again.pt", tagger, meta=meta)
    # the same model, the same bytes: DVC sees an unchanged output and skips the stages below it
    assert (tmp_path / "model.pt").read_bytes() == (tmp_path / "again.pt").read_bytes()
    loaded, loaded_meta = load_tagger(tmp_path / "model.pt")
    assert loaded_meta == meta and loaded_meta.format_version == FORMAT_VERSION
    assert isinstance(loaded, Tagger) and not loaded.training
    assert (loaded.projection is not None) == joint
    wave = noise(rng, 2, SHORT)
    with torch.no_grad():
        assert torch.equal(loaded(wave), tagger(wave))
        if joint:
            assert torch.equal(loaded.audio_embedding(wave), tagger.audio_embedding(wave))


def test_meta_from_training_records_the_audio_and_old_checkpoints_without_it_still_load(tmp_path: Path) -> None:
    model = ModelParams(width=0.0625)
    audio = SimpleNamespace(tags=("rock", "piano", "quiet"), sample_rate=SR, crop_samples=SHORT, peak_normalize=False,
                            mu_law=True)  # fmt: skip
    meta = TaggerMeta.from_training(extractor="samplecnn", variant="noje", model=model, audio=audio)
    assert meta == TaggerMeta("samplecnn", "noje", ["rock", "piano", "quiet"], SR, SHORT, dataclasses.asdict(model),
                              peak_normalize=False, mu_law=True)  # fmt: skip
    # a checkpoint written before the audio fields existed loads with the defaults of that time
    path = tmp_path / "old.pt"
    save_tagger(path, build_tagger("samplecnn", model, n_tags=3, sample_rate=SR), meta=meta)
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["meta"]["peak_normalize"], checkpoint["meta"]["mu_law"]
    torch.save(checkpoint, path)
    assert load_tagger(path)[1] == dataclasses.replace(meta, peak_normalize=True, mu_law=False)


def test_load_rejects_foreign_and_unknown_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(StageError, match="notes.pt: not a jetatag tagger checkpoint"):
        load_tagger(text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": torch.zeros(3)}, foreign)
    with pytest.raises(StageError, match="foreign.pt: not a jetatag tagger checkpoint"):
        load_tagger(foreign)
    with pytest.raises(StageError, match="missing.pt: tagger checkpoint not found"):
        load_tagger(tmp_path / "missing.pt")


def test_load_rejects_unknown_version_and_mismatched_weights(tmp_path: Path) -> None:
    model = ModelParams(width=0.0625)
    tagger = build_tagger("samplecnn", model, n_tags=3, sample_rate=SR)
    path = tmp_path / "model.pt"
    save_tagger(path, tagger, meta=dataclasses.replace(_meta(model, extractor="samplecnn"), format_version=99))
    with pytest.raises(StageError, match="model.pt: .*version 99"):
        load_tagger(path)
    save_tagger(path, tagger, meta=_meta(dataclasses.replace(model, width=0.125), extractor="samplecnn"))
    with pytest.raises(StageError, match="model.pt: weights do not match"):
        load_tagger(path)


def test_save_rejects_tag_count_mismatch(tmp_path: Path) -> None:
    model = ModelParams(width=0.0625)
    tagger = build_tagger("samplecnn", model, n_tags=5, sample_rate=SR)
    with pytest.raises(ValueError, match="3 tags"):
        save_tagger(tmp_path / "model.pt", tagger, meta=_meta(model, extractor="samplecnn"))
    assert not list(tmp_path.iterdir())


def test_retrieval_embeddings_need_the_joint_heads(rng: np.random.Generator) -> None:
    tagger = build_tagger("samplecnn", ModelParams(width=0.0625, embed_dim=8), n_tags=4, sample_rate=SR).eval()
    assert tagger(noise(rng, 2, SHORT)).shape == (2, 4)
    with pytest.raises(ValueError, match="projection"):
        tagger.audio_embedding(noise(rng, 2, SHORT))
    with pytest.raises(ValueError, match="tag encoder"):
        tagger.tag_embedding(torch.ones(2, 4))


# --- channels-last layout: same functions as the (B, C, T) conv1d formulation --------------------


def _conv1d(conv: torch.nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    return F.conv1d(x, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding)


def _bn(bn: torch.nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps)


def _se(gate: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(gate.gate(F.relu(gate.excite(x.mean(dim=-1)))))  # (B, C)
    return x * s.unsqueeze(-1)


def reference_sample_cnn(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The Sample-CNN family's h in eval mode, written with conv1d on (B, C, T) as the papers draw it."""
    x = F.relu(_bn(model.stem.bn, _conv1d(model.stem.conv, x)))
    outputs = []
    for block in model.blocks:
        if hasattr(block, "conv1"):  # Res / Res+SE
            residual = _bn(block.bn2, _conv1d(block.conv2, F.relu(_bn(block.bn1, _conv1d(block.conv1, x)))))
            if block.se is not None:
                residual = _se(block.se, residual)
            shortcut = _bn(block.shortcut.bn, _conv1d(block.shortcut.conv, x)) if block.shortcut.project else x
            x = F.max_pool1d(F.relu(shortcut + residual), 3)
        else:  # basic / SE
            x = F.relu(_bn(block.bn, _conv1d(block.conv, x)))
            x = F.max_pool1d(_se(block.se, x) if hasattr(block, "se") else x, 3)
        outputs.append(x)
    pooled = torch.cat([f.amax(dim=-1) for f in outputs[-3:]], dim=1)
    return F.relu(_bn(model.head.bn, model.head.dense(pooled)))


@pytest.mark.parametrize("name", ["samplecnn", "samplecnn_se", "samplecnn_res", "samplecnn_rese", "sincnet"])
def test_channels_last_extractors_compute_the_conv1d_formulation(name: str, rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    model = build_extractor(name, ModelParams(width=0.0625, sinc_taps=63), sample_rate=SR)
    for module in model.modules():  # non-trivial BN statistics, so the reference must apply them right
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    model.eval()
    wave = noise(rng, 2, 3**10)
    with torch.no_grad():
        if name == "sincnet":
            bands = F.relu(_bn(model.frontend.bn, model.frontend.sinc(wave)))
            expected = reference_sample_cnn(model.body, bands)
        else:
            expected = reference_sample_cnn(model, wave.unsqueeze(1))
        assert torch.allclose(model(wave), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("squeeze", ["block", "pooled"])
def test_se_block_squeezes_the_block_output_or_the_pooled_output(squeeze: str, rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    block = SEBlock(4, 6, squeeze=squeeze).eval()
    block.bn.running_mean.uniform_(-0.5, 0.5)
    x = noise(rng, 2, 4 * 81).reshape(2, 4, 81)  # (B, C_in, T)
    with torch.no_grad():
        got = block(as_rows(x)).squeeze(2)  # (B, C_out, T // 3)
        y = F.relu(_bn(block.bn, _conv1d(block.conv, x)))  # (B, C_out, T)
        pooled = F.max_pool1d(y, 3)  # (B, C_out, T // 3)
        source = pooled if squeeze == "pooled" else y  # A21 squeezes the pooled output
        gate = torch.sigmoid(block.se.gate(F.relu(block.se.excite(source.mean(dim=-1)))))  # (B, C_out)
        other = y if squeeze == "pooled" else pooled
        other_gate = torch.sigmoid(block.se.gate(F.relu(block.se.excite(other.mean(dim=-1)))))
    assert got.shape == (2, 6, 27)
    assert torch.allclose(got, pooled * gate.unsqueeze(-1), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got, pooled * other_gate.unsqueeze(-1), rtol=1e-3, atol=1e-4)
    # model.se_squeeze reaches every block of Sample-CNN +SE built from params, and only there
    model = build_extractor("samplecnn_se", ModelParams(width=0.0625, se_squeeze=squeeze), sample_rate=SR)
    assert {b.squeeze for b in model.blocks} == {squeeze}


def assert_same_gradients(y: torch.Tensor, reference: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> None:
    """The gradients of sum(y²) and of sum(reference²) with respect to ``inputs`` agree to float32 rounding."""
    grads = torch.autograd.grad(y.square().sum(), inputs)
    expected = torch.autograd.grad(reference.square().sum(), inputs)
    for got, want in zip(grads, expected, strict=True):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-4 * want.abs().max().item())


def test_wave_conv_keeps_conv1d_parameters_and_gradients(rng: np.random.Generator) -> None:
    conv = WaveConv(4, 6, kernel_size=3, stride=3)
    assert conv.weight.shape == (6, 4, 3)  # a Conv1d's state dict: checkpoints load either way
    x = noise(rng, 2, 4, 81).requires_grad_()
    y = conv(x.unsqueeze(2).contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last) and y.shape == (2, 6, 1, 27)
    reference = F.conv1d(x, conv.weight, conv.bias, stride=3)
    assert torch.allclose(y.squeeze(2), reference, atol=1e-6)
    (grad_y,) = torch.autograd.grad(y.square().sum(), conv.weight)
    (grad_ref,) = torch.autograd.grad(reference.square().sum(), conv.weight)
    assert torch.allclose(grad_y, grad_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "in_channels"),
    [(3, 1, 1, 4), (5, 1, 2, 4), (1, 1, 0, 4), (2, 3, 0, 1), (3, 3, 0, 4), (2, 3, 0, 4)],
)
def test_segmented_weight_gradient_equals_the_conv1d_gradients(
    kernel: int, stride: int, padding: int, in_channels: int, rng: np.random.Generator
) -> None:
    torch.manual_seed(0)
    conv = WaveConv(in_channels, 6, kernel_size=kernel, stride=stride, padding=padding)
    x = noise(rng, 2, in_channels, 3**7).requires_grad_()  # 2,187 samples: long enough to be cut into segments
    rows = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    assert conv._segmentable(rows) and segment_count(rows.shape[-1], stride=stride) > 1
    y = conv(rows)
    reference = F.conv1d(x, conv.weight, conv.bias, stride=stride, padding=padding)
    assert torch.allclose(y.squeeze(2), reference, atol=1e-6)
    assert_same_gradients(y, reference, (conv.weight, conv.bias, x))  # weight (taps across cuts included), bias, input


@pytest.mark.parametrize("channels", [6, BIAS_IN_MATMUL_FROM])  # bias by addmm, or as a matmul column
@pytest.mark.parametrize("length", [3**7, 3**7 + 2])  # the windows tile the signal, or leave 2 samples over
def test_one_channel_tiled_conv_is_a_matmul_of_frames_with_the_conv1d_gradients(
    length: int, channels: int, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    conv = WaveConv(1, channels, kernel_size=3, stride=3)  # Sample-CNN's stem
    with torch.no_grad():
        conv.bias.normal_()  # a bias gradient worth comparing
    x = noise(rng, 2, 1, length).requires_grad_()
    rows = as_rows(x)
    framed = []
    monkeypatch.setattr(common, "framed_conv", lambda *a: framed.append(1) or framed_conv(*a))
    y = conv(rows)
    assert framed == [1]  # the path under test was taken
    assert y.is_contiguous(memory_format=torch.channels_last) and y.shape == (2, channels, 1, length // 3)
    reference = F.conv1d(x, conv.weight, conv.bias, stride=3)
    assert torch.allclose(y.squeeze(2), reference, atol=1e-6)
    assert_same_gradients(y, reference, (conv.weight, conv.bias, x))  # weight, bias, input


@pytest.mark.parametrize("tap_gemm_cpu", [True, False])
@pytest.mark.parametrize("length", [3**7, 3**7 + 2])
def test_many_channel_tiled_conv_is_a_matmul_of_frames_without_avx512(
    length: int, tap_gemm_cpu: bool, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    monkeypatch.setattr(same_conv, "TAP_GEMM_CPU", tap_gemm_cpu)
    conv = WaveConv(4, TAP_GEMM_FROM_CHANNELS, kernel_size=3, stride=3)  # Music-SincNet's stem over 4 filters
    with torch.no_grad():
        conv.bias.normal_()  # a bias gradient worth comparing
    x = noise(rng, 2, 4, length).requires_grad_()
    framed = []
    monkeypatch.setattr(common, "framed_conv", lambda *a: framed.append(1) or framed_conv(*a))
    WaveConv(4, TAP_GEMM_FROM_CHANNELS // 2, kernel_size=3, stride=3)(as_rows(x))  # narrower: oneDNN's
    y = conv(as_rows(x))
    assert framed == ([1] if tap_gemm_cpu else [])
    assert y.is_contiguous(memory_format=torch.channels_last) and y.shape == (2, TAP_GEMM_FROM_CHANNELS, 1, 3**6)
    reference = F.conv1d(x, conv.weight, conv.bias, stride=3)
    assert torch.allclose(y.squeeze(2), reference, atol=1e-5)
    assert_same_gradients(y, reference, (conv.weight, conv.bias, x))  # weight, bias, input


def test_channels_last_grad_back_returns_the_gradient_in_the_inputs_layout(rng: np.random.Generator) -> None:
    x = noise(rng, 2, 6, 8, 5).requires_grad_()  # contiguous (B, C, H, W), like Harmonic-CNN's front end
    y = ChannelsLastGradBack.apply(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and torch.equal(y, x)
    weights = noise(rng, 2, 6, 8, 5).contiguous(memory_format=torch.channels_last)  # a channels-last gradient
    (grad,) = torch.autograd.grad((y * weights).sum(), x)
    assert grad.is_contiguous() and torch.equal(grad, weights)


def recording_same_conv(monkeypatch: pytest.MonkeyPatch) -> list[WeightGrad]:
    """The weight-gradient method of every :class:`WeightGradConv` call from here on, in call order."""
    methods: list[WeightGrad] = []
    apply = WeightGradConv.apply
    monkeypatch.setattr(WeightGradConv, "apply", lambda *a: methods.append(a[-1]) or apply(*a))
    return methods


@pytest.mark.parametrize(
    ("tap_gemm_cpu", "rows", "method"),
    [
        (True, BANDED_FROM_ROWS, tap_weight_grad),  # a CPU without AVX-512
        (False, BANDED_FROM_ROWS, banded_weight_grad),  # with AVX-512: oneDNN's, banded on tall maps
        (False, BANDED_FROM_ROWS // 2, onednn_weight_grad),
    ],
)
@pytest.mark.parametrize("in_channels", [1, 6])
def test_conv3x3_cpu_training_gradients_equal_conv2d(
    tap_gemm_cpu: bool,
    rows: int,
    method: WeightGrad,
    in_channels: int,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    monkeypatch.setattr(conv3x3, "TAP_GEMM_CPU", tap_gemm_cpu)
    conv = Conv3x3(in_channels, CHEAP_BACKWARD_FROM)
    with torch.no_grad():
        conv.bias.normal_()  # a bias gradient worth comparing
    x = noise(rng, 2, in_channels, rows, 19).contiguous(memory_format=torch.channels_last).requires_grad_()
    methods = recording_same_conv(monkeypatch)
    Conv3x3(in_channels, CHEAP_BACKWARD_FROM // 2)(x)
    assert methods == []  # narrower convs run plain
    y = conv(x)
    assert methods == [method]  # the path under test was taken
    reference = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert torch.allclose(y, reference, atol=1e-6)
    assert_same_gradients(y, reference, (conv.weight, conv.bias, x))  # weight (halo rows included), bias, input
    assert list(conv.state_dict()) == ["weight", "bias"]  # checkpoints load into nn.Conv2d and back


@pytest.mark.parametrize("in_channels", [STACKED_TAPS_BELOW - 1, STACKED_TAPS_BELOW])  # one matmul, or one per tap
@pytest.mark.parametrize("kernel", [(3, 3), (1, 3), (1, 5), (5, 3)])
@pytest.mark.parametrize("chunk_rows", [TAP_CHUNK_ROWS, 16])  # one product, or 11-14 chunks of 16 rows and the rest
@pytest.mark.parametrize("size", [(7, 11), (1, 2)])  # on 1 × 2 maps a 5 × 3 kernel's reach is past the arrays' ends
def test_tap_weight_grad_equals_the_convolutions_weight_gradient(
    kernel: tuple[int, int],
    in_channels: int,
    chunk_rows: int,
    size: tuple[int, int],
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(same_conv, "TAP_CHUNK_ROWS", chunk_rows)
    x = noise(rng, 3, in_channels, *size).contiguous(memory_format=torch.channels_last)
    grad = noise(rng, 3, 5, *size).contiguous(memory_format=torch.channels_last)
    weight = noise(rng, 5, in_channels, *kernel)
    got = tap_weight_grad(grad, x, weight)
    padding = (kernel[0] // 2, kernel[1] // 2)
    (want,) = torch.autograd.grad(
        F.conv2d(x, weight.requires_grad_(), padding=padding), weight, grad_outputs=grad
    )  # every tap, the edge rows and columns whose windows reach into the padding included
    assert got.shape == want.shape and got.is_contiguous()
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


@pytest.mark.parametrize("tap_gemm_cpu", [True, False])
def test_wide_wave_conv_takes_tap_weight_gradients_without_avx512(
    tap_gemm_cpu: bool, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    monkeypatch.setattr(same_conv, "TAP_GEMM_CPU", tap_gemm_cpu)
    conv = WaveConv(4, TAP_GEMM_FROM_CHANNELS, kernel_size=3, padding=1)
    with torch.no_grad():
        conv.bias.normal_()  # a bias gradient worth comparing
    x = noise(rng, 2, 4, 3**7).requires_grad_()
    methods = recording_same_conv(monkeypatch)
    WaveConv(4, TAP_GEMM_FROM_CHANNELS // 2, kernel_size=3, padding=1)(as_rows(x))  # narrower: segmented
    WaveConv(4, TAP_GEMM_FROM_CHANNELS, kernel_size=3, stride=3)(as_rows(x))  # strided: segmented
    y = conv(as_rows(x))
    assert methods == ([tap_weight_grad] if tap_gemm_cpu else [])
    assert y.is_contiguous(memory_format=torch.channels_last)
    reference = F.conv1d(x, conv.weight, conv.bias, padding=1)
    assert torch.allclose(y.squeeze(2), reference, atol=1e-5)
    assert_same_gradients(y, reference, (conv.weight, conv.bias, x))  # weight, bias, input


@pytest.mark.parametrize("kind", ["conv3x3", "wave"])
def test_cpu_training_under_bf16_autocast_runs_the_plain_conv_in_bf16(kind: str, rng: np.random.Generator) -> None:
    """train.precision bf16: the float32-only CPU backward paths step aside and the conv's gradients stay close."""
    torch.manual_seed(0)
    if kind == "conv3x3":
        conv: torch.nn.Module = Conv3x3(6, CHEAP_BACKWARD_FROM)  # takes the cheap backward in float32
        x = noise(rng, 2, 6, BANDED_FROM_ROWS, 19).contiguous(memory_format=torch.channels_last)
        assert conv._cheap_backward_pays(x)
    else:
        conv = WaveConv(4, 6, kernel_size=3, padding=1)  # takes the segmented weight gradient in float32
        x = as_rows(noise(rng, 2, 4, 3**7))
        assert conv._segmentable(x)
    expected = torch.autograd.grad(conv(x).square().sum(), conv.weight)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not (conv._cheap_backward_pays(x) if kind == "conv3x3" else conv._segmentable(x))
        y = conv(x)
    assert y.dtype == torch.bfloat16
    got = torch.autograd.grad(y.float().square().sum(), conv.weight)[0]
    assert got.dtype == torch.float32  # the parameter's gradient, as the optimizer expects
    assert (got - expected).norm() < 0.02 * expected.norm()  # bf16 rounding, not a different gradient


def test_wave_dropout_drops_at_rate_p_and_rescales(rng: np.random.Generator) -> None:
    dropout = WaveDropout(0.2).train()
    x = (noise(rng, 8, 16, 1, 2187).abs() + 0.1).contiguous(memory_format=torch.channels_last).requires_grad_()
    torch.manual_seed(0)
    y = dropout(x)
    dropped = y == 0
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert dropped.float().mean().item() == pytest.approx(0.2, abs=0.005)  # 280k elements: 5 sd is 0.004
    assert dropped.float().mean(dim=(0, 2, 3)).min().item() > 0.17  # every channel, not a few whole ones
    assert torch.allclose(y[~dropped], x[~dropped] / 0.8)
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(grad == 0, dropped)  # the gradient flows through the kept elements only
    torch.manual_seed(0)
    assert torch.equal(dropout(x), y)  # torch's generator: the same seed, the same mask
    assert torch.equal(dropout.eval()(x), x)
    # the mask rule itself, which trained checkpoints depend on: element i (in memory order) is dropped
    # when its 16 bits of the seeded 64-bit draws fall below p * 2^16 - 2^15
    torch.manual_seed(0)
    words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    bits = words.view(torch.int16)[: x.numel()]
    assert torch.equal(dropped, (bits < round(0.2 * 2**16) - 2**15).as_strided(x.shape, x.stride()))


def test_classifier_can_start_at_the_tag_prior() -> None:
    classifier = Classifier(H_DIM, 3)
    assert torch.count_nonzero(classifier.out.bias) == 0  # Keras' zero init by default
    classifier.start_at_prior(torch.tensor([0.5, 0.05, 0.0]))
    # each tag starts at its train frequency (0 is clamped to 1e-3 so the log-odds stay finite)
    assert torch.sigmoid(classifier.out.bias).tolist() == pytest.approx([0.5, 0.05, 1e-3], rel=1e-5)


# --- A21's Keras layer defaults -----------------------------------------------------------------


def _conv_bounds(conv: torch.nn.Module) -> tuple[float, float]:
    """(Glorot-uniform, He-uniform) bounds of ``conv``'s weight: sqrt(6 / (fan_in + fan_out)), sqrt(6 / fan_in)."""
    receptive = conv.weight[0, 0].numel()
    fan_in, fan_out = conv.weight.shape[1] * receptive, conv.weight.shape[0] * receptive
    return (6 / (fan_in + fan_out)) ** 0.5, (6 / fan_in) ** 0.5


@pytest.mark.parametrize("name", ["hcnn", "samplecnn_res"])
def test_a21_init_and_bn_takes_the_keras_defaults(name: str) -> None:
    torch.manual_seed(0)
    extractor = build_extractor(name, ModelParams(width=0.25, init_and_bn="a21"), sample_rate=SR)
    norms = [m for m in extractor.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    assert norms and all((m.momentum, m.eps) == (KERAS_BN_MOMENTUM, KERAS_BN_EPS) for m in norms)
    convs = [m for m in extractor.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
    all_glorot = extractor_spec(name).a21_glorot_convs
    glorot = [c for c in convs if all_glorot or c.weight[0, 0].numel() == 1]
    assert glorot and all(c.weight.abs().max() <= _conv_bounds(c)[0] for c in glorot)
    he = [c for c in convs if c not in glorot]  # Sample-CNN's k-3 convs stay he_uniform: beyond the Glorot bound
    assert all_glorot == (not he)
    assert all(_conv_bounds(c)[0] < c.weight.abs().max() <= _conv_bounds(c)[1] for c in he)


def test_default_init_and_bn_is_torch_batchnorm_and_he_convs() -> None:
    extractor = build_extractor("hcnn", ModelParams(width=0.25), sample_rate=SR)
    assert all(m.eps == 1e-5 and m.momentum == 0.1 for m in extractor.modules() if isinstance(m, torch.nn.BatchNorm2d))
    convs = [m for m in extractor.modules() if isinstance(m, torch.nn.Conv2d)]
    assert any(c.weight.abs().max() > _conv_bounds(c)[0] for c in convs)


def test_frames_matmul_sums_its_gradients_over_chunks_as_one_matmul_would(rng: np.random.Generator) -> None:
    frames = noise(rng, 2 * 3**8, 3).requires_grad_()  # 13,122 one-channel frames of 3 samples
    kernels, bias = noise(rng, 3, 16).requires_grad_(), noise(rng, 16).requires_grad_()
    assert row_chunks(frames.shape[0]) > 1  # the chunked sums are what is under test
    y = FramesMatmul.apply(frames, kernels, bias)
    reference = torch.addmm(bias, frames, kernels)
    assert torch.equal(y, reference)
    assert_same_gradients(y, reference, (frames, kernels, bias))
