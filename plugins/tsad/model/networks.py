"""Autoencoders over windows ``[batch, length, channels]`` with a real bottleneck.

Each network squeezes a window through a code much smaller than the window itself (``latent``
numbers for ``length x channels`` inputs), so it cannot learn the identity and reconstruct
anomalies as well as normal data. No decoder sees the input except through that code.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tsad.config import ModelConfig

RIDGE = 1e-3  # added to the scaled channels' covariance (unit variances): keeps it invertible
#: A code holds at most this share of a window's numbers (``bottleneck_latent``): with one
#: channel the default conv1d code (8 x length/4 = 64 numbers for a 32-value window) could
#: hold the whole window and copy it.
CODE_SHARE = 0.5


class DenseAutoencoder(nn.Module):
    """Flattened window -> hidden -> latent -> hidden -> window."""

    def __init__(self, n_channels: int, length: int, hidden: int, latent: int) -> None:
        super().__init__()
        size = n_channels * length
        self.encoder = nn.Sequential(nn.Linear(size, hidden), nn.GELU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.GELU(), nn.Linear(hidden, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, channels = x.shape
        return self.decoder(self.encoder(x.reshape(batch, -1))).reshape(batch, length, channels)


class Conv1dAutoencoder(nn.Module):
    """Two stride-2 convolutions down to ``latent`` channels at a quarter of the time resolution.

    The layers are stored as ``Conv1d`` / ``ConvTranspose1d`` but run as 1 x k 2-D convolutions
    on the window's own ``[B, L, c]`` memory, which is a channels-last ``[B, c, 1, L]`` tensor:
    oneDNN's channels-last kernels run these narrow convolutions 1.7x faster than the 1-D ones
    with their layout reorders (bench/RESULTS.md), and the output comes back as ``[B, L, c]``
    without a copy. Same weights, same numbers.
    """

    def __init__(self, n_channels: int, length: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.length = length
        self.encoder = nn.Sequential(
            nn.Conv1d(n_channels, hidden, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(hidden, latent, 5, stride=2, padding=2),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose1d(latent, hidden, 4, stride=2, padding=1), nn.GELU(),
            nn.ConvTranspose1d(hidden, n_channels, 4, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (down, _, squeeze), (up, _, out) = self.encoder, self.decoder
        h = x.transpose(1, 2).unsqueeze(2)  # [B, c, 1, L] view, channels-last in memory
        code = _conv(squeeze, F.gelu(_conv(down, h)))
        y = _conv(out, F.gelu(_conv(up, code)))
        return y[:, :, 0, : self.length].transpose(1, 2)


def _conv(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """``layer`` (a Conv1d or ConvTranspose1d) applied as a 1 x k 2-D convolution to ``h``."""
    conv = F.conv_transpose2d if isinstance(layer, nn.ConvTranspose1d) else F.conv2d
    return conv(h, layer.weight.unsqueeze(2), layer.bias, stride=(1, layer.stride[0]),
                padding=(0, layer.padding[0]))


class LstmAutoencoder(nn.Module):
    """LSTM encoder to one ``latent`` vector, repeated over time and decoded by a second LSTM."""

    def __init__(self, n_channels: int, length: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.encoder = nn.LSTM(n_channels, hidden, batch_first=True)
        self.to_latent = nn.Linear(hidden, latent)
        self.decoder = nn.LSTM(latent, hidden, batch_first=True)
        self.output = nn.Linear(hidden, n_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.encoder(x)
        code = self.to_latent(h[-1])
        repeated = code.unsqueeze(1).expand(-1, x.shape[1], -1)
        decoded, _ = self.decoder(repeated)
        return self.output(decoded)


class Seq2SeqAutoencoder(nn.Module):
    """Sequence to sequence: an LSTM encoder to one ``latent`` code; an LSTM decoder whose state
    starts from the code emits the window in reverse, each step fed its own previous output."""

    def __init__(self, n_channels: int, length: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.length = length
        self.encoder = nn.LSTM(n_channels, hidden, batch_first=True)
        self.to_latent = nn.Linear(hidden, latent)
        self.from_latent = nn.Linear(latent, 2 * hidden)
        self.decoder = nn.LSTMCell(n_channels, hidden)
        self.output = nn.Linear(hidden, n_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.encoder(x)
        state = torch.tanh(self.from_latent(self.to_latent(h[-1])))
        h, c = state.chunk(2, dim=-1)
        step = x.new_zeros(x.shape[0], x.shape[2])
        steps = []
        for _ in range(self.length):  # last timestep first: the easiest to recall from the code
            h, c = self.decoder(step, (h.contiguous(), c.contiguous()))
            step = self.output(h)
            steps.append(step)
        return torch.stack(steps[::-1], dim=1)


class CrossChannelBlend(nn.Module):
    """An autoencoder's reconstruction blended with a linear prediction of every channel from the
    other channels at the same timestep: ``(1 - weight) * autoencoder(x) + weight * predict(x)``.

    The prediction never sees the channel it predicts, so a channel that leaves the others (a
    level shift, a broken correlation) keeps its error even where the autoencoder's window code
    rebuilds it. ``fit_predictor`` sets it by ridge least squares on training rows; it is saved
    with the weights (buffers), so a loaded model predicts the same.
    """

    def __init__(self, autoencoder: nn.Module, n_channels: int, weight: float) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.weight = float(weight)
        self.register_buffer("predictor", torch.zeros(n_channels, n_channels))  # zero diagonal
        self.register_buffer("offset", torch.zeros(n_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one fused matmul-plus-offset over every timestep, then blended in place into it:
        # (1 - w) * autoencoder + w * prediction == prediction + (1 - w) * (autoencoder - it)
        return self.predict(x).lerp_(self.autoencoder(x), 1.0 - self.weight)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The linear prediction of every channel from the others, for ``x [..., c]``.

        It depends on one timestep only, so the scorer (``tsad.model.scoring``) runs it once per row
        of the series rather than once per window that covers the row: with windows ``length /
        stride`` deep, that is 4x less of this work at the defaults."""
        steps = x.reshape(-1, x.shape[-1])
        return torch.addmm(self.offset, steps, self.predictor).view(x.shape)

    def fit_predictor(self, series: np.ndarray, ridge: float = RIDGE) -> None:
        """Leave-one-channel-out least squares on ``series [n, c]`` (rows with a NaN skipped).

        With P the inverse of the (ridge-regularised) covariance, the residual of channel j given
        the others is (P z)_j / P_jj, so the prediction is z @ (I - P / diag(P)), diagonal 0.
        """
        from tsad.model.moments import finite_row_covariance

        _, mean, covariance = finite_row_covariance(series)  # a block of rows at a time
        precision = np.linalg.inv(covariance + ridge * np.eye(len(mean)))
        matrix = np.eye(len(mean)) - precision / np.diag(precision)[None, :]
        self.predictor.copy_(torch.from_numpy(matrix))
        self.offset.copy_(torch.from_numpy(mean - mean @ matrix))


NETWORKS: dict[str, type[nn.Module]] = {
    "dense": DenseAutoencoder,
    "conv1d": Conv1dAutoencoder,
    "lstm": LstmAutoencoder,
    "seq2seq": Seq2SeqAutoencoder,
}


def code_size(kind: str, length: int, latent: int) -> int:
    """Numbers in one window's code: ``latent``, or ``latent`` per remaining time step after
    the conv1d encoder's two stride-2 convolutions."""
    return latent * math.ceil(math.ceil(length / 2) / 2) if kind == "conv1d" else latent


def bottleneck_latent(model: ModelConfig, n_channels: int, length: int) -> int:
    """``model.latent``, shrunk until the code holds at most ``CODE_SHARE`` of a window's
    ``length x n_channels`` numbers (at least 1)."""
    limit = int(CODE_SHARE * n_channels * length) // code_size(model.kind, length, 1)
    return max(1, min(model.latent, limit))


def build_network(model: ModelConfig, n_channels: int, length: int) -> nn.Module:
    """The configured autoencoder for windows of ``length`` steps over ``n_channels`` channels
    (``model.latent`` is used as given: ``bottleneck_latent`` is the caller's choice)."""
    return NETWORKS[model.kind](n_channels, length, model.hidden, model.latent)


def autoencoder_of(network: nn.Module) -> nn.Module:
    """The autoencoder inside a detector network: what trains, and what the scorer runs once
    per window (a ``CrossChannelBlend``'s linear prediction runs once per row instead)."""
    return network.autoencoder if isinstance(network, CrossChannelBlend) else network


def build_detector_network(model: ModelConfig, n_channels: int, length: int) -> nn.Module:
    """What a detector scores with: the autoencoder, inside ``CrossChannelBlend`` when
    ``model.cross_channel`` > 0 and there are other channels to predict from."""
    autoencoder = build_network(model, n_channels, length)
    if model.cross_channel > 0 and n_channels > 1:
        return CrossChannelBlend(autoencoder, n_channels, model.cross_channel)
    return autoencoder
