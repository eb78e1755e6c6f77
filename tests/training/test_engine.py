"""The training engine on a scripted network: the weights put back after training are
those of the epoch with the lowest validation loss, and that epoch is the one reported."""

from __future__ import annotations

import math

import pytest

import torch
import torch.nn.functional as F
from torch import nn

from studybench.errors import StudybenchError
from studybench.training.engine import TrainConfig, fit_classifier


class Scripted(nn.Module):
    """Logits ``x * scale[epoch]``: neutral after epoch 1, right after epoch 2, confidently
    wrong from epoch 3 on. The epoch is a buffer counted by training forwards (one batch per
    epoch), so it is part of the weights that early stopping keeps and puts back."""

    SCALES = (0.0, 8.0, -8.0, -8.0, -8.0)

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # the optimiser needs something to step
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.epoch += 1
        scale = self.SCALES[min(int(self.epoch), len(self.SCALES)) - 1]
        return x * scale + self.unused * 0


def _data(n: int) -> dict[str, torch.Tensor]:
    y = torch.arange(n) % 3
    return {"x": F.one_hot(y, 3).float(), "y": y}


def test_the_best_epochs_weights_are_put_back():
    net = Scripted()
    config = TrainConfig(epochs=5, batch_size=64, lr=1e-3, patience=10)
    result = fit_classifier(net, _data(30), _data(12), 3, config, seed=0)
    losses = [row["val_loss"] for row in result["history"]]
    assert losses[0] == pytest.approx(math.log(3), abs=1e-4)
    assert min(losses) == losses[1] and losses[2] > losses[0]  # the script did what it says
    assert result["best_epoch"] == 2
    assert result["best_val_loss"] == losses[1]
    net.eval()
    val = _data(12)
    with torch.no_grad():
        restored = float(F.cross_entropy(net(val["x"]), val["y"]))
    assert restored == pytest.approx(losses[1], rel=1e-5)  # epoch 2's weights, not 3's


def test_the_kept_epoch_can_follow_macro_f1():
    net = Scripted()
    config = TrainConfig(epochs=5, batch_size=64, lr=1e-3, patience=10, monitor="val_macro_f1")
    result = fit_classifier(net, _data(30), _data(12), 3, config, seed=0)
    f1 = [row["val_macro_f1"] for row in result["history"]]
    assert f1[1] == 1.0 and max(f1[2:]) == 0.0  # the highest is kept, not the lowest
    assert result["best_epoch"] == 2 and result["monitor"] == "val_macro_f1"


def test_monitor_last_keeps_the_final_epoch_and_never_stops_early():
    net = Scripted()
    config = TrainConfig(epochs=5, batch_size=64, lr=1e-3, patience=1, monitor="last")
    result = fit_classifier(net, _data(30), _data(12), 3, config, seed=0)
    losses = [row["val_loss"] for row in result["history"]]
    assert result["epochs_run"] == 5  # patience 1 would have stopped after epoch 3 on val_loss
    assert result["best_epoch"] == 5 and result["monitor"] == "last" and min(losses) == losses[1]
    assert int(net.epoch) == 5  # the last epoch's weights, not the best one's (epoch 2)


def test_unknown_monitor_is_a_one_line_error():
    with pytest.raises(StudybenchError, match="train.monitor=val_psnr: expected val_loss, val_macro_f1"):
        fit_classifier(Scripted(), _data(6), _data(3), 3, TrainConfig(epochs=1, monitor="val_psnr"), seed=0)


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def _noisy(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return {"x": F.one_hot(y, 3).float() + torch.randn(n, 3, generator=g), "y": y}


def _val_loss(net: nn.Module, val: dict[str, torch.Tensor]) -> float:
    net.eval()
    with torch.no_grad():
        return float(F.cross_entropy(net(val["x"]), val["y"]))


def test_the_weight_average_is_what_is_scored_and_kept():
    """With train.ema the validation scores the averaged weights, and those (not the raw
    weights of the same epoch) are the ones kept: the restored network reproduces the
    reported validation loss exactly."""
    train, val = _noisy(64, 0), _noisy(30, 1)
    torch.manual_seed(0)
    net = Linear()
    config = TrainConfig(epochs=4, batch_size=8, lr=0.5, patience=10, ema=0.9, optimizer="sgd")
    result = fit_classifier(net, train, val, 3, config, seed=0)
    kept = result["history"][result["best_epoch"] - 1]["val_loss"]
    assert _val_loss(net, val) == pytest.approx(kept, rel=1e-6)
    torch.manual_seed(0)
    raw = Linear()
    raw_result = fit_classifier(raw, train, val, 3, TrainConfig(epochs=4, batch_size=8, lr=0.5, patience=10,
                                                                 optimizer="sgd"), seed=0)
    assert not torch.allclose(raw.layer.weight, net.layer.weight)  # the average is not the last step
    assert [r["train_loss"] for r in raw_result["history"]] == [r["train_loss"] for r in result["history"]]


def test_sgd_is_nesterov_and_options_are_checked():
    from studybench.training.tasks import optimizer

    net = Linear()
    opt = optimizer([{"params": list(net.parameters()), "lr": 0.1}],
                    TrainConfig(optimizer="sgd", momentum=0.8, weight_decay=1e-4))
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.8 and opt.defaults["weight_decay"] == 1e-4
    for bad, match in (({"optimizer": "lamb"}, "train.optimizer=lamb"), ({"ema": 1.0}, "train.ema=1.0")):
        with pytest.raises(StudybenchError, match=match):
            fit_classifier(Linear(), _noisy(8, 0), _noisy(4, 1), 3, TrainConfig(epochs=1, **bad), seed=0)


class _LastToken(nn.Module):
    """Logits from each row's last valid token: wrong if a row met another row's length."""

    def forward(self, ids, lengths):
        return F.one_hot(ids[torch.arange(len(ids)), lengths - 1], 4).float() * 10


def test_unshuffled_sequence_batches_come_shortest_first_and_scores_keep_row_order():
    from studybench.training.engine import TensorBatches, predict_proba

    torch.manual_seed(0)
    lengths = torch.randint(1, 30, (50,))
    ids = torch.zeros(50, 30, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(1, 4, (int(n),))
    tensors = {"ids": ids, "lengths": lengths}

    batches = TensorBatches(tensors, 8, shuffle=False, trim=True)
    cut = [batch["ids"].shape[1] for batch in batches]
    in_file_order = [int(lengths[i:i + 8].max()) for i in range(0, 50, 8)]
    assert cut == sorted(cut) and sum(cut) < 0.8 * sum(in_file_order)  # each batch cut near its own length
    assert torch.equal(lengths[batches.order], lengths.sort(stable=True).values)

    probs = predict_proba(_LastToken(), tensors, batch_size=8, trim=True)
    assert (probs.argmax(1) == ids[torch.arange(50), lengths - 1].numpy()).all()  # rows in file order


class Probe(nn.Module):
    """Records, at every training forward, whether deterministic algorithms are on and whether
    new tensors are filled, and whether a fresh ``torch.empty`` reads as NaN."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.seen: list[tuple[bool, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.append((torch.are_deterministic_algorithms_enabled(),
                              torch.utils.deterministic.fill_uninitialized_memory,
                              bool(torch.isnan(torch.empty(64)).all())))
        return self.linear(x)


def test_training_is_deterministic_without_filling_new_tensors_and_restores_the_fill():
    before = torch.utils.deterministic.fill_uninitialized_memory
    net = Probe()
    fit_classifier(net, _data(30), _data(12), 3, TrainConfig(epochs=2, batch_size=64), seed=0)
    assert net.seen and all(det for det, _, _ in net.seen)  # deterministic algorithms stay on
    assert not any(fill or nan for _, fill, nan in net.seen)  # but no NaN is written into new tensors
    assert torch.utils.deterministic.fill_uninitialized_memory == before  # restored after fit
