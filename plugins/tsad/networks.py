"""Autoencoders over windows ``[batch, length, channels]`` with a real bottleneck.

Each network squeezes a window through a code much smaller than the window itself (``latent``
numbers for ``length x channels`` inputs), so it cannot learn the identity and reconstruct
anomalies as well as normal data. No decoder sees the input except through that code.
"""

from __future__ import annotations

import torch
from torch import nn

from tsad.config import ModelConfig


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
    """Two stride-2 convolutions down to ``latent`` channels at a quarter of the time resolution."""

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
        code = self.encoder(x.transpose(1, 2))
        return self.decoder(code)[:, :, : self.length].transpose(1, 2)


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


NETWORKS: dict[str, type[nn.Module]] = {
    "dense": DenseAutoencoder,
    "conv1d": Conv1dAutoencoder,
    "lstm": LstmAutoencoder,
    "seq2seq": Seq2SeqAutoencoder,
}


def build_network(model: ModelConfig, n_channels: int, length: int) -> nn.Module:
    """The configured autoencoder for windows of ``length`` steps over ``n_channels`` channels."""
    return NETWORKS[model.kind](n_channels, length, model.hidden, model.latent)
