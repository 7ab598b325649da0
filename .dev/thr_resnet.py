import sys, time, torch
from dataclasses import replace
import dwf
from dwf.zoo import train_zoo
from dwf.data import load
torch.set_num_threads(int(sys.argv[1]))
exp = dwf.experiments.get("fmnist_resnet20", "quick")
data = load(exp.data)
spec = replace(exp.zoo, epochs=1)
t = time.perf_counter(); train_zoo(data, exp.arch, spec, progress=False, device="cpu"); print(sys.argv[1], "threads", time.perf_counter() - t, flush=True)
