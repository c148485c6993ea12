"""Networks: every kind maps a window to a window, through a real bottleneck, deterministically."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from tsad.config import ModelConfig
from tsad.model.networks import NETWORKS, build_network

KINDS = sorted(NETWORKS)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny networks: one thread avoids contention on a busy two-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("length", [8, 13, 32])
def test_output_has_the_input_shape(kind: str, length: int) -> None:
    torch.manual_seed(0)
    net = build_network(ModelConfig(kind=kind, hidden=8, latent=2), n_channels=3, length=length)
    x = torch.randn(5, length, 3)
    assert net(x).shape == x.shape


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_weights(kind: str) -> None:
    cfg = ModelConfig(kind=kind, hidden=8, latent=2)
    torch.manual_seed(3)
    a = build_network(cfg, 3, 16).state_dict()
    torch.manual_seed(3)
    b = build_network(cfg, 3, 16).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", KINDS)
def test_bottleneck_stops_it_from_learning_the_identity(kind: str) -> None:
    """White noise has no structure: through a 2-number code, 40 values cannot come back."""
    torch.manual_seed(0)
    net = build_network(ModelConfig(kind=kind, hidden=16, latent=2), n_channels=4, length=10)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    data = torch.randn(64, 10, 4)
    for _ in range(30):
        loss = ((net(data) - data) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        unseen = torch.randn(256, 10, 4)
        assert ((net(unseen) - unseen) ** 2).mean() > 0.8  # variance 1: almost nothing recovered


def test_seq2seq_decoder_never_sees_the_input() -> None:
    """Two inputs with the same code give the same output: only the code reaches the decoder."""
    torch.manual_seed(0)
    net = build_network(ModelConfig(kind="seq2seq", hidden=8, latent=2), 3, 10).eval()
    x = torch.randn(2, 10, 3)
    with torch.no_grad():
        code = net.to_latent(net.encoder(x)[1][0][-1])
        net.to_latent.register_forward_hook(lambda _m, _i, _o: code)
        assert torch.allclose(net(x), net(torch.zeros_like(x)))
