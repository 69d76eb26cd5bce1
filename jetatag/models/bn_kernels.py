"""Numba kernels behind :mod:`jetatag.models.bn_relu`: BatchNorm statistics, normalise-(pool-)ReLU and gradients.

Arrays are channels-last maps seen as NumPy views: (B, F, T, C) maps, their (B, F·T, C) signals or (N, C)
rows, C-contiguous float32, channels innermost so each loop over C vectorises. z = x · scale + shift is the
BatchNorm output, x̂ = (x − mean) · inv_std its normalised input. Sums run over chunks of each signal that the
map's shape alone fixes, each in the same order whatever the thread count, and the caller adds the chunks'
partial sums in float64: results do not depend on how many threads run, and per-signal sums (an SE gate's squeeze) come
with the per-channel ones. ReLU masks are recomputed from x with the forward's own float32 arithmetic
rather than stored. Optional arrays are None when absent: numba compiles each combination apart and drops
the branches on them, which kept the loops vectorised (a branch on an empty array's size made a reduction
5× slower).

The kernels run on numba's own thread pool ("workqueue") unless ``NUMBA_THREADING_LAYER`` says otherwise:
its OpenMP layer loads the libgomp that torch already loaded, and starting its pool reset torch's thread
count (``torch.set_num_threads(1)``, then one kernel, and torch ran on 2 threads, with other float results).
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

CHUNKS = 64
"""Chunks a sum is cut into over the batch's signals: enough for any thread count to share out, few enough that
their set-up stays small (1,024 chunks of a 16 × 19,683 × 128 map took 8 ms to sum, 64 took 6)."""
BLOCK_ROWS = 256
"""Rows summed in float32 before the chunk's sum takes them in float64."""


@njit(inline="always")
def flush(block: np.ndarray, totals: np.ndarray) -> None:
    """Add float32 partial sums ``block`` (C,) into their float64 ``totals`` (C,) and zero them."""
    for j in range(block.size):
        totals[j] += block[j]
        block[j] = 0.0


@njit(inline="always")
def chunking(batch: int, n: int) -> tuple[int, int]:
    """Rows per chunk and chunks per signal for sums over ``batch`` signals of ``n`` rows: about CHUNKS chunks
    in all, and no more per signal than it has blocks of BLOCK_ROWS rows."""
    per_signal = max(1, min((CHUNKS + batch - 1) // batch, (n + BLOCK_ROWS - 1) // BLOCK_ROWS))
    step = max(1, (n + per_signal - 1) // per_signal)
    return step, (n + step - 1) // step


@njit(parallel=True, cache=True)
def shifted_sums(x: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per signal and chunk, the sums of (x − shift) and (x − shift)² over the rows of ``x`` (B, N, C): two
    (B, chunks, C) arrays.

    Shifting by a sample of each channel keeps E[d²] − E[d]² accurate when the mean dwarfs the spread.
    """
    batch, n, c = x.shape
    step, chunks = chunking(batch, n)
    sums, squares = np.zeros((batch, chunks, c)), np.zeros((batch, chunks, c))
    for task in prange(batch * chunks):
        b, chunk = task // chunks, task % chunks
        block_sum, block_square = np.zeros(c, np.float32), np.zeros(c, np.float32)
        for i in range(chunk * step, min(n, (chunk + 1) * step)):
            for j in range(c):
                d = x[b, i, j] - shift[j]
                block_sum[j] += d
                block_square[j] += d * d
            if (i + 1 - chunk * step) % BLOCK_ROWS == 0:
                flush(block_sum, sums[b, chunk])
                flush(block_square, squares[b, chunk])
        flush(block_sum, sums[b, chunk])
        flush(block_square, squares[b, chunk])
    return sums, squares


@njit(inline="always")
def dropout_factor(bits: np.int16, threshold: int, keep_scale: np.float32) -> np.float32:
    """What dropout multiplies an element by: ``keep_scale`` where its random ``bits`` are ≥ threshold, else 0."""
    return keep_scale if bits >= threshold else np.float32(0.0)


@njit(parallel=True, cache=True)
def normalize_relu(
    x: np.ndarray,
    scale: np.ndarray,
    shift: np.ndarray,
    bits: np.ndarray | None,
    threshold: int,
    keep_scale: np.float32,
    out: np.ndarray,
) -> None:
    """out = relu(z) over rows (N, C), then dropout by ``bits`` (N, C) int16 unless None."""
    n, c = x.shape
    for i in prange(n):
        for j in range(c):
            z = x[i, j] * scale[j] + shift[j]
            y = np.float32(0.0) if z < 0.0 else z
            if bits is not None:
                y *= dropout_factor(bits[i, j], threshold, keep_scale)
            out[i, j] = y


@njit(parallel=True, cache=True)
def normalize_pool_relu(
    x: np.ndarray,
    scale: np.ndarray,
    shift: np.ndarray,
    gate: np.ndarray | None,
    skip: np.ndarray | None,
    pool_f: int,
    pool_t: int,
    out: np.ndarray,
    x_at_max: np.ndarray,
    argmax: np.ndarray,
    mean: np.ndarray,
    inv_std: np.ndarray,
    squeeze: np.ndarray | None,
) -> None:
    """out = relu(max-pool(z · gate + skip)) on (B, F, T, C) maps, without ``gate`` (B, C) or ``skip`` when None.

    Also writes, per output, x at the window's maximum (``x_at_max``) and the maximum's place in the window
    (``argmax``, row-major in the pool_f × pool_t window): the gradient needs nothing else. NaN wins a window,
    as in torch's max-pool. Unless ``squeeze`` (B, 3, C) is None (else F must be 1, with no gate or skip), it
    receives each signal's sums over time of relu(z), of [z > 0] and of [z > 0] · x̂: an SE gate's squeeze and
    what its gradient needs.
    """
    batch, _, cols, c = x.shape
    _, rows_out, cols_out, _ = out.shape
    for r in prange(batch * rows_out):
        b, row = r // rows_out, r % rows_out
        best, best_x = np.empty(c, np.float32), np.empty(c, np.float32)
        best_at = np.empty(c, np.uint8)
        for col in range(cols_out):
            best[:] = -np.inf
            at = 0
            for i in range(pool_f):
                for k in range(pool_t):
                    f, t = row * pool_f + i, col * pool_t + k
                    for j in range(c):
                        z = x[b, f, t, j] * scale[j] + shift[j]
                        if gate is not None:
                            z *= gate[b, j]
                        if skip is not None:
                            z += skip[b, f, t, j]
                        if z > best[j] or (np.isnan(z) and not np.isnan(best[j])):
                            best[j], best_x[j], best_at[j] = z, x[b, f, t, j], at
                    at += 1
            for j in range(c):
                out[b, row, col, j] = 0.0 if best[j] < 0.0 else best[j]
                x_at_max[b, row, col, j] = best_x[j]
                argmax[b, row, col, j] = best_at[j]
        if squeeze is not None:  # summed in float32 over BLOCK_ROWS samples, then in float64
            relu_sum, active, active_x_hat = np.zeros(c, np.float32), np.zeros(c, np.float32), np.zeros(c, np.float32)
            for t in range(cols):
                for j in range(c):
                    z = x[b, 0, t, j] * scale[j] + shift[j]
                    positive = z > 0.0
                    relu_sum[j] += z if positive else np.float32(0.0)
                    active[j] += np.float32(1.0) if positive else np.float32(0.0)
                    active_x_hat[j] += (x[b, 0, t, j] - mean[j]) * inv_std[j] if positive else np.float32(0.0)
                if (t + 1) % BLOCK_ROWS == 0 or t == cols - 1:
                    flush(relu_sum, squeeze[b, 0])
                    flush(active, squeeze[b, 1])
                    flush(active_x_hat, squeeze[b, 2])


@njit(parallel=True, cache=True)
def relu_grad_sums(
    grad: np.ndarray,
    x: np.ndarray,
    out: np.ndarray | None,
    bits: np.ndarray | None,
    threshold: int,
    keep_scale: np.float32,
    scale: np.ndarray,
    shift: np.ndarray,
    mean: np.ndarray,
    inv_std: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per signal and chunk, the sums of dz and dz · x̂ over the rows of signals (B, N, C): (B, chunks, C) each,
    whose totals are BatchNorm's β and γ gradients.

    dz = grad (times the dropout factor, with ``bits``) where the ReLU passed: out > 0, or z > 0 if ``out`` is
    None. For a pooled map only the windows' maxima carry gradient, so the rows are the pooled outputs and x
    the input at each maximum.
    """
    batch, n, c = grad.shape
    step, chunks = chunking(batch, n)
    sums, products = np.zeros((batch, chunks, c)), np.zeros((batch, chunks, c))
    for task in prange(batch * chunks):
        b, chunk = task // chunks, task % chunks
        block_sum, block_product = np.zeros(c, np.float32), np.zeros(c, np.float32)
        for i in range(chunk * step, min(n, (chunk + 1) * step)):
            for j in range(c):
                active = x[b, i, j] * scale[j] + shift[j] > 0.0 if out is None else out[b, i, j] > 0.0
                g = grad[b, i, j]
                if bits is not None:
                    g *= dropout_factor(bits[b, i, j], threshold, keep_scale)
                dz = g if active else np.float32(0.0)
                block_sum[j] += dz
                block_product[j] += dz * (x[b, i, j] - mean[j]) * inv_std[j]
            if (i + 1 - chunk * step) % BLOCK_ROWS == 0:
                flush(block_sum, sums[b, chunk])
                flush(block_product, products[b, chunk])
        flush(block_sum, sums[b, chunk])
        flush(block_product, products[b, chunk])
    return sums, products


@njit(parallel=True, cache=True)
def batch_norm_relu_grad(
    x: np.ndarray,
    grad: np.ndarray,
    bits: np.ndarray | None,
    threshold: int,
    keep_scale: np.float32,
    scale: np.ndarray,
    shift: np.ndarray,
    mean: np.ndarray,
    inv_std: np.ndarray,
    beta_term: np.ndarray,
    gamma_term: np.ndarray,
    grad_x: np.ndarray,
) -> None:
    """grad_x = scale · dz − beta_term − x̂ · gamma_term over rows (N, C), with dz = grad (times the dropout
    factor, with ``bits``) where z > 0."""
    n, c = x.shape
    for i in prange(n):
        for j in range(c):
            g = grad[i, j]
            if bits is not None:
                g *= dropout_factor(bits[i, j], threshold, keep_scale)
            dz = g if x[i, j] * scale[j] + shift[j] > 0.0 else np.float32(0.0)
            grad_x[i, j] = scale[j] * dz - beta_term[j] - (x[i, j] - mean[j]) * inv_std[j] * gamma_term[j]


@njit(parallel=True, cache=True)
def batch_norm_pool_relu_grad(
    x: np.ndarray,
    grad: np.ndarray,
    out: np.ndarray,
    argmax: np.ndarray,
    scale: np.ndarray,
    shift: np.ndarray,
    mean: np.ndarray,
    inv_std: np.ndarray,
    beta_term: np.ndarray,
    gamma_term: np.ndarray,
    pool_f: int,
    pool_t: int,
    gate: np.ndarray | None,
    grad_squeeze: np.ndarray | None,
    grad_x: np.ndarray,
    grad_skip: np.ndarray | None,
) -> None:
    """BatchNorm's input gradient on (B, F, T, C) maps under (gate,) max-pool and ReLU; also the skip's unless None.

    The gradient at the pool's input is the pooled gradient at each window's maximum where the output is
    positive and 0 elsewhere (also where no window reaches); it is the skip's. dz, z's, is that times ``gate``
    (B, C) unless it is None, plus, unless ``grad_squeeze`` (B, C) is None, the squeeze's gradient wherever
    z > 0. grad_x = scale · dz − beta_term − x̂ · gamma_term, with ``beta_term`` per signal (B, C).
    """
    batch, rows, cols, c = x.shape
    _, rows_out, cols_out, _ = out.shape
    for r in prange(batch * rows):
        b, f = r // rows, r % rows
        row = f // pool_f
        for t in range(cols):
            col = t // pool_t
            covered = row < rows_out and col < cols_out
            at = (f % pool_f) * pool_t + t % pool_t
            for j in range(c):
                routed = np.float32(0.0)
                if covered and argmax[b, row, col, j] == at and out[b, row, col, j] > 0.0:
                    routed = grad[b, row, col, j]
                dz = routed if gate is None else routed * gate[b, j]
                if grad_squeeze is not None and x[b, f, t, j] * scale[j] + shift[j] > 0.0:
                    dz += grad_squeeze[b, j]
                if grad_skip is not None:
                    grad_skip[b, f, t, j] = routed
                x_hat = (x[b, f, t, j] - mean[j]) * inv_std[j]
                grad_x[b, f, t, j] = scale[j] * dz - beta_term[b, j] - x_hat * gamma_term[j]
