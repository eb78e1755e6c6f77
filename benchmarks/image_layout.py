"""fp32 training speed of the image models' seed presets in NCHW against channels-last memory,
alternating, same batches (the layout is the only difference; the arithmetic is the same).

    python benchmarks/image_layout.py cnn_basic,cnn_skip,conv_autoencoder THREADS
"""
import sys, time, statistics, dataclasses, torch, torch.nn.functional as F
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_throughput as it
from studybench import registry
from studybench.training.tasks import adam
torch.set_flush_denormal(True); torch.set_num_threads(int(sys.argv[2]))
pixels, _ = it.images()
def rate(name, preset, cl, steps):
    params = registry.get(name).resolve(preset)
    params = dataclasses.replace(params, channels_last=cl)
    torch.manual_seed(0)
    net = registry.get(name).build.factory(params, 5, 32)
    if cl: net = net.to(memory_format=torch.channels_last)
    opt = adam(net.parameters(), 1e-3); b = params.train.batch_size; labels = torch.randint(0, 5, (len(pixels),)); net.train()
    t = 0; n = 0
    for s in range(steps + 2):
        i = (s * b) % (len(pixels) - b); x, y = pixels[i:i+b], labels[i:i+b]
        t0 = time.perf_counter()
        out = net(x); loss = F.mse_loss(*(o.float() for o in out)) if isinstance(out, tuple) else F.cross_entropy(out.float(), y)
        opt.zero_grad(); loss.backward(); opt.step()
        if s >= 2: t += time.perf_counter() - t0; n += len(x)
    return n / t
for name in sys.argv[1].split(","):
    r = {False: [], True: []}
    for k in range(3):
        for cl in ((False, True) if k % 2 == 0 else (True, False)):
            r[cl].append(rate(name, "seed", cl, 30))
    a, b = statistics.median(r[False]), statistics.median(r[True])
    print(f"{name} seed: NCHW {a:.0f} img/s, channels-last {b:.0f} img/s, ratio {b/a:.2f}", flush=True)
