"""Every registered image model x preset: forward and backward on tiny inputs; the batch
augmentation; freezing; the transfer arms; save and load."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from studybench import registry
from studybench.data.images import ImageSet
from studybench.errors import StudybenchError
from studybench.models.image.layers import Frozen, Preprocess
from studybench.models.image.model import ImageModel
from studybench.models.image.transfer import ARMS, NEEDS, transfer_model

IMAGE_MODELS = registry.names("images")
COMBOS = [(n, p) for n in IMAGE_MODELS for p in registry.PRESETS]


def test_every_image_family_is_registered():
    assert set(IMAGE_MODELS) == {"cnn_basic", "cnn_tanh", "cnn_sigmoid_out", "cnn_skip", "conv_autoencoder",
                                 "whitened_cnn"}


def _pixels(n=4, seed=0):
    return torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


@pytest.mark.parametrize("name, preset", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_forward_backward(name, preset):
    spec = registry.get(name)
    torch.manual_seed(0)
    net = spec.build.factory(spec.resolve(preset), 5, 32).train()
    out = net(_pixels())
    if spec.family == "autoencoder":
        reconstruction, target = out
        assert reconstruction.shape == target.shape == (4, 3, 32, 32)
        assert 0 <= reconstruction.min().item() and reconstruction.max().item() <= 1
        loss = F.mse_loss(reconstruction, target)
    else:
        assert out.shape == (4, 5)
        loss = F.cross_entropy(out, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    trainable = [(pname, p) for pname, p in net.named_parameters() if p.requires_grad]
    assert trainable
    for pname, parameter in trainable:
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), pname


def test_seed_presets_are_the_study_networks():
    basic = registry.get("cnn_basic").build.factory(registry.get("cnn_basic").resolve("seed"), 50, 32)
    # 3 valid conv blocks: 32 -> 30 -> 15 -> 13 -> 6 -> 4 -> 2, so 256 x 2 x 2 flattened
    assert basic.trunk.out_features == 1024
    dense = [m for m in basic.head if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in dense] == [512, 256, 50]
    tanh = registry.get("cnn_tanh").build.factory(registry.get("cnn_tanh").resolve("seed"), 50, 32)
    assert any(isinstance(m, torch.nn.Tanh) for m in tanh.modules())
    assert not any(isinstance(m, torch.nn.ReLU) for m in tanh.modules())
    skip = registry.get("cnn_skip").build.factory(registry.get("cnn_skip").resolve("seed"), 50, 32)
    assert skip.trunk.out_features == 1024 + 128 * 6 * 6  # block 3 and block 2 features
    ae = registry.get("conv_autoencoder").build.factory(registry.get("conv_autoencoder").resolve("seed"), 0, 32)
    assert ae.encoder.code_shape == (32, 8, 8)


def test_sigmoid_output_is_keras_normalised_sigmoid():
    spec = registry.get("cnn_sigmoid_out")
    torch.manual_seed(0)
    net = spec.build.factory(spec.resolve("seed"), 5, 32).eval()
    with torch.no_grad():
        logits = net(_pixels())
        raw = net.head.head(net.trunk(net.preprocess(_pixels())))
    expected = torch.sigmoid(raw) / torch.sigmoid(raw).sum(1, keepdim=True)
    assert torch.allclose(torch.softmax(logits, 1), expected, atol=1e-6)


def test_augmentation_translates_and_flips_whole_batches():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
    assert torch.equal(Preprocess("raw", 0, False).train()(images), images.float())  # nothing asked
    torch.manual_seed(0)
    shifted = Preprocess("raw", 1, False).augment(images)
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    for b in range(2):  # each image is its own translation of the original, zeros at the edge
        padded = F.pad(images[b], (1, 1, 1, 1))
        assert any(torch.equal(shifted[b], padded[:, y:y + 4, x:x + 4]) for y in range(3) for x in range(3))
    torch.manual_seed(1)
    flipped = Preprocess("raw", 0, True).augment(images.repeat(16, 1, 1, 1))
    same = [torch.equal(f, images[i % 2]) for i, f in enumerate(flipped)]
    mirrored = [torch.equal(f, images[i % 2].flip(2)) for i, f in enumerate(flipped)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)
    assert torch.equal(Preprocess("raw", 2, True).eval()(images), images.float())  # off at test time


def test_standard_scaling_uses_training_statistics():
    p = Preprocess("standard")
    images = torch.stack([torch.full((3, 4, 4), v, dtype=torch.uint8) for v in (10, 30)])
    p.fit_statistics(images)
    assert torch.allclose(p.mean, torch.full((3,), 20.0)) and torch.allclose(p.std, torch.full((3,), 10.0))
    assert torch.allclose(p(images)[:, 0, 0, 0], torch.tensor([-1.0, 1.0]))


def test_frozen_really_freezes():
    spec = registry.get("cnn_basic")
    torch.manual_seed(0)
    net = spec.build.factory(spec.resolve("tuned"), 5, 32)
    frozen = Frozen(net.trunk)
    head = torch.nn.Linear(net.trunk.out_features, 5)
    model = torch.nn.Sequential(frozen, head).train()
    before = {k: v.clone() for k, v in frozen.state_dict().items()}  # weights and BN statistics
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    x = net.preprocess(_pixels(8))
    F.cross_entropy(model(x), torch.arange(8) % 5).backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in frozen.state_dict().items())
    assert not frozen.module.training and head.weight.grad is not None


# --------------------------------------------------------------------------- fitting, transfer, storage


def _image_set(n_per_class, n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat_interleave(n_per_class)
    images = torch.randint(0, 80, (len(labels), 3, 32, 32), generator=g, dtype=torch.uint8)
    for c in range(n_classes):
        images[labels == c, c] += 120
    return ImageSet(images, labels, tuple(f"c{c}" for c in range(n_classes)))


SHORT = {"train.epochs": 2, "train.batch_size": 16, "widths": (8, 16, 16), "dense": (16,)}


@pytest.fixture(scope="module")
def sources():
    """A block-1 CNN and autoencoder, trained for two epochs."""
    train, val = _image_set(12), _image_set(4, seed=1)
    cnn = registry.get("cnn_basic").build(registry.get("cnn_basic").resolve("tuned", SHORT), "images", 0)
    cnn.fit(train, val)
    ae_spec = registry.get("conv_autoencoder")
    ae = ae_spec.build(ae_spec.resolve("seed", {"train.epochs": 2, "train.batch_size": 16, "widths": (8, 4)}),
                       "images", 0)
    ae.fit(train, val)
    return cnn, ae


@pytest.mark.parametrize("arm", ARMS)
def test_transfer_arms_start_from_the_block1_weights(sources, arm):
    cnn, ae = sources
    model, prepare = transfer_model(arm, cnn, ae, seed=0)
    train, val = _image_set(8, n_classes=2, seed=2), _image_set(3, n_classes=2, seed=3)
    net = model._build(2, 32)
    if prepare:
        prepare(net)
    if arm == "scratch":
        assert not torch.equal(net.trunk.blocks[0].convs[0].weight, cnn.net_.trunk.blocks[0].convs[0].weight)
    else:
        part = net.parts[0].module if arm.endswith("frozen") else net.parts[0]
        if "cnn" in NEEDS[arm]:
            assert torch.equal(part[1].blocks[0].convs[0].weight, cnn.net_.trunk.blocks[0].convs[0].weight)
            assert torch.equal(part[0].mean, cnn.net_.preprocess.mean)  # block-1 scaling kept
        else:
            assert torch.equal(part[1].encoder.layers[0].weight, ae.net_.encoder.layers[0].weight)
    result = model.fit(train, val, prepare)
    assert result["epochs_run"] == 2
    assert model.net_.tta == cnn.net_.tta == 1  # scored with the same test-time views as scratch
    if arm.endswith("_frozen"):
        assert result["n_trainable"] < result["n_params"]
        trunk = model.net_.parts[0].module[1]
        source = cnn.net_.trunk if arm == "cnn_frozen" else ae.net_.encoder
        for (k, v), (_, w) in zip(trunk.state_dict().items(), source.state_dict().items()):
            if arm == "cnn_frozen":
                assert torch.equal(v, w), k  # not one weight or statistic moved in training
    if arm in ("cnn_finetune", "ae_finetune", "cnn_ae_concat"):
        groups = model.net_.param_groups(1e-3)
        assert [g["lr"] for g in groups] == [1e-3, 1e-4]  # the pretrained part learns 10x slower
    scores, _ = model.scores(val)
    assert scores.shape == (6, 2)


def test_transfer_budget_is_the_same_for_every_arm(sources):
    cnn, ae = sources  # tuned: train.epochs 2 here, transfer_epochs 10 caps nothing
    for arm in ("scratch", "cnn_finetune", "ae_frozen"):
        assert transfer_model(arm, cnn, ae, 0)[0].train_config.epochs == 2
        assert transfer_model(arm, cnn, ae, 0, epochs=5)[0].train_config.epochs == 5
    long = registry.get("cnn_basic").build(registry.get("cnn_basic").resolve("tuned", {"train.epochs": 16}),
                                           "images", 0)
    for arm in ("scratch", "cnn_frozen", "cnn_ae_concat"):
        assert transfer_model(arm, long, ae, 0)[0].train_config.epochs == 10  # the tuned cap
    seed = registry.get("cnn_basic").build(registry.get("cnn_basic").resolve("seed", {}), "images", 0)
    assert transfer_model("scratch", seed, ae, 0)[0].train_config.epochs == 40  # the study's own budget


def test_a_step_floor_gives_a_small_share_more_epochs_for_every_arm_alike(sources):
    from studybench.models.image.transfer import transfer_epochs

    assert transfer_epochs(10, 200, 2000, 512) == 50  # 4 steps an epoch: 50 epochs for 200 steps
    assert transfer_epochs(10, 200, 20000, 512) == 10  # 40 steps an epoch: the budget already has 400
    assert transfer_epochs(10, 0, 2000, 512) == transfer_epochs(10, 200, 0, 512) == 10  # off; no images
    cnn, ae = sources  # batch: the tuned cnn_basic's
    batch = cnn.train_config.batch_size
    for arm in ("scratch", "cnn_finetune", "cnn_finetune_full", "lp_ft", "cnn_ae_concat"):
        model = transfer_model(arm, cnn, ae, 0, min_steps=30, n_train=3 * batch)[0]
        assert model.train_config.epochs == 10  # 30 steps of 3 an epoch, whatever the arm


def test_transfer_needs_the_right_sources(sources):
    cnn, ae = sources
    with pytest.raises(StudybenchError, match="needs a block-1 autoencoder"):
        transfer_model("ae_frozen", cnn, None, 0)
    with pytest.raises(StudybenchError, match="unknown transfer arm 'warm'"):
        transfer_model("warm", cnn, ae, 0)


def test_save_and_load_give_identical_predictions(sources, tmp_path):
    cnn, ae = sources
    model, prepare = transfer_model("cnn_ae_concat", cnn, ae, seed=0)
    model.fit(_image_set(6), _image_set(2, seed=1), prepare)
    test = _image_set(3, seed=5)
    for i, m in enumerate((cnn, ae, model)):
        folder = tmp_path / str(i)
        folder.mkdir()
        loaded = ImageModel.load(folder / m.save(folder))
        if m.task == "reconstruction":
            assert torch.equal(loaded.reconstruct(test.images)[0], m.reconstruct(test.images)[0])
        else:
            assert (loaded.scores(test)[0] == m.scores(test)[0]).all()
    (tmp_path / "0" / "model.json").write_text('{"format_version": 99, "kind": "torch-image"}')
    with pytest.raises(StudybenchError, match="image model format 99 is not supported"):
        ImageModel.load(tmp_path / "0" / "model.json")


def test_same_seed_same_model(sources):
    spec = registry.get("cnn_basic")
    train, val = _image_set(6), _image_set(2, seed=1)
    scores = []
    for _ in range(2):
        model = spec.build(spec.resolve("tuned", SHORT), "images", 7)
        model.fit(train, val)
        scores.append(model.scores(val)[0])
    assert (scores[0] == scores[1]).all()


# --------------------------------------------------------------------------- whitened_cnn, LP-FT, full-rate fine-tuning

WHITENED_SHORT = {"train.epochs": 3, "train.batch_size": 16, "widths": (8, 16, 16), "whiten_images": 64}


@pytest.fixture(scope="module")
def whitened():
    """A block-1 whitened_cnn, trained for three epochs."""
    spec = registry.get("whitened_cnn")
    model = spec.build(spec.resolve("tuned", WHITENED_SHORT), "images", 0)
    model.fit(_image_set(12), _image_set(4, seed=1))
    return model


def _patch_covariance(net, images):
    """Covariance of the whitening layer's first half of outputs (the eigen-directions)."""
    trunk = net.trunk
    with torch.no_grad():
        x = net.preprocess.scaled(images)
        y = F.conv2d(x, trunk.whiten.weight[: trunk.whiten.out_channels // 2])
    y = y.permute(1, 0, 2, 3).reshape(y.shape[1], -1).double()
    return y @ y.T / y.shape[1]


def test_whitening_layer_whitens_its_training_patches_and_stays_fixed(whitened):
    spec = registry.get("whitened_cnn")
    torch.manual_seed(0)
    net = spec.build.factory(spec.resolve("tuned", {"widths": (8, 16, 16)}), 3, 32)
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 200, (40, 1, 32, 32), generator=g)  # strongly correlated channels
    images = (base + torch.randint(0, 50, (40, 3, 32, 32), generator=g)).to(torch.uint8)
    net.preprocess.fit_statistics(images)
    eye = torch.eye(12, dtype=torch.float64)
    assert (_patch_covariance(net, images) - eye).abs().max() > 0.3  # not yet whitened (random filters)
    spec.build.initialize(net, images)
    covariance = _patch_covariance(net, images)
    assert torch.allclose(covariance, eye, atol=0.02)
    w = net.trunk.whiten.weight
    assert torch.equal(w[:12], -w[12:]) and not w.requires_grad
    # training never moves the filters; only their bias learns
    spec_model = spec.build(spec.resolve("tuned", WHITENED_SHORT), "images", 0)
    train = _image_set(12)
    before = {}

    def remember(net, images):
        spec.build.initialize(net, images)
        before["w"] = net.trunk.whiten.weight.clone()
        before["b"] = net.trunk.whiten.bias.clone()

    spec_model.initialize = remember
    spec_model.fit(train, _image_set(4, seed=1))
    assert torch.equal(spec_model.net_.trunk.whiten.weight, before["w"])
    assert not torch.equal(spec_model.net_.trunk.whiten.bias, before["b"])


def test_test_time_views_average_mirror_and_shifts():
    from studybench.models.image.layers import test_time_logits

    images = _pixels(3).float()
    seen = []

    def logits(x):
        seen.append(x.clone())
        return x.mean(dim=(1, 2, 3))[:, None]

    assert torch.equal(test_time_logits(logits, images, 0), logits(images))
    seen.clear()
    level2 = test_time_logits(logits, images, 2)
    assert len(seen) == 6  # image, mirror; each of two shifted views and its mirror
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    assert any(torch.equal(s, padded[..., :32, :32]) for s in seen)
    assert any(torch.equal(s, padded[..., 2:, 2:]) for s in seen)
    m = [float(s.mean()) for s in seen]
    # the shifted views first (up-left, its mirror, down-right, its mirror), then the image and its mirror
    expected = 0.5 * (m[4] + m[5]) / 2 + 0.5 * ((m[0] + m[1]) / 2 + (m[2] + m[3]) / 2) / 2
    assert float(level2.mean()) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(StudybenchError, match="model.tta=3"):
        test_time_logits(logits, images, 3)


@pytest.mark.parametrize("arm", ["scratch", "cnn_finetune", "cnn_finetune_full", "lp_ft", "cnn_frozen"])
def test_every_cnn_arm_takes_a_whitened_trunk(whitened, arm):
    model, prepare = transfer_model(arm, whitened, None, seed=0)
    train, val = _image_set(8, n_classes=2, seed=2), _image_set(3, n_classes=2, seed=3)
    result = model.fit(train, val, prepare)
    net = model.net_
    if arm == "scratch":  # its own whitening, from block 2's images
        assert not torch.equal(net.trunk.whiten.weight, whitened.net_.trunk.whiten.weight)
    else:
        trunk = (net.parts[0].module if arm == "cnn_frozen" else net.parts[0])[1]
        assert torch.equal(trunk.whiten.weight, whitened.net_.trunk.whiten.weight)  # block 1's, never trained
        assert net.tta == 2  # whitened_cnn's test-time views
    assert result["epochs_run"] == 3
    if arm == "cnn_finetune_full":
        assert [g["lr"] for g in net.param_groups(0.2)] == [0.2, 0.2]


def test_lp_ft_probes_with_a_fixed_trunk_then_tunes_everything(whitened):
    model, prepare = transfer_model("lp_ft", whitened, None, seed=0)
    train, val = _image_set(8, n_classes=2, seed=2), _image_set(3, n_classes=2, seed=3)
    net = model._build(2, 32)
    prepare(net)
    assert net.probe_epochs == 1  # the probe is the budget's first epoch
    net.set_probing(True)
    net.train()
    assert not any(m.training for m in net.parts.modules())
    assert all(g["lr"] == 0.2 for g in net.param_groups(0.2)) and len(net.param_groups(0.2)) == 1
    net.set_probing(False)
    assert [g["lr"] for g in net.param_groups(0.2)] == pytest.approx([0.02, 0.02])  # head as slow as the trunk

    # the probe alone: the parts (weights and BN statistics) do not move, the head converges
    model.net_ = net
    model.classes_ = ["c0", "c1"]
    start = {k: v.clone() for k, v in net.parts.state_dict().items()}
    row = model._probe(train, val)
    assert all(torch.equal(start[k], v) for k, v in net.parts.state_dict().items())
    assert row["train_accuracy"] == 1.0  # 16 images, 16 features: a linear probe fits them
    with torch.no_grad():
        logits = net.head(net.features(train.images))
        head_loss = float(F.cross_entropy(logits, train.labels))
    assert head_loss == pytest.approx(row["train_loss"])
    again = model._probe(train, val)  # from the fitted head: already at the optimum
    assert again["train_loss"] == pytest.approx(row["train_loss"], abs=1e-4)

    model.net_ = None
    result = model.fit(train, val, prepare)
    final = model.net_.parts.state_dict()
    assert any(not torch.equal(start[k], final[k]) for k in start)  # fine-tuning moved the trunk
    assert [row["phase"] for row in model.history_] == ["probe", "tune", "tune"]
    assert [row["epoch"] for row in model.history_] == [1, 2, 3] and result["epochs_run"] == 3


def test_whitened_model_saves_and_loads(whitened, tmp_path):
    test = _image_set(3, seed=5)
    loaded = ImageModel.load(tmp_path / whitened.save(tmp_path))
    assert (loaded.scores(test)[0] == whitened.scores(test)[0]).all()
    model, prepare = transfer_model("lp_ft", whitened, None, seed=0)
    model.fit(_image_set(6, n_classes=2), _image_set(2, n_classes=2, seed=1), prepare)
    (tmp_path / "t").mkdir()
    again = ImageModel.load(tmp_path / "t" / model.save(tmp_path / "t"))
    assert (again.scores(test)[0] == model.scores(test)[0]).all()


def test_test_time_views_score_the_test_set_but_not_validation(whitened):
    """Validation during training sees the plain image (one forward); scores() (test,
    predict, serve) averages the test-time views."""
    from studybench.models.image.layers import TestTimeViews, test_time_logits

    net, images = whitened.net_.eval(), _pixels(4)
    with torch.no_grad():
        plain = net(images)
        assert torch.equal(plain, net._logits(images))
        with TestTimeViews(net):
            viewed = net(images)
        assert torch.allclose(viewed, test_time_logits(net._logits, images, 2))
        assert not torch.allclose(plain, viewed)
        assert torch.equal(net(images), plain)  # the views are off again after scoring
    scores, _ = whitened.scores(ImageSet(images, torch.zeros(4, dtype=torch.long), ("c0", "c1", "c2")))
    assert torch.allclose(torch.from_numpy(scores), torch.softmax(viewed, 1), atol=1e-6)


def test_cutout_blanks_one_square_per_training_image():
    images = torch.full((6, 3, 8, 8), 7, dtype=torch.uint8)
    torch.manual_seed(0)
    out = Preprocess("raw", 0, False, cutout=3).train()(images)
    for image in out:
        blank = image[0] == 0
        assert torch.equal(blank, (image == 0).all(0))  # the same square in every channel
        rows, cols = blank.any(1).nonzero().flatten(), blank.any(0).nonzero().flatten()
        assert blank.sum() == 9 and len(rows) == 3 and len(cols) == 3
        assert rows[-1] - rows[0] == 2 and cols[-1] - cols[0] == 2  # one 3x3 square, inside the image
    assert out.flatten(1).min(1).values.eq(0).all() and (out[out != 0] == 7).all()
    assert torch.equal(Preprocess("raw", 0, False, cutout=3).eval()(images), images.float())  # not at test time
    with pytest.raises(StudybenchError, match="model.cutout"):
        Preprocess("raw", cutout=-1)


def test_batchnorm_shifts_learn_faster_and_decay_at_the_same_rate():
    from studybench.training.engine import TrainConfig
    from studybench.training.tasks import ClassificationTask

    spec = registry.get("whitened_cnn")
    config = TrainConfig(optimizer="sgd", lr=0.5, weight_decay=1e-3, schedule="plateau")
    for scale, n_groups in ((64.0, 2), (1.0, 1)):
        net = spec.build.factory(spec.resolve("tuned", {"widths": (8, 16, 16), "bias_lr_scale": scale}), 3, 32)
        optim = ClassificationTask(net, config, 3).configure_optimizers()["optimizer"]
        assert len(optim.param_groups) == n_groups
        trainable = {id(p) for p in net.parameters() if p.requires_grad}
        assert sorted(id(p) for g in optim.param_groups for p in g["params"]) == sorted(trainable)
    net = spec.build.factory(spec.resolve("tuned", {"widths": (8, 16, 16), "bias_lr_scale": 64.0}), 3, 32)
    shifts = {id(m.bias) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    weights, fast = ClassificationTask(net, config, 3).configure_optimizers()["optimizer"].param_groups
    assert {id(p) for p in fast["params"]} == shifts and not shifts & {id(p) for p in weights["params"]}
    assert fast["lr"] == 64 * 0.5 and weights["lr"] == 0.5
    assert fast["lr"] * fast["weight_decay"] == pytest.approx(weights["lr"] * weights["weight_decay"])


def test_residual_groups_add_the_pooled_input_back():
    from studybench.models.image.whitened import ConvGroup

    torch.manual_seed(0)
    group = ConvGroup(4, 8, 0.4, residual=True).train()
    x = torch.randn(2, 4, 8, 8)
    out = group(x)
    out.sum().backward()
    assert out.shape == (2, 8, 4, 4) and group.conv3.weight.grad.abs().sum() > 0
    with torch.no_grad():
        group.conv3.weight.zero_()  # the branch gives 0 (BatchNorm of zeros, GELU(0)): only the input is left
        pooled = F.gelu(group.norm1(F.max_pool2d(group.conv1(x), 2)))
        assert torch.allclose(group(x), pooled, atol=1e-6)
    assert not hasattr(ConvGroup(4, 8, 0.4), "conv3")
